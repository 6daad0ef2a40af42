"""The documentation's reference tables, generated from the code: `python -m local.reference`.

Hand-written tables of permissions and settings drift from the code; these are made from
it. A document carries a generated block between two marker lines,

    <!-- generated: NAME -->
    ...
    <!-- end generated -->

and this module rewrites what lies between them in `README.md` and `docs/*.md`
(`make docs`). `tests/unit/docs/test_generated_tables.py` fails when a committed block differs
from what the code gives. The blocks:

- `permissions`: each permission, what it allows and which roles have it
  (`services/runtime/http/roles.py`);
- `routes`: per service, every route with the permission it declares, read from the app
  that `build_app` makes of `services.<name>.service.DEFINITION` (built, never started:
  no database, broker or environment needed);
- `configuration`: every environment variable of the settings models
  (`services/runtime/settings.py` and `services.<name>.settings`), with type, default and
  description;
- `metrics`: every Prometheus metric the services register;
- `events`: every event type and version per topic, and each inbound topic's document,
  with its JSON Schema (`contracts/`).

Only `services.<name>.service` and `services.<name>.settings` are imported by name, so the
tables follow the services' code wherever it moves inside their packages.
"""

from __future__ import annotations

import enum
import importlib
import json
import os
import re
import sys
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from fastapi import FastAPI
from prometheus_client.metrics import MetricWrapperBase
from pydantic import AnyUrl, PostgresDsn, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from contracts.jsonschema import SCHEMA_DIR, schema_filename
from contracts.registry import events_by_topic, inbound_models
from contracts.signing import new_signing_seed, public_key_of
from services import SERVICE_NAMES
from services.runtime.http.audit import reads_personal_data
from services.runtime.http.authentication import new_secret
from services.runtime.http.authorization import PUBLIC_PATHS, api_routes
from services.runtime.http.roles import PERMISSIONS, ROLE_PERMISSIONS, ROLES
from services.runtime.privacy.keyring import new_master_key
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings

REPO = Path(__file__).resolve().parents[1]
COMMAND = "python -m local.reference"
BLOCK = re.compile(
    r"(?P<start><!-- generated: (?P<name>[a-z-]+) -->\n)"
    r"(?P<body>.*?)"
    r"(?P<end><!-- end generated -->)",
    re.DOTALL,
)


def documents(root: Path = REPO) -> list[Path]:
    """The documents that may hold generated blocks."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


# The services, as their composition roots describe them ---------------------------------


def definitions() -> dict[str, ServiceDefinition]:
    found = {}
    for name in SERVICE_NAMES:
        definition = importlib.import_module(f"services.{name}.service").DEFINITION
        assert isinstance(definition, ServiceDefinition), f"services.{name}.service.DEFINITION"
        found[name] = definition
    return found


def settings_classes() -> dict[str, type[ServiceSettings]]:
    """Each service's settings model: the `ServiceSettings` subclass its module defines."""
    found = {}
    for name in SERVICE_NAMES:
        module = importlib.import_module(f"services.{name}.settings")
        classes = [
            value
            for value in vars(module).values()
            if isinstance(value, type)
            and issubclass(value, ServiceSettings)
            and value.__module__ == module.__name__
        ]
        if len(classes) != 1:
            raise LookupError(f"services.{name}.settings defines {len(classes)} settings models")
        found[name] = classes[0]
    return found


def app_of(definition: ServiceDefinition) -> FastAPI:
    """The service's app with throwaway keys; built, not started, so nothing is reached."""
    seed = new_signing_seed()
    settings = ServiceSettings.model_construct(
        auth_secret=SecretStr(new_secret()),
        keyring_master_key=SecretStr(new_master_key()),
        signing_key=SecretStr(seed),
        signing_trusted_keys=json.dumps({definition.name: [public_key_of(seed)]}),
    )
    return build_app(definition, settings)


# Markdown -------------------------------------------------------------------------------


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: str = "") -> str:
    """A Markdown table; `align` gives one character per column (`c` centres it)."""
    rule = "|".join(":-:" if a == "c" else "---" for a in align.ljust(len(header), "l"))
    lines = ["| " + " | ".join(header) + " |", f"|{rule}|"]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def code(text: object) -> str:
    return f"`{text}`"


