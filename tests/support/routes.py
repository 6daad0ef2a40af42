"""Every route of every service, as the permission tests walk them.

Services are discovered from `services/*/service.py` (each with a `DEFINITION`), routes
from each app's OpenAPI document, and the permission each route declares
(`requires(...)`) from the app's routes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI

import services
from services.runtime.http.authorization import PUBLIC_PATHS, Requirement, api_routes
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings
from tests.support.auth import app_keys

SERVICES_DIR = Path(services.__file__).parent


def service_definitions() -> dict[str, ServiceDefinition]:
    found = {}
    for path in sorted(SERVICES_DIR.glob("*/service.py")):
        module = importlib.import_module(f"services.{path.parent.name}.service")
        definition = getattr(module, "DEFINITION", None)
        if isinstance(definition, ServiceDefinition):
            found[definition.name] = definition
    return found


DEFINITIONS = service_definitions()
SETTINGS = ServiceSettings(**app_keys(), rate_limit_per_minute=0, rate_limit_anonymous_per_minute=0)
"""Settings of an app built in-process without its runtime (no database, no broker)."""


def app_of(definition: ServiceDefinition, settings: ServiceSettings = SETTINGS) -> FastAPI:
    return build_app(definition, settings)


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every route in the OpenAPI document."""
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def requirement_of(app: FastAPI, method: str, path: str) -> Requirement | None:
    for route in api_routes(app):
        if (route.method, route.path) == (method, path):
            return route.requirement
    raise AssertionError(f"{method} {path} is in the OpenAPI document but not a route")


def _enum(document: dict[str, Any], schema: dict[str, Any]) -> list[Any]:
    for option in [schema, *schema.get("anyOf", [])]:
        if "$ref" in option:
            option = document["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        if "enum" in option:
            return list(option["enum"])
    return []


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` without the options that name a shared schema (large vocabularies such as
    currencies, whose every value would multiply the requests)."""
    options = [o for o in schema.get("anyOf", []) if "$ref" not in o]
    return {**{k: v for k, v in schema.items() if k != "$ref"}, "anyOf": options}


def _is_moment(schema: dict[str, Any]) -> bool:
    return any(o.get("format") == "date-time" for o in [schema, *schema.get("anyOf", [])])


def get_requests(
    document: dict[str, Any], ids: dict[str, str]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(route, path, query) of every GET route of an OpenAPI `document` but the public
    ones: the path with `ids` (by parameter name), once with the required query
    parameters only, and once per value of each parameter with an enumeration of its own
    (`format`, `by`) and with each moment parameter set to now."""
    for template, item in document["paths"].items():
        operation = item.get("get")
        if operation is None or template in PUBLIC_PATHS:
            continue
        path = template
        base: dict[str, Any] = {}
        variants: list[dict[str, Any]] = []
        for parameter in operation.get("parameters", []):
            name, schema = parameter["name"], parameter.get("schema", {})
            if parameter["in"] == "path":
                path = path.replace("{" + name + "}", ids[name])
                continue
            if parameter.get("required"):
                values = _enum(document, schema)
                if _is_moment(schema):
                    values = [datetime.now(UTC).isoformat()]
                assert values, f"GET {template}: give a value for the required {name!r}"
                base[name] = values[0]
            variants += [{name: value} for value in _enum({}, _inline(schema))]
            if _is_moment(schema):
                variants.append({name: datetime.now(UTC).isoformat()})
        for variant in [{}, *variants]:
            yield template, path, {**base, **variant}
