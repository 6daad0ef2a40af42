"""Analytics commands over HTTP: defining a segment by a rule and changing it (a new
version). The rule is checked before it reaches the event store, so that a bad rule is
answered with 422 naming the problem."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import Field

from contracts.values import JSON_LINES, LINE, Line, Text
from services.analytics.dependencies import App
from services.analytics.domain.rules import RuleError, validate
from services.runtime.errors import RuleViolation
from services.runtime.http import answers
from services.runtime.http.answers import etag
from services.runtime.http.commands import ExpectedVersion, StrictBody
from services.runtime.http.security import requires

router = APIRouter(tags=["analytics"])

SegmentKey = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$"), LINE]


class SegmentBody(StrictBody):
    name: Line = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=2000)
    rule: Annotated[dict[str, Any], JSON_LINES] = Field(
        description="Rule language: all/any/not and {field, op, value} comparisons.",
        examples=[
            {
                "all": [
                    {"field": "value_tier", "op": "in", "value": ["top", "high"]},
                    {"field": "csat_average", "op": "lt", "value": 3},
                ]
            }
        ],
    )


class NewSegment(SegmentBody):
    segment: SegmentKey = Field(description="Key: lower case, digits, underscore; no dot.")


class Accepted(answers.Accepted):
    segment: str = Field(description="The segment's key.")


def checked(rule: dict[str, Any]) -> dict[str, Any]:
    try:
        validate(rule)
    except RuleError as exc:
        raise RuleViolation(str(exc)) from None
    return rule


@router.post(
    "/segments",
    status_code=201,
    summary="Define a segment by a rule",
    dependencies=[requires("segments:write")],
)
async def define_segment(body: NewSegment, app: App, response: Response) -> Accepted:
    checked(body.rule)
    definition = await asyncio.to_thread(
        app.define_segment,
        key=body.segment,
        name=body.name,
        description=body.description,
        rule=body.rule,
    )
    etag(response, definition.version)
    response.headers["Location"] = f"/segments/{body.segment}"
    return Accepted(segment=body.segment, version=definition.version)


@router.put(
    "/segments/{segment}",
    summary="Change a segment's rule (a new version)",
    dependencies=[requires("segments:write")],
)
async def change_segment(
    segment: str, body: SegmentBody, app: App, version: ExpectedVersion, response: Response
) -> Accepted:
    checked(body.rule)
    definition = await asyncio.to_thread(
        app.change_segment,
        key=segment,
        name=body.name,
        description=body.description,
        rule=body.rule,
        expected_version=version,
    )
    etag(response, definition.version)
    return Accepted(segment=segment, version=definition.version)