# permissions ------------------------------------------------------------------------------


def permissions_block() -> str:
    rows = [
        [
            code(permission),
            allows,
            *("✓" if permission in ROLE_PERMISSIONS[r] else "" for r in ROLES),
        ]
        for permission, allows in PERMISSIONS.items()
    ]
    return table(["permission", "allows", *ROLES], rows, "ll" + "c" * len(ROLES))


# routes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    permission: str
    personal_data: bool

    def row(self) -> list[str]:
        return [
            f"`{self.method} {self.path}`",
            self.summary,
            code(self.permission),
            "✓" if self.personal_data else "",
        ]


def declared_routes(app: FastAPI) -> list[Route]:
    """The routes that need a token, in the order the app declares them."""
    operations = app.openapi()["paths"]
    routes = []
    for info in api_routes(app):
        if info.path in PUBLIC_PATHS:
            continue
        operation = operations.get(info.path, {}).get(info.method.lower(), {})
        requirement = info.requirement
        routes.append(
            Route(
                method=info.method,
                path=info.path,
                summary=operation.get("summary", ""),
                permission=requirement.permission if requirement else "(none: refused to all)",
                personal_data=info.method == "GET" and reads_personal_data(info.route),
            )
        )
    return routes


def routes_block() -> str:
    by_service = {name: declared_routes(app_of(d)) for name, d in definitions().items()}
    shared = [
        r for r in next(iter(by_service.values())) if all(r in v for v in by_service.values())
    ]
    header = ["route", "what", "permission", "personal data"]
    public = ", ".join(code(p) for p in sorted(PUBLIC_PATHS))
    parts = [
        f"Public, without a token, on every service: {public}.\n",
        "Every service:\n",
        table(header, [r.row() for r in shared], "lllc"),
    ]
    for name, routes in by_service.items():
        own = [r.row() for r in routes if r not in shared]
        parts += [f"The {name} service:\n", table(header, own, "lllc")]
    return "\n".join(parts)


# configuration --------------------------------------------------------------------------

_TYPE_NAMES: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "text",
    bool: "`true` or `false`",
    Decimal: "decimal",
    Path: "file path",
    SecretStr: "secret text",
    PostgresDsn: "PostgreSQL URL",
}


