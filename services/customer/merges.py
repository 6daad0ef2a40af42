"""Merging customers and undoing merges in the event store (the rules are in `merging.py`).

A merge saves, in one transaction, the survivor's `Absorbed` event, each absorbed
customer's `Merged` event and the `CustomerMerge` record; undoing it saves the survivor's
`AbsorptionUndone`, each absorbed customer's `Unmerged` and the record's `Undone`.
Someone changing one of the customers at the same moment makes the merge fail with
`Conflict`, never half done.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import RecordConflictError

from services.customer.application import CustomerApplication
from services.customer.domain import Customer
from services.customer.merging import CustomerMerge, MergePlan, MergeRule, plan_merge, plan_undo
from services.runtime.errors import Conflict, NotFound


def merge(
    app: CustomerApplication,
    survivor_id: UUID,
    absorbed_ids: list[UUID],
    rule: MergeRule = MergeRule.SURVIVOR,
    choices: dict[str, UUID] | None = None,
    expected_version: int | None = None,
) -> tuple[CustomerMerge, Customer]:
    """Merge the customers into the survivor; the merge record and the survivor after it."""
    survivor = app.customer(survivor_id)
    if expected_version is not None and survivor.version != expected_version:
        raise Conflict(
            f"customer {survivor_id} is at version {survivor.version}, but the request "
            f"expected version {expected_version}; reload it and try again"
        )
    absorbed = [app.customer(i) for i in absorbed_ids]
    plan = plan_merge(survivor, absorbed, rule, choices)
    merge_id = uuid.uuid4()
    survivor.absorb(merge_id, absorbed_ids, asdict(plan))
    for customer in absorbed:
        customer.merge_into(merge_id, survivor_id)
    record = CustomerMerge(
        merge_id=merge_id,
        survivor_id=survivor_id,
        absorbed=list(absorbed_ids),
        rule=rule.value,
        choices={k: str(v) for k, v in (choices or {}).items()},
        merged_version=survivor.version,
    )
    _save(app, survivor, *absorbed, record)
    return record, survivor


def unmerge(app: CustomerApplication, merge_id: UUID) -> tuple[CustomerMerge, Customer]:
    """Undo the merge; the merge record and the survivor after it."""
    record = merge_record(app, merge_id)
    record.undo()
    survivor = app.customer(record.survivor_id)
    version = record.merged_version
    before: Customer = app.repository.get(survivor.id, version=version - 1)
    merged: Customer = app.repository.get(survivor.id, version=version)
    recorded = next(iter(app.events.get(survivor.id, gt=version - 1, lte=version)))
    plan = MergePlan(**{k: getattr(recorded, k) for k in MergePlan.__dataclass_fields__})
    undo = plan_undo(before, merged, survivor, plan)
    survivor.release(merge_id, record.absorbed, asdict(undo))
    absorbed = [app.customer(i) for i in record.absorbed]
    for customer in absorbed:
        customer.unmerge(merge_id)
    _save(app, survivor, *absorbed, record)
    return record, survivor


def merge_record(app: CustomerApplication, merge_id: UUID) -> CustomerMerge:
    try:
        found: Any = app.repository.get(merge_id)
    except AggregateNotFoundError:
        found = None
    if not isinstance(found, CustomerMerge):
        raise NotFound(f"no merge with id {merge_id}")
    return found


def _save(app: CustomerApplication, *aggregates: Any) -> None:
    for aggregate in aggregates:
        app.check_publishable(aggregate, "customer")
    try:
        app.save(*aggregates)
    except RecordConflictError:
        raise Conflict(
            "one of the customers was changed by someone else at the same time; try again"
        ) from None
