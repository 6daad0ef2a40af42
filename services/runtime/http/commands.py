"""What every command route shares: the `If-Match` version it expects, and a body that
refuses fields it does not know. The answer is `answers.Accepted`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from pydantic import BaseModel, ConfigDict

from services.runtime.errors import BadRequest

IF_MATCH_PATTERN = r'^\s*(\*|(W/)?"?[0-9]{1,18}"?)\s*$'
"""What `If-Match` may hold (anything else answers 400)."""


def expected_version(
    if_match: Annotated[
        str | None,
        Header(
            description='The version you last saw, e.g. `"3"`; a different current version '
            "answers 409; `*` or none: no check.",
            json_schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
) -> int | None:
    """The aggregate version a command expects, from `If-Match` (none: no check)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"')
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        raise BadRequest(f'If-Match must be a version number such as "3", got {if_match!r:.40}')
    return int(text)


ExpectedVersion = Annotated[int | None, Depends(expected_version)]
"""A route parameter carrying the `If-Match` version of a command."""


class StrictBody(BaseModel):
    """The body of a command: a field the API does not know is refused (422), never
    silently dropped."""

    model_config = ConfigDict(extra="forbid")