def type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(code(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join(type_text(a) for a in args if a is not type(None))
    if origin is Annotated:
        bounds = constraints(args[1:])
        return type_text(args[0]) + (f" ({bounds})" if bounds else "")
    if origin is dict:
        return f"JSON object: {type_text(args[0])} → {type_text(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(code(member.value) for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, AnyUrl):
        return "URL"
    return _TYPE_NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def constraints(metadata: Sequence[Any]) -> str:
    said = []
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            said.append(f"≥ {item.ge}")
        elif isinstance(item, annotated_types.Gt):
            said.append(f"> {item.gt}")
        elif isinstance(item, annotated_types.Le):
            said.append(f"≤ {item.le}")
        elif isinstance(item, annotated_types.Lt):
            said.append(f"< {item.lt}")
        elif isinstance(item, annotated_types.MinLen) and item.min_length == 1:
            said.append("not empty")
    return ", ".join(said)


def default_text(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True, validated_data={})
    if value is PydanticUndefined:
        return "required"
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return code(str(value).lower())
    if isinstance(value, float):
        return code(f"{value:g}")
    if isinstance(value, dict) and not value:
        return code("{}")
    return code(value)


def variable_of(settings: type[ServiceSettings], name: str, info: FieldInfo) -> str:
    if isinstance(info.validation_alias, str):
        return info.validation_alias
    return f"{settings.model_config.get('env_prefix', '')}{name}".upper()


def setting_rows(settings: type[ServiceSettings]) -> Iterator[list[str]]:
    for name, info in settings.model_fields.items():
        bounds = constraints(info.metadata)
        kind = type_text(info.annotation) + (f" ({bounds})" if bounds else "")
        yield [
            code(variable_of(settings, name, info)),
            kind,
            default_text(info),
            info.description or "",
        ]


def configuration_block() -> str:
    header = ["variable", "type", "default", "meaning"]
    shared = list(setting_rows(ServiceSettings))
    own = [
        [name, *row]
        for name, settings in settings_classes().items()
        for row in setting_rows(settings)
        if row not in shared
    ]
    return "\n".join(
        [
            "Every service:\n",
            table(header, shared),
            "Each service's own:\n",
            table(["service", *header], own),
        ]
    )


# metrics ----------------------------------------------------------------------------------


def registered_metrics() -> dict[int, tuple[MetricWrapperBase, set[str]]]:
    """Every metric a module of `services` holds, with the packages holding it."""
    definitions()  # imports every service with what it registers
    found: dict[int, tuple[MetricWrapperBase, set[str]]] = {}
    for module_name, module in list(sys.modules.items()):
        parts = module_name.split(".")
        if parts[0] != "services" or len(parts) < 2 or module is None:
            continue
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                found.setdefault(id(value), (value, set()))[1].add(parts[1])
    return found


def metrics_block() -> str:
    rows = []
    for metric, owners in registered_metrics().values():
        described = next(iter(metric.describe()))
        name = described.name + ("_total" if described.type == "counter" else "")
        # label names are not public API of prometheus_client; every metric class has them
        labels = ", ".join(getattr(metric, "_labelnames", ()))
        owner = "every service" if "runtime" in owners else ", ".join(sorted(owners))
        order = (owner != "every service", owner, name)
        rows.append((order, [code(name), described.type, labels, owner, described.documentation]))
    rows.sort(key=lambda item: item[0])
    return table(["metric", "type", "labels", "exported by", "meaning"], [r for _, r in rows])


# events -----------------------------------------------------------------------------------


def first_paragraph(text: str | None) -> str:
    return " ".join((text or "").strip().split("\n\n")[0].split())


def events_block(here: Path) -> str:
    def schema(filename: str) -> str:
        return f"[schema]({os.path.relpath(SCHEMA_DIR / filename, here)})"

    rows = [
        [
            code(topic),
            code(model.event_type),
            str(model.schema_version),
            schema(schema_filename(model)),
            first_paragraph(model.__doc__),
        ]
        for topic, models in events_by_topic().items()
        for model in models
    ]
    rows += [
        [
            code(topic),
            f"`{model.__module__}.{model.__name__}`",
            "",
            schema(f"{topic}.schema.json"),
            first_paragraph(model.__doc__),
        ]
        for topic, model in inbound_models().items()
    ]
    return table(["topic", "event type or document", "version", "JSON Schema", "what"], rows)


# Documents ------------------------------------------------------------------------------

BLOCKS: dict[str, Callable[[Path], str]] = {
    "permissions": lambda here: permissions_block(),
    "routes": lambda here: routes_block(),
    "configuration": lambda here: configuration_block(),
    "metrics": lambda here: metrics_block(),
    "events": events_block,
}
"""Every generated block by name; each is given the folder of the document it goes in
(for relative links)."""


class UnknownBlock(Exception):
    """A document names a generated block this module does not make."""


def regenerate(text: str, render: Callable[[str], str], where: str = "") -> str:
    """`text` with each generated block's body replaced by what `render(name)` gives."""

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in BLOCKS:
            raise UnknownBlock(f"{where}: no generated block {name!r}; known: {', '.join(BLOCKS)}")
        return match["start"] + render(name) + match["end"]

    return BLOCK.sub(replace, text)


def blocks_in(text: str) -> list[str]:
    return [match["name"] for match in BLOCK.finditer(text)]


def expected_documents(root: Path = REPO) -> dict[Path, str]:
    """Each document holding generated blocks, as it should read."""
    rendered: dict[tuple[str, Path], str] = {}

    def render_in(here: Path) -> Callable[[str], str]:
        def render(name: str) -> str:
            if (name, here) not in rendered:
                rendered[name, here] = BLOCKS[name](here)
            return rendered[name, here]

        return render

    expected = {}
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        if blocks_in(text):
            where = str(path.relative_to(root))
            expected[path] = regenerate(text, render_in(path.parent), where)
    return expected


def main() -> int:
    changed = 0
    for path, text in expected_documents().items():
        if path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            changed += 1
            print(f"wrote {path.relative_to(REPO)}")
    print(f"{changed} document(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
