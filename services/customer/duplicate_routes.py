"""HTTP routes of the queue of possible duplicates: read it, dismiss a pair."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from contracts.personal import Personal
from services.customer.dependencies import App, Pool
from services.customer.duplicate_answers import EvidenceView
from services.customer.duplicate_queue import ordered, queue_page
from services.customer.metrics import DUPLICATE_PAIRS_DISMISSED
from services.runtime.errors import RuleViolation
from services.runtime.http.answers import etag
from services.runtime.http.authorization import requires
from services.runtime.http.paging import SortKey

router = APIRouter(tags=["duplicates"])

QUEUE_ORDER = SortKey(("rank", "customer_a", "customer_b"), (int, UUID, UUID))
"""The queue's order: the best score first, then by the pair's ids."""


class PairCustomer(BaseModel):
    customer_id: UUID
    name: Personal


class DuplicatePair(BaseModel):
    customer_a: PairCustomer = Field(description="The customer with the smaller id.")
    customer_b: PairCustomer
    score: float = Field(description="0 to 1: how likely the two are one customer.")
    evidence: list[EvidenceView]


class DuplicatePage(BaseModel):
    items: list[DuplicatePair]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class Dismissed(BaseModel):
    customer_a: UUID
    customer_b: UUID
    version: int = Field(description="The version of `customer_a`, which records it.")
    dismissed: bool = True


@router.get(
    "/duplicates",
    dependencies=[requires("duplicates:review")],
    summary="The queue of possible duplicates, the most likely first",
    description="Pairs of customers of the directory that may be one customer, with their "
    "score and the evidence. Kept up to date as customers change; a dismissed pair never "
    "comes back.",
)
async def duplicate_queue(
    db: Pool,
    customer_id: Annotated[
        UUID | None, Query(description="Only the pairs this customer is in.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> DuplicatePage:
    rows = await queue_page(
        db, customer_id=customer_id, limit=limit + 1, after=QUEUE_ORDER.after(cursor)
    )
    return DuplicatePage(
        items=[
            DuplicatePair(
                customer_a=PairCustomer(customer_id=r["customer_a"], name=r["name_a"]),
                customer_b=PairCustomer(customer_id=r["customer_b"], name=r["name_b"]),
                score=float(r["score"]),
                evidence=[EvidenceView.model_validate(e) for e in r["evidence"]],
            )
            for r in rows[:limit]
        ],
        next_cursor=QUEUE_ORDER.next_cursor(rows, limit),
    )


@router.post(
    "/duplicates/{customer_a}/{customer_b}/dismiss",
    dependencies=[requires("duplicates:review")],
    summary="Dismiss a pair of possible duplicates: they are two customers",
    description="Records `customer.duplicate_dismissed` on the customer with the smaller "
    "id (the ids may come in either order). The pair leaves the queue and never comes "
    "back, even after the directory is rebuilt. Dismissing it again changes nothing.",
    responses={404: {"description": "One of the two customers does not exist."}},
)
async def dismiss_pair(
    customer_a: UUID, customer_b: UUID, app: App, response: Response
) -> Dismissed:
    if customer_a == customer_b:
        raise RuleViolation("a pair is two different customers")
    first, second = ordered(customer_a, customer_b)
    before = await asyncio.to_thread(app.customer, first)
    customer = await asyncio.to_thread(app.dismiss_duplicate, first, second)
    if customer.version != before.version:
        DUPLICATE_PAIRS_DISMISSED.inc()
    etag(response, customer.version)
    return Dismissed(customer_a=first, customer_b=second, version=customer.version)
