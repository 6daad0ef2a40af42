"""How the APIs name a possible duplicate: in the answer to a registration, in an
import's report, and in the queue (`duplicate_routes.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from contracts.personal import Personal
from services.customer.duplicates import Match


class EvidenceView(BaseModel):
    kind: str = Field(
        description="reference, email, phone (exact matches of normalised values), name "
        "(similar names, company suffixes left out), city, address, contact (a contact "
        "person of the same name)."
    )
    detail: Personal = Field(description="What the two records share.")
    weight: float = Field(description="How much this piece says on its own, 0 to 1.")


class PossibleDuplicate(BaseModel):
    """A customer of the directory the record may be the same as."""

    customer_id: UUID
    name: Personal
    score: float = Field(description="0 to 1; from 0.75 on, a possible duplicate.")
    evidence: list[EvidenceView]


def possible_duplicate(match: Match, row: Mapping[str, Any]) -> PossibleDuplicate:
    return PossibleDuplicate(
        customer_id=row["customer_id"],
        name=row["name"],
        score=match.score,
        evidence=[EvidenceView.model_validate(e) for e in match.evidence_dicts()],
    )
