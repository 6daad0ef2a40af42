"""How `local.reference` replaces the bodies of generated blocks in a document."""

from __future__ import annotations

import pytest

from local.reference import (
    UnknownBlock,
    blocks_in,
    regenerate,
)


def test_an_unknown_block_is_refused_naming_it() -> None:
    text = "<!-- generated: nonsense -->\n<!-- end generated -->\n"
    with pytest.raises(UnknownBlock, match="nonsense"):
        regenerate(text, lambda name: "", "somewhere.md")


def test_a_block_body_is_replaced_and_its_markers_kept() -> None:
    text = "before\n<!-- generated: permissions -->\nold\n<!-- end generated -->\nafter\n"
    assert blocks_in(text) == ["permissions"]
    assert regenerate(text, lambda name: f"new {name}\n") == (
        "before\n<!-- generated: permissions -->\nnew permissions\n<!-- end generated -->\nafter\n"
    )
