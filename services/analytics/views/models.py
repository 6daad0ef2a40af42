"""The models' fits (the lifetime value models and the win model): each model's fit in
use and latest fit, every version of a model, and one version (`model_fits`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.analytics.dependencies import Pool
from services.analytics.domain.predictions import MODELS
from services.analytics.queries import models as queries
from services.analytics.queries.models import BY_VERSION
from services.analytics.views.answers import Cursor, Format, Limit, Moment, csv_of
from services.runtime.errors import NotFound
from services.runtime.http.authorization import requires

router = APIRouter(tags=["analytics"])

ModelName = Annotated[
    str, Path(max_length=64, description="bg_nbd, gamma_gamma or win_probability")
]
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Shortfall(BaseModel):
    """Why a population was too small to fit: `count` of `subject`, `minimum` needed."""

    subject: str
    count: int
    minimum: int


class FitView(BaseModel):
    model: str
    version: int
    outcome: str = Field(
        description="fitted; not_converged (the previous model stays in use; the parameters "
        "are where the optimiser stopped); not_enough_data (no parameters: see shortfall)."
    )
    in_use: bool = Field(description="This version scores the customers now.")
    fitted_at: Moment
    trigger: str = Field(description="schedule or request.")
    population: int = Field(
        description="Customers with a purchase the fit considered (win_probability: closed deals)."
    )
    excluded: int = Field(
        description="Customers left out: a purchase dated after the fit (a future signing day)."
    )
    parameters: dict[str, Any] | None = Field(
        description="BG/NBD: r, alpha (in periods of period_days days), a, b; Gamma-Gamma: "
        "p, q, gamma and the customers with a repeat spend it was fitted on; win_probability: "
        "the baseline log-odds (intercept), each column (a feature, or a feature's level) with "
        "its weight, and the closed deals (and won ones) it learned from."
    )
    log_likelihood: float | None
    converged: bool
    message: str
    shortfall: Shortfall | None


class ModelView(BaseModel):
    model: str
    versions: int = Field(description="How many fits the model has.")
    in_use: FitView | None = Field(description="The latest converged fit; null before one.")
    latest: FitView = Field(description="The latest fit, whatever it concluded.")


class Models(BaseModel):
    models: list[ModelView]


class FitPage(BaseModel):
    items: list[FitView]
    next_cursor: str | None


def fit_view(row: dict[str, Any], in_use: int | None) -> FitView:
    fields = {k: v for k, v in row.items() if k in FitView.model_fields and k != "in_use"}
    return FitView(**fields, in_use=row["version"] == in_use)


def known(model: str) -> str:
    if model not in MODELS:
        raise NotFound(f"no model {model!r}; the models are {', '.join(MODELS)}")
    return model


@router.get(
    "/models",
    summary="The lifetime value models: the fit in use and the latest fit of each",
    dependencies=[requires("analytics:read")],
)
async def models(pool: Pool) -> Models:
    rows = await queries.latest(pool)
    found = []
    for model in MODELS:
        mine = [r for r in rows if r["model"] == model]
        if not mine:
            continue
        in_use_row = next((r for r in mine if r["in_use"]), None)
        in_use = in_use_row["version"] if in_use_row else None
        found.append(
            ModelView(
                model=model,
                versions=mine[0]["versions"],
                in_use=fit_view(in_use_row, in_use) if in_use_row else None,
                latest=fit_view(next(r for r in mine if r["latest"]), in_use),
            )
        )
    return Models(models=found)


@router.get(
    "/models/{model}/versions",
    summary="Every fit of a model, newest first",
    dependencies=[requires("analytics:read")],
    response_model=FitPage,
)
async def model_versions(
    model: ModelName, pool: Pool, limit: Limit = 100, cursor: Cursor = None,
    format: Format = "json",
) -> FitPage | StreamingResponse:  # fmt: skip
    known(model)
    rows = await queries.versions(pool, model, BY_VERSION.after(cursor), limit + 1)
    in_use = await queries.in_use_version(pool, model)
    items = [fit_view(r, in_use) for r in rows[:limit]]
    if format == "csv":
        return csv_of(items, FitView, f"{model}-versions.csv")
    return FitPage(items=items, next_cursor=BY_VERSION.next_cursor(rows, limit))


@router.get(
    "/models/{model}/versions/{version}",
    summary="One fit of a model",
    dependencies=[requires("analytics:read")],
)
async def model_version(model: ModelName, version: VersionNumber, pool: Pool) -> FitView:
    row = await queries.version(pool, known(model), version)
    if row is None:
        raise NotFound(f"model {model!r} has no version {version}")
    return fit_view(row, await queries.in_use_version(pool, model))
