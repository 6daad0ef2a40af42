"""The documentation's generated tables say what the code says.

Permissions, routes, configuration, metrics and event types are generated into
`README.md` and `docs/*.md` by `python -m local.reference` (`make docs`); these tests
fail when a committed table differs from what the code gives now.
"""

from __future__ import annotations

import pytest

from local.reference import (
    BLOCKS,
    COMMAND,
    REPO,
    blocks_in,
    documents,
    expected_documents,
    settings_classes,
)
from services.runtime.settings import ServiceSettings


def test_committed_tables_are_current() -> None:
    stale = [
        str(path.relative_to(REPO))
        for path, text in expected_documents().items()
        if path.read_text(encoding="utf-8") != text
    ]
    assert not stale, f"generated tables are stale in {stale}: run `{COMMAND}` (make docs)"


def test_every_table_is_in_a_document() -> None:
    placed = [name for path in documents() for name in blocks_in(path.read_text("utf-8"))]
    missing = sorted(set(BLOCKS) - set(placed))
    twice = sorted({name for name in placed if placed.count(name) > 1})
    assert not missing, f"no document holds the generated block(s) {missing}"
    assert not twice, f"generated block(s) {twice} appear more than once"


@pytest.mark.parametrize("settings", [ServiceSettings, *settings_classes().values()])
def test_every_setting_says_what_it_is(settings: type[ServiceSettings]) -> None:
    undescribed = [name for name, info in settings.model_fields.items() if not info.description]
    assert not undescribed, (
        f"{settings.__name__}: give {undescribed} a Field(description=...); the "
        "configuration table of docs/operations.md is made from it"
    )
