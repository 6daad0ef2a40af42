"""The routes of the sales views; their response models are in `responses.py`."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from contracts.sales_values import ActivityKind, Currency, Stage
from services.runtime.customer_aliases import merge_group, merge_group_of
from services.runtime.errors import NotFound
from services.runtime.http.answers import AsOf, HistoryEntry, etag
from services.runtime.http.authorization import requires
from services.runtime.http.csvexport import csv_response, paged_csv, rows_csv
from services.runtime.http.paging import Position
from services.runtime.http.parameters import Day, Moment
from services.sales import queries
from services.sales.dependencies import App, Pool, ReadableOpportunity, Visible
from services.sales.queries import (
    OPPORTUNITY_ORDER,
    PURCHASE_ORDER,
    DateBasis,
    GroupBy,
    OpportunityFilter,
    PurchaseFilter,
)
from services.sales.views.past import detail_as_of
from services.sales.views.responses import (
    AnalysisRow,
    ContractView,
    OpportunityDetail,
    OpportunityPage,
    OpportunityView,
    OwnerRow,
    PipelineRow,
    PredictionRow,
    PurchasePage,
    PurchaseTotal,
    PurchaseView,
)

router = APIRouter(tags=["sales views"])

Format = Annotated[
    Literal["json", "csv"], Query(description="`csv` answers the same rows as a CSV file.")
]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=1000)]


async def opportunity_filter(
    db: Pool,
    stage: Stage | None = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    region: Annotated[str | None, Query(max_length=200)] = None,
    currency: Currency | None = None,
    product: Annotated[str | None, Query(max_length=200)] = None,
    customer_id: UUID | None = None,
    opened_from: Annotated[Day | None, Query(description="Opened on or after.")] = None,
    opened_to: Annotated[Day | None, Query(description="Opened on or before.")] = None,
) -> OpportunityFilter:
    return OpportunityFilter(
        stage=stage.value if stage else None,
        owner=owner,
        region=region,
        currency=currency.value if currency else None,
        product=product,
        customer_id=await merge_group_of(db, customer_id),
        opened_from=opened_from,
        opened_to=opened_to,
    )


Filters = Annotated[OpportunityFilter, Depends(opportunity_filter)]


def deal_filter(filters: Filters, visible: Visible) -> OpportunityFilter:
    """The filters, bounded to the deals the caller may see one by one."""
    return dataclasses.replace(filters, owners=visible.deals)


def figure_filter(filters: Filters, visible: Visible) -> OpportunityFilter:
    """The filters, bounded to the deals the caller's figures may cover."""
    return dataclasses.replace(filters, owners=visible.figures)


DealFilters = Annotated[OpportunityFilter, Depends(deal_filter)]
FigureFilters = Annotated[OpportunityFilter, Depends(figure_filter)]


def _json_rows(rows: list[dict[str, Any]], *names: str) -> list[dict[str, Any]]:
    for row in rows:
        for name in names:
            if isinstance(row.get(name), str):
                row[name] = json.loads(row[name])
    return rows


def _respond(rows: list[dict[str, Any]], model: type[BaseModel], format: str, filename: str) -> Any:
    if format == "csv":
        return rows_csv(rows, list(model.model_fields), filename)
    return [model.model_validate(r) for r in rows]


CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}}}


# Aggregated views ---------------------------------------------------------------------


@router.get(
    "/pipeline",
    dependencies=[requires("opportunities:read")],
    summary="The pipeline by stage: counts, amounts and probability-weighted amounts",
    responses=CSV,
)
async def pipeline(db: Pool, filters: FigureFilters, format: Format = "json") -> list[PipelineRow]:
    rows = await queries.pipeline(db, filters)
    result: list[PipelineRow] = _respond(rows, PipelineRow, format, "pipeline.csv")
    return result


@router.get(
    "/analysis/opportunities",
    dependencies=[requires("opportunities:read")],
    summary="Opportunity counts, amounts and win rate by period, product, region, stage or owner",
    responses=CSV,
)
async def analysis(
    db: Pool,
    filters: FigureFilters,
    by: GroupBy,
    date_basis: Annotated[
        DateBasis,
        Query(description="Which date places an opportunity in a month or quarter."),
    ] = "opened",
    format: Format = "json",
) -> list[AnalysisRow]:
    rows = await queries.analysis(db, by, date_basis, filters)
    result: list[AnalysisRow] = _respond(rows, AnalysisRow, format, f"opportunities-by-{by}.csv")
    return result


@router.get(
    "/analysis/owners",
    dependencies=[requires("opportunities:read")],
    summary="Performance per owner",
    responses=CSV,
)
async def owners(db: Pool, filters: FigureFilters, format: Format = "json") -> list[OwnerRow]:
    rows = await queries.owner_performance(db, filters)
    result: list[OwnerRow] = _respond(rows, OwnerRow, format, "owners.csv")
    return result


