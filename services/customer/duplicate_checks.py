"""Possible duplicates of a record about to enter the directory: a registration
(`POST /customers`) and the rows of an import, against the directory
(`duplicate_queue.directory_matches`) and, for an import, within its batch of rows.

What the directory knows is what its projection folded: a customer registered a moment
ago may not be in it yet. Customers registered by ingestion (first seen in another
system) are never checked: a fact from another system is never held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

import asyncpg
from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.customer.duplicate_answers import PossibleDuplicate, possible_duplicate
from services.customer.duplicate_queue import directory_matches
from services.customer.duplicates import (
    THRESHOLD,
    Profile,
    blocking_keys,
    candidate_pairs,
    compare,
    may_match,
    profile_of,
)
from services.customer.import_mapping import ImportRow
from services.customer.import_report import Outcome
from services.customer.settings import CustomerSettings
from services.runtime.http.app import error_body
from services.runtime.service import ServiceRuntime

NEW = "new"
"""The reference of the record being registered."""


class IfDuplicate(StrEnum):
    REGISTER = "register"
    REFUSE = "refuse"


class DuplicateRefusal(BaseModel):
    error: str
    possible_duplicates: list[PossibleDuplicate] = Field(
        description="The customers the registration may be the same as, the most likely first."
    )


def phone_region_of(request: Request) -> str:
    """The service's `CRM_PHONE_REGION`."""
    runtime: ServiceRuntime = request.app.state.runtime
    settings = runtime.settings
    return settings.phone_region if isinstance(settings, CustomerSettings) else "CN"


async def registration_duplicates(
    pool: asyncpg.Pool, body: dict[str, Any], region: str
) -> list[PossibleDuplicate]:
    """The directory's customers a registration (`RegisterCustomer`, as JSON) may be."""
    profile = profile_of(
        NEW,
        body["name"],
        contacts=body.get("contacts") or (),
        addresses=body.get("addresses") or (),
        region=region,
    )
    found = await directory_matches(pool, [profile], region)
    return [possible_duplicate(match, row) for match, row in found.get(NEW, [])]


def refusal(candidates: list[PossibleDuplicate]) -> JSONResponse:
    names = "; ".join(f"{c.customer_id} ({c.name}, score {c.score:.2f})" for c in candidates)
    message = (
        f"possible duplicate of {names}; register anyway with if_duplicate=register, or "
        "change the existing customer"
    )
    body = error_body(message, possible_duplicates=[c.model_dump(mode="json") for c in candidates])
    return JSONResponse(body, status_code=409)


# Imports ------------------------------------------------------------------------------


def row_profile(row: ImportRow, customer_id: str) -> Profile:
    """An import row's profile; its values are clean already (phones in E.164)."""
    return profile_of(
        customer_id,
        row.profile.get("name") or "",
        contacts=row.contacts,
        addresses=row.addresses,
        references=row.all_references(),
        cleaned=True,
    )


async def import_duplicates(
    pool: asyncpg.Pool,
    rows: Sequence[ImportRow],
    outcomes: Sequence[Outcome],
    region: str,
) -> list[Outcome]:
    """`outcomes` with the possible duplicates of each row that creates a customer: the
    directory's customers and the batch's other new rows it may be (a row's own
    customer, and those of the batch, which the directory may hold by now, excepted)."""
    created = {o.row: str(o.customer_id) for o in outcomes if o.outcome == "created"}
    profiles = [row_profile(r, created[r.number]) for r in rows if r.number in created]
    if not profiles:
        return list(outcomes)
    row_of = {customer_id: row for row, customer_id in created.items()}
    keys = [blocking_keys(p) for p in profiles]
    found: dict[str, list[dict[str, Any]]] = {}
    in_directory = await directory_matches(
        pool, profiles, region, keys={p.ref: k for p, k in zip(profiles, keys, strict=True)}
    )
    for ref, matches in in_directory.items():
        found[ref] = [
            possible_duplicate(m, r).model_dump(mode="json")
            for m, r in matches
            if str(r["customer_id"]) not in row_of
        ]
    for i, j in candidate_pairs(profiles, keys=keys):
        first, second = profiles[i], profiles[j]
        if not may_match(first, second):
            continue
        match = compare(first, second)
        if match.score >= THRESHOLD:
            for mine, theirs in ((first, second), (second, first)):
                found.setdefault(mine.ref, []).append(
                    {
                        "row": row_of[theirs.ref],
                        "customer_id": theirs.ref,
                        "name": theirs.display_name,
                        "score": match.score,
                        "evidence": match.evidence_dicts(),
                    }
                )
    return [o.with_duplicates(found.get(created.get(o.row, ""), [])) for o in outcomes]
