"""The committed JSON schemas of the contracts are current (`contracts.jsonschema`)."""

from __future__ import annotations

from contracts.jsonschema import SCHEMA_DIR, expected_files


def test_committed_json_schemas_are_current() -> None:
    expected = expected_files()
    committed = {p.name: p.read_text(encoding="utf-8") for p in SCHEMA_DIR.glob("*.schema.json")}
    stale = sorted(n for n in expected if committed.get(n) != expected[n])
    extra = sorted(set(committed) - set(expected))
    assert not stale and not extra, (
        f"stale: {stale}, extra: {extra}; run `python -m contracts.jsonschema` and commit"
    )
