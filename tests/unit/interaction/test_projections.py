"""The interaction read models' folds (`services.interaction.projections`): ticket clocks
and breaches, corrected interactions searchable by their new words."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from contracts import interaction as contract
from contracts.envelope import EventEnvelope
from services.interaction.projections import fold_interaction, fold_ticket

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
TICKET = uuid.uuid4()
CUSTOMER = uuid.uuid4()


def event(payload: Any, version: int, aggregate_id: uuid.UUID = TICKET) -> EventEnvelope[Any]:
    envelope_class: Any = cast(Any, EventEnvelope)[type(payload)]
    built: EventEnvelope[Any] = envelope_class(
        event_id=uuid.uuid4(),
        event_type=payload.event_type,
        schema_version=1,
        customer_id=CUSTOMER,
        aggregate_id=aggregate_id,
        aggregate_version=version,
        occurred_at=T0,
        recorded_at=T0,
        producer="tests",
        payload=payload,
    )
    return built


def test_the_ticket_row_knows_when_a_target_was_missed_and_when_to_warn() -> None:
    opened = contract.TicketOpened(
        kind="complaint",
        channel="phone",
        category="delivery",
        severity="high",
        subject="延迟",
        opened_at=T0,
        response_due_at=T0 + timedelta(minutes=30),
        resolution_due_at=T0 + timedelta(hours=4),
    )
    row = fold_ticket(None, event(opened, 1))
    assert row is not None
    assert row["response_warn_at"] == T0 + timedelta(minutes=24)  # a fifth of 30 min left
    responded = contract.TicketResponded(responded_at=T0 + timedelta(minutes=45), responder="王芳")
    row = fold_ticket(row, event(responded, 2))
    assert row is not None and row["response_breached"] and not row["resolution_breached"]
    resolved = contract.TicketResolved(resolved_at=T0 + timedelta(hours=1), resolution="ok")
    row = fold_ticket(row, event(resolved, 3))
    assert row is not None and row["status"] == "resolved"
    reopened = contract.TicketReopened(
        reopened_at=T0 + timedelta(hours=2),
        reason="破损",
        resolution_due_at=T0 + timedelta(hours=6),
    )
    row = fold_ticket(row, event(reopened, 4))
    assert row is not None
    assert (row["status"], row["reopen_count"], row["resolved_at"]) == ("open", 1, None)
    assert row["resolution_warn_at"] == T0 + timedelta(hours=5, minutes=12)
    assert fold_ticket(None, event(resolved, 3)) is None  # nothing before the opening


def test_a_corrected_interaction_is_searchable_by_its_new_words() -> None:
    interaction_id = uuid.uuid4()
    logged = contract.InteractionLogged(
        channel="phone",
        direction="inbound",
        started_at=T0,
        participants=[{"role": "staff", "name": "Wang Fang"}],
        subject="咨询发票",
    )
    row = fold_interaction(None, event(logged, 1, interaction_id))
    assert row is not None and "发票" in row["search_grams"]
    assert row["participant_names"] == ["wang fang"]
    corrected = contract.InteractionCorrected(
        subject="投诉退款", changed=["subject"], reason="wrong subject"
    )
    row = fold_interaction(row, event(corrected, 2, interaction_id))
    assert row is not None
    assert row["search_text"] == "投诉退款"
    assert "退款" in row["search_grams"] and "发票" not in row["search_grams"]
    assert (row["version"], row["correction_count"]) == (2, 1)
