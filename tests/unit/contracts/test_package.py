"""The contracts are a package of their own: no service code, installable alone, and usable
with nothing but pydantic (and cryptography, to open sealed personal values)."""

from __future__ import annotations

import ast
import importlib.metadata
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import contracts

CONTRACTS = Path(contracts.__file__).parent
ALLOWED_IMPORTS = {"contracts", "pydantic", "pydantic_core", "cryptography", "orjson", "faststream"}
ONLY_PYDANTIC = (
    "pydantic",
    "pydantic-core",
    "typing-extensions",
    "typing-inspection",
    "annotated-types",
    "email-validator",
    "dnspython",
    "idna",
    "cryptography",
    "cffi",
    "pycparser",
)


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_contracts_import_no_service_code() -> None:
    for path in CONTRACTS.rglob("*.py"):
        name = str(path.relative_to(CONTRACTS))
        third_party = imported_modules(path) - set(sys.stdlib_module_names)
        assert third_party <= ALLOWED_IMPORTS, f"{name} imports {third_party}"
        assert not third_party & {"services", "crm"}, name


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source" / "contracts"
    shutil.copytree(
        CONTRACTS, source, ignore=shutil.ignore_patterns("__pycache__", "build", "*.egg-info")
    )
    out = tmp_path / "dist"
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps"),
            *("--no-build-isolation", "--wheel-dir", str(out), str(source)),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("crm_contracts-*.whl")
    return wheel


USE_IT = """
import importlib.util, json, uuid
from importlib.resources import files
import contracts
from contracts.customer import CustomerRegistered
assert contracts.__file__.startswith(SITE), contracts.__file__
for other in ("services", "crm", "faststream", "orjson", "aiokafka", "fastapi"):
    assert importlib.util.find_spec(other) is None, other + " is importable"
event = contracts.build_envelope(
    CustomerRegistered(name="上海华信贸易有限公司", kind="business"),
    customer_id=uuid.uuid4(),
    producer="erp",
)
assert contracts.parse_event(contracts.serialize_event(event)) == event
from contracts.personal import ERASED, new_key, open_value, seal_value
key, customer = new_key(), uuid.uuid4()
assert open_value(seal_value("张伟", key, customer), key, customer) == "张伟"
assert open_value(seal_value("张伟", key, customer), None, customer) == ERASED
assert contracts.Topic.PURCHASES_INBOUND == "crm.inbound.purchases.v1"
assert len(contracts.all_event_models()) >= 38
from contracts.asyncapi import load_document
assert load_document()["asyncapi"] == "3.0.0"
schema = files("contracts") / "schemas" / "customer.registered.v1.schema.json"
assert json.loads(schema.read_text(encoding="utf-8"))["title"] == "customer.registered v1"
print("ok")
"""


def test_the_wheel_holds_only_the_contracts_and_works_with_only_its_dependencies(
    tmp_path: Path,
) -> None:
    wheel = build_wheel(tmp_path)
    names = zipfile.ZipFile(wheel).namelist()
    assert all(n.startswith(("contracts/", "crm_contracts-")) for n in names), names
    assert {"contracts/__init__.py", "contracts/asyncapi.json", "contracts/py.typed"} <= set(names)
    assert "contracts/schemas/crm.inbound.purchases.v1.schema.json" in names
    metadata = (
        zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("METADATA"))).decode()
    )
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    assert [r for r in requires if "extra ==" not in r] == [
        "Requires-Dist: pydantic[email]<3,>=2.10",
        "Requires-Dist: cryptography>=42",
    ]

    # A Python with the wheel and pydantic's own dependencies, and nothing else.
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    for distribution in ONLY_PYDANTIC:
        try:
            found = importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        tops = {Path(str(f)).parts[0] for f in found.files or () if ".." not in str(f)}
        for top in tops:
            target = Path(str(found.locate_file(top)))
            if not (site / top).exists():
                (site / top).symlink_to(target)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    result = subprocess.run(
        [
            sys.executable,
            "-S",
            "-c",
            f"import sys; SITE = {str(site)!r}; sys.path.insert(0, SITE)\n{USE_IT}",
        ],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
