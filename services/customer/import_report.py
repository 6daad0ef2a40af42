"""The report of an import: one `Outcome` a row (created, updated, unchanged or rejected,
and why), and the `Summary` that counts them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import UUID

from services.customer.normalisation import Refused

OUTCOMES = ("created", "updated", "unchanged", "rejected")


@dataclass(frozen=True)
class Outcome:
    """One line of an import's report."""

    row: int
    outcome: str
    customer_id: UUID | None = None
    key: str | None = None
    changes: tuple[str, ...] = ()
    """The event types the row records (or would record, in a dry run)."""
    reason: str | None = None
    detail: str | None = None
    possible_duplicates: tuple[dict[str, Any], ...] = ()
    """Of a row that creates a customer: the directory's customers (`customer_id`) and
    the rows of its batch (`row`) it may be the same as, with score and evidence."""

    def with_duplicates(self, found: list[dict[str, Any]]) -> Outcome:
        return replace(self, possible_duplicates=tuple(found)) if found else self

    def as_dict(self) -> dict[str, Any]:
        return {
            "row": self.row,
            "outcome": self.outcome,
            "customer_id": str(self.customer_id) if self.customer_id else None,
            "key": self.key,
            "changes": list(self.changes),
            "reason": self.reason,
            "detail": self.detail,
            "possible_duplicates": list(self.possible_duplicates),
        }


@dataclass
class Summary:
    """What an import (or its dry run) did, counted."""

    import_id: str
    dry_run: bool
    resumed_after: int = 0
    last_row: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    stopped: bool = False

    possible_duplicates: int = 0
    """Rows that create a customer who may be one the directory or the batch has."""

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.outcome] += 1
        self.possible_duplicates += bool(outcome.possible_duplicates)
        self.last_row = max(self.last_row, outcome.row)
        if outcome.reason:
            self.rejected_by_reason[outcome.reason] += 1

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "dry_run": self.dry_run,
            "state": "stopped" if self.stopped else "completed",
            "resumed_after_row": self.resumed_after,
            "last_row": self.last_row,
            "rows": self.rows,
            **{name: self.counts[name] for name in OUTCOMES},
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
            "possible_duplicates": self.possible_duplicates,
        }


def key_name(key: tuple[str, str] | None) -> str | None:
    """How the report names an external key: `source/id`."""
    return f"{key[0]}/{key[1]}" if key else None


def rejected(
    number: int,
    refused: Refused,
    customer_id: UUID | None = None,
    key: tuple[str, str] | None = None,
) -> Outcome:
    """The outcome of a row refused for the reason `refused` gives."""
    return Outcome(
        number,
        "rejected",
        customer_id,
        key_name(key),
        reason=refused.reason,
        detail=refused.detail,
    )