@router.get(
    "/analysis/predictions",
    dependencies=[requires("opportunities:read")],
    summary="How often predicted results of activities held, per owner and activity kind",
    responses=CSV,
)
async def predictions(
    db: Pool,
    visible: Visible,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    kind: ActivityKind | None = None,
    since: Day | None = None,
    format: Format = "json",
) -> list[PredictionRow]:
    rows = await queries.prediction_accuracy(
        db, owner, kind.value if kind else None, since, visible.figures
    )
    result: list[PredictionRow] = _respond(rows, PredictionRow, format, "predictions.csv")
    return result


# Opportunities --------------------------------------------------------------------------


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def _with_overdue(row: dict[str, Any], today: dt.date) -> dict[str, Any]:
    open_ = row["stage"] not in ("won", "lost")
    late = (today - row["expected_close_date"]).days
    row["days_overdue"] = late if open_ and late > 0 else None
    return _json_rows([row], "products")[0]


@router.get(
    "/opportunities", dependencies=[requires("opportunities:read")], summary="Search opportunities"
)
async def list_opportunities(
    db: Pool,
    filters: DealFilters,
    overdue: Annotated[
        bool, Query(description="Only open ones whose expected close date has passed.")
    ] = False,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OpportunityPage:
    today = _today()
    if overdue:
        filters = dataclasses.replace(filters, overdue_on=today)
    after = OPPORTUNITY_ORDER.after(cursor)
    rows = await queries.find_opportunities(db, filters, limit=limit + 1, after=after)
    return OpportunityPage(
        items=[OpportunityView.model_validate(_with_overdue(r, today)) for r in rows[:limit]],
        next_cursor=OPPORTUNITY_ORDER.next_cursor(rows, limit),
    )


@router.get(
    "/opportunities/overdue",
    dependencies=[requires("opportunities:read")],
    summary="Open opportunities whose expected close date has passed",
)
async def overdue_opportunities(
    db: Pool,
    filters: DealFilters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OpportunityPage:
    return await list_opportunities(db, filters, True, limit, cursor)


OPPORTUNITY_CSV = [n for n in OpportunityView.model_fields if n != "products"]


@router.get(
    "/opportunities/export.csv",
    dependencies=[requires("opportunities:read")],
    summary="Export every opportunity matching the filters as CSV",
    response_class=Response,
    responses=CSV,
)
async def export_opportunities(
    db: Pool,
    filters: DealFilters,
    overdue: bool = False,
) -> Response:
    today = _today()
    if overdue:
        filters = dataclasses.replace(filters, overdue_on=today)

    async def fetch(after: Position | None) -> list[dict[str, Any]]:
        rows = await queries.find_opportunities(db, filters, limit=1000, after=after)
        return [_with_overdue(r, today) for r in rows]

    return csv_response(
        paged_csv(fetch, OPPORTUNITY_CSV, OPPORTUNITY_ORDER, 1000),
        "opportunities.csv",
    )


@router.get(
    "/opportunities/{opportunity_id}",
    dependencies=[requires("opportunities:read")],
    summary="An opportunity with its activities, quotes, contract and payments, now or as "
    "it was at a past moment",
    responses={404: {"description": "No such opportunity (at that moment), or not yours."}},
)
async def read_opportunity(
    opportunity_id: UUID,
    db: Pool,
    app: App,
    visible: Visible,
    response: Response,
    as_of: AsOf = None,
) -> OpportunityDetail:
    if as_of is not None:
        return await opportunity_as_of(opportunity_id, as_of, db, app, visible, response)
    row = await queries.get_opportunity(db, opportunity_id)
    if row is None:
        raise NotFound(f"no opportunity with id {opportunity_id}")
    visible.check(row["owner"], opportunity_id)
    _with_overdue(row, _today())
    _json_rows(row["quotes"], "lines")
    etag(response, row["version"])
    return OpportunityDetail.model_validate(row)


async def opportunity_as_of(
    opportunity_id: UUID,
    moment: dt.datetime,
    db: Pool,
    app: App,
    visible: Visible,
    response: Response,
) -> OpportunityDetail:
    """The opportunity at `moment`, for whoever may read it now (its present owner)."""
    present = await asyncio.to_thread(app.opportunity, opportunity_id)
    visible.check(present.owner, opportunity_id)
    past, events = await asyncio.to_thread(app.opportunity_as_of, opportunity_id, moment)
    name = await queries.customer_name(db, past.customer_id)
    detail = detail_as_of(past, events, name, moment)
    etag(response, detail.version)
    return detail


@router.get(
    "/opportunities/{opportunity_id}/history",
    dependencies=[requires("opportunities:read"), ReadableOpportunity],
    summary="Every change to an opportunity: what, when and by whom (from the event store)",
)
async def opportunity_history(opportunity_id: UUID, app: App) -> list[HistoryEntry]:
    entries = await asyncio.to_thread(app.history, opportunity_id)
    return [HistoryEntry.model_validate(e) for e in entries]


# Contracts ------------------------------------------------------------------------------


@router.get(
    "/contracts",
    dependencies=[requires("opportunities:read")],
    summary="Signed contracts with what has been paid and what is owed",
)
async def list_contracts(
    db: Pool,
    visible: Visible,
    customer_id: UUID | None = None,
    outstanding_only: Annotated[
        bool, Query(description="Only contracts not yet paid in full.")
    ] = False,
    format: Format = "json",
) -> list[ContractView]:
    rows = await queries.contracts_of(
        db,
        customer_id=await merge_group_of(db, customer_id),
        outstanding_only=outstanding_only,
        owners=visible.deals,
    )
    if format == "csv":
        columns = [n for n in ContractView.model_fields if n != "payments"]
        download: Any = rows_csv(rows, columns, "contracts.csv")
        return download
    return [ContractView.model_validate(r) for r in rows]


@router.get(
    "/contracts/{contract_id}",
    dependencies=[requires("opportunities:read")],
    summary="A contract, its payments and its outstanding balance",
    responses={404: {"description": "No such contract (yet)."}},
)
async def read_contract(contract_id: str, db: Pool, visible: Visible) -> ContractView:
    rows = await queries.contracts_of(db, contract_id=contract_id, owners=visible.deals)
    if not rows:
        raise NotFound(f"no contract with id {contract_id}")
    return ContractView.model_validate(rows[0])


# Purchases and customers -----------------------------------------------------------------


async def purchase_filter(
    db: Pool,
    customer_id: UUID | None = None,
    source: Annotated[str | None, Query(max_length=63)] = None,
    currency: Currency | None = None,
    since: Annotated[Moment | None, Query(description="Occurred at or after.")] = None,
    until: Annotated[Moment | None, Query(description="Occurred before.")] = None,
) -> PurchaseFilter:
    return PurchaseFilter(
        customer_id=await merge_group_of(db, customer_id),
        source=source,
        currency=currency.value if currency else None,
        since=since,
        until=until,
    )


PurchaseFilters = Annotated[PurchaseFilter, Depends(purchase_filter)]


async def _purchase_page(
    db: Pool, filters: PurchaseFilter, limit: int, cursor: str | None
) -> PurchasePage:
    after = PURCHASE_ORDER.after(cursor)
    rows = await queries.find_purchases(db, filters, limit=limit + 1, after=after)
    page = _json_rows(rows[:limit], "items")
    return PurchasePage(
        items=[PurchaseView.model_validate(r) for r in page],
        totals=[
            PurchaseTotal.model_validate(t) for t in await queries.purchase_totals(db, filters)
        ],
        next_cursor=PURCHASE_ORDER.next_cursor(rows, limit),
    )


@router.get(
    "/purchases",
    dependencies=[requires("opportunities:read")],
    summary="Purchases reported by other systems, newest first",
)
async def list_purchases(
    db: Pool,
    filters: PurchaseFilters,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PurchasePage:
    return await _purchase_page(db, filters, limit, cursor)


PURCHASE_CSV = [n for n in PurchaseView.model_fields if n != "items"]


@router.get(
    "/purchases/export.csv",
    dependencies=[requires("opportunities:read")],
    summary="Export every purchase matching the filters as CSV",
    response_class=Response,
    responses=CSV,
)
async def export_purchases(db: Pool, filters: PurchaseFilters) -> Response:
    async def fetch(after: Position | None) -> list[dict[str, Any]]:
        return await queries.find_purchases(db, filters, limit=1000, after=after)

    return csv_response(paged_csv(fetch, PURCHASE_CSV, PURCHASE_ORDER, 1000), "purchases.csv")


@router.get(
    "/customers/{customer_id}/purchases",
    dependencies=[requires("opportunities:read")],
    summary="A customer's purchases, newest first, with totals by currency",
)
async def customer_purchases(
    customer_id: UUID,
    db: Pool,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> PurchasePage:
    group = await merge_group(db, customer_id)
    return await _purchase_page(db, PurchaseFilter(customer_id=group), limit, cursor)


@router.get(
    "/customers/{customer_id}/opportunities",
    dependencies=[requires("opportunities:read")],
    summary="A customer's opportunities",
)
async def customer_opportunities(
    customer_id: UUID,
    db: Pool,
    visible: Visible,
    stage: Stage | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> OpportunityPage:
    filters = OpportunityFilter(
        customer_id=await merge_group(db, customer_id),
        stage=stage.value if stage else None,
        owners=visible.deals,
    )
    return await list_opportunities(db, filters, False, limit, cursor)
