"""HTTP routes of customer merges: merge customers into a survivor, read a merge, undo it.

The rules of what a merge carries over are in `merging.py`; the events it records in
`merges.py`. Each merge and undo is in the audit log under the survivor.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from services.customer import merges
from services.customer.dependencies import App, Version
from services.customer.merging import MAX_ABSORBED, MERGEABLE_FIELDS, CustomerMerge, MergeRule
from services.customer.metrics import MERGES, MERGES_ABSORBED, UNMERGES
from services.runtime.http.answers import etag
from services.runtime.http.audit import AUDITED_CUSTOMER
from services.runtime.http.authorization import requires
from services.runtime.http.commands import StrictBody

router = APIRouter(tags=["customer merges"])


class FieldChoices(StrictBody):
    """A person's choice, field by field: the customer whose value the field takes."""

    model_config = ConfigDict(extra="forbid")

    name: UUID | None = None
    kind: UUID | None = None
    industry: UUID | None = None
    region: UUID | None = None
    source_channel: UUID | None = None
    owner: UUID | None = None
    importance_tier: UUID | None = None
    loyalty_stage: UUID | None = None
    value_behaviour: UUID | None = None
    relationship_level: UUID | None = None


assert tuple(FieldChoices.model_fields) == MERGEABLE_FIELDS

EXAMPLE_SURVIVOR = "0b6c4a52-1f0e-4c55-9c1e-3f1f7c1d2a10"
EXAMPLE_ABSORBED = "7e2f8c14-9b3d-4a61-8f05-2d9c6b3e1a47"


class MergeCustomers(StrictBody):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "survivor_id": EXAMPLE_SURVIVOR,
                    "absorbed": [EXAMPLE_ABSORBED],
                    "rule": "survivor",
                    "choices": {"owner": EXAMPLE_ABSORBED},
                }
            ]
        },
    )

    survivor_id: UUID = Field(description="The customer that remains.")
    absorbed: list[UUID] = Field(
        min_length=1,
        max_length=MAX_ABSORBED,
        description="The customers merged into the survivor.",
    )
    rule: MergeRule = Field(
        default=MergeRule.SURVIVOR,
        description="How each field is chosen: `survivor` keeps the survivor's value and "
        "fills its empty fields from the most recently changed absorbed customer; `newest` "
        "takes the value of the most recently changed customer that has one.",
    )
    choices: FieldChoices = Field(
        default_factory=FieldChoices,
        description="A person's choice, field by field: the customer whose value the field "
        f"takes, whatever the rule. Fields: {', '.join(MERGEABLE_FIELDS)}.",
    )


class MergeView(BaseModel):
    merge_id: UUID
    survivor_id: UUID
    absorbed: list[UUID]
    rule: str
    choices: dict[str, UUID]
    undone: bool
    merged_at: datetime
    updated_at: datetime
    survivor_version: int | None = Field(
        default=None, description="The survivor's version after this command (also the ETag)."
    )


def _view(record: CustomerMerge, survivor_version: int | None = None) -> MergeView:
    return MergeView.model_validate({**record.as_dict(), "survivor_version": survivor_version})


@router.post(
    "/customer-merges",
    dependencies=[requires("customers:merge")],
    status_code=201,
    summary="Merge customers into one survivor",
    description="Records `customer.merged` on each absorbed customer and `customer.absorbed` "
    "on the survivor. Every service then shows the absorbed customers' records under the "
    "survivor, lands new facts naming them on the survivor, and answers a read of an "
    'absorbed id with 307 to the survivor. `If-Match: "<version>"` guards the survivor.',
)
async def merge_customers(
    body: MergeCustomers, app: App, version: Version, request: Request, response: Response
) -> MergeView:
    setattr(request.state, AUDITED_CUSTOMER, str(body.survivor_id))
    choices = {k: v for k, v in body.choices.model_dump().items() if v is not None}
    record, survivor = await asyncio.to_thread(
        merges.merge, app, body.survivor_id, body.absorbed, body.rule, choices, version
    )
    MERGES.labels(rule=body.rule.value).inc()
    MERGES_ABSORBED.inc(len(body.absorbed))
    response.headers["Location"] = f"/customer-merges/{record.id}"
    etag(response, survivor.version)
    return _view(record, survivor.version)


@router.get(
    "/customer-merges/{merge_id}",
    dependencies=[requires("customers:read")],
    summary="A merge: its survivor, the customers absorbed, and whether it was undone",
)
async def read_merge(merge_id: UUID, app: App, request: Request) -> MergeView:
    record = await asyncio.to_thread(merges.merge_record, app, merge_id)
    setattr(request.state, AUDITED_CUSTOMER, str(record.survivor_id))
    return _view(record)


@router.post(
    "/customer-merges/{merge_id}/undo",
    dependencies=[requires("customers:unmerge")],
    summary="Undo a merge",
    description="Records `customer.unmerged` on each absorbed customer and "
    "`customer.absorption_undone` on the survivor: every service shows each customer's "
    "records under that customer again. Facts recorded on the survivor during the merge "
    "stay on it; what the merge set on the survivor is restored unless changed since. "
    "409 if it was undone already.",
)
async def undo_merge(merge_id: UUID, app: App, request: Request, response: Response) -> MergeView:
    record, survivor = await asyncio.to_thread(merges.unmerge, app, merge_id)
    setattr(request.state, AUDITED_CUSTOMER, str(record.survivor_id))
    UNMERGES.inc()
    etag(response, survivor.version)
    return _view(record, survivor.version)
