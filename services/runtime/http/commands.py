"""What every command route shares: the `If-Match` version it expects, and a body that
refuses fields it does not know. The answer is `answers.Accepted`."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import Depends, Header
from pydantic import BaseModel, ConfigDict, model_validator

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
    silently dropped; and a yes/no or whole-number field takes a JSON `true`/`false` or
    number only (`0` is not `false`, `"5"` is not 5), as the OpenAPI document says."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_types(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            value = data.get(field.alias or name)
            if value is None:
                continue
            kinds = _plain_kinds(field.annotation)
            if kinds == {bool} and not isinstance(value, bool):
                raise ValueError(f"{field.alias or name} must be true or false")
            if kinds == {int} and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{field.alias or name} must be a whole number")
        return data


def _plain_kinds(annotation: Any) -> set[Any]:
    """The types `annotation` allows besides None (`bool | None` -> {bool})."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        return {k for a in get_args(annotation) if a is not type(None) for k in _plain_kinds(a)}
    return {annotation}
