"""`crm import customers` refuses what it cannot use in one line naming it, before it
connects to anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm.cli import main

EXAMPLES = Path(__file__).parents[3] / "docs" / "examples"
FILE = str(EXAMPLES / "customers.csv")
MAPPING = str(EXAMPLES / "customer-import-mapping.yaml")


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (("missing.csv", "--mapping", MAPPING), "missing.csv is not a file"),
        ((FILE, "--mapping", "missing.yaml"), "missing.yaml"),
        ((FILE, "--mapping", FILE), "the mapping"),
        ((FILE, "--mapping", MAPPING, "--report", "/no/such/folder/r.csv"), "folder"),
        ((FILE, "--mapping", MAPPING, "--import-id", "../x"), "import id"),
        ((FILE, "--mapping", MAPPING, "--batch-size", "0"), "--batch-size"),
    ],
)
def test_what_cannot_be_imported_is_refused_in_one_line(
    arguments: tuple[str, ...], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm@127.0.0.1:1/none")
    with pytest.raises(SystemExit) as refused:
        main(["import", "customers", *arguments])
    message = str(refused.value)
    assert message.startswith("crm import: ") and complaint in message, message
    assert "\n" not in message
