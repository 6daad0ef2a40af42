"""Analytics commands over HTTP: defining a segment by a rule and changing it (a new
version), and fitting the lifetime value models now. The rule is checked before it
reaches the event store, so that a bad rule is answered with 422 naming the problem."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from pydantic import BaseModel, Field

from contracts.values import JSON_LINES, LINE, Line, Text
from services.analytics.dependencies import App, Pool, analytics_settings
from services.analytics.domain.rules import RuleError, validate
from services.analytics.projections.fits import REQUEST, fit_models
from services.analytics.settings import AnalyticsSettings
from services.analytics.views.models import FitView, fit_view
from services.runtime.errors import RuleViolation
from services.runtime.http import answers
from services.runtime.http.answers import etag
from services.runtime.http.authorization import requires
from services.runtime.http.commands import ExpectedVersion, StrictBody

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


class FitAnswer(BaseModel):
    fits: list[FitView] = Field(description="The new version of each model.")
    scored: int = Field(description="Customers scored afterwards with the models in use.")
    deals_scored: int = Field(description="Open deals scored with the win model in use.")


@router.post(
    "/models/fit",
    summary="Fit the lifetime value models over the current population now",
    dependencies=[requires("models:write")],
)
async def fit(
    pool: Pool, settings: Annotated[AnalyticsSettings, Depends(analytics_settings)]
) -> FitAnswer:
    """Fits BG/NBD, Gamma-Gamma and the win model, records each fit as the model's next
    version and scores every customer and open deal with the models in use (a fit that
    did not converge, or a population too small, leaves the previous model in use and
    says so)."""
    report = await fit_models(pool, settings.valuation(), settings.converter(), trigger=REQUEST)
    in_use = {f.record.model: f.version for f in report.fits if f.record.usable}
    views = [
        fit_view(
            {
                "version": f.version,
                "fitted_at": f.fitted_at,
                "trigger": f.trigger,
                **vars(f.record),
            },
            in_use.get(f.record.model, 0),
        )
        for f in report.fits
    ]
    return FitAnswer(fits=views, scored=report.scored, deals_scored=report.deals_scored)
