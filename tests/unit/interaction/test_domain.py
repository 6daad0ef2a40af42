"""The interaction service's aggregates and how their events read on the topic; service
level targets that contradict themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.registry import parse_event, serialize_event
from services.interaction.application import InteractionApplication
from services.interaction.domain import Interaction, policy
from services.interaction.publishing import to_contract
from services.runtime.errors import Conflict, RuleViolation

OPENED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
POLICY = policy({"high": 30}, {"high": 240})


def published(app: InteractionApplication) -> list[dict[str, Any]]:
    events = []
    for notification in app.notification_log.select(1, 10):
        envelope = to_contract(app.mapper.to_domain_event(notification))
        if envelope is not None:
            events.append(parse_event(serialize_event(envelope)).model_dump(mode="json"))
    return events


def open_complaint(app: InteractionApplication) -> uuid.UUID:
    ticket = app.open_ticket(
        customer_id=uuid.uuid4(),
        opened_at=OPENED,
        policy=POLICY,
        kind="complaint",
        channel="phone",
        category="delivery",
        severity="medium",
        subject="货物延迟",
    )
    return ticket.id


def test_a_ticket_runs_through_its_life_and_its_clocks_follow_the_severity() -> None:
    app = InteractionApplication()
    ticket_id = open_complaint(app)
    app.escalate_ticket(ticket_id, "high", "客户威胁退货", POLICY)
    app.respond_to_ticket(ticket_id, OPENED + timedelta(minutes=10), "王芳", "")
    app.resolve_ticket(ticket_id, OPENED + timedelta(hours=1), "已送达")
    app.reopen_ticket(ticket_id, OPENED + timedelta(hours=2), "破损", POLICY)
    events = published(app)
    assert [e["event_type"] for e in events] == [
        "interaction.ticket_opened",
        "interaction.ticket_escalated",
        "interaction.ticket_responded",
        "interaction.ticket_resolved",
        "interaction.ticket_reopened",
    ]
    opened, escalated, _, _, reopened = (e["payload"] for e in events)
    assert opened["response_due_at"] == "2026-11-23T13:00:00Z"  # medium: 240 minutes
    assert escalated["response_due_at"] == "2026-11-23T09:30:00Z"  # high: 30 minutes
    assert events[2]["occurred_at"] == "2026-11-23T09:10:00Z"
    assert reopened["resolution_due_at"] == "2026-11-23T15:00:00Z"  # from the reopening
    assert {e["customer_id"] for e in events} == {events[0]["customer_id"]}


def test_ticket_commands_that_make_no_sense_are_refused_with_a_reason() -> None:
    app = InteractionApplication()
    ticket_id = open_complaint(app)
    with pytest.raises(Conflict, match="not resolved"):
        app.close_ticket(ticket_id, OPENED)
    with pytest.raises(RuleViolation, match="cannot lower"):
        app.escalate_ticket(ticket_id, "low", "x", POLICY)
    with pytest.raises(RuleViolation, match="before the ticket was opened"):
        app.respond_to_ticket(ticket_id, OPENED - timedelta(hours=1), "王芳", "")
    with pytest.raises(Conflict, match="is open"):
        app.reopen_ticket(ticket_id, OPENED, "x", POLICY)
    app.resolve_ticket(ticket_id, OPENED + timedelta(hours=1), "done")
    with pytest.raises(Conflict, match="version 1"):
        app.assign_ticket(ticket_id, "王芳", expected_version=1)


def test_a_correction_is_an_event_and_a_correction_that_changes_nothing_records_nothing() -> None:
    app = InteractionApplication()
    interaction = app.log_interaction(
        customer_id=uuid.uuid4(),
        channel="meeting",
        direction="outbound",
        started_at=OPENED,
        duration_seconds=3600,
        participants=[],
        subject="年度合同续签洽谈",
    )
    app.correct_interaction(interaction.id, {"duration_seconds": 3600}, "no change")
    app.correct_interaction(interaction.id, {"duration_seconds": 5400}, "ran over")
    events = published(app)
    assert [e["event_type"] for e in events] == ["interaction.logged", "interaction.corrected"]
    assert events[1]["payload"]["changed"] == ["duration_seconds"]
    assert events[0]["occurred_at"] == "2026-11-23T09:00:00Z"
    with pytest.raises(RuleViolation, match="customer_id"):
        app.correct_interaction(interaction.id, {"customer_id": uuid.uuid4()}, "x")


def test_a_contact_plan_is_one_per_customer_and_ending_a_missing_one_is_refused() -> None:
    app = InteractionApplication()
    customer_id = uuid.uuid4()
    plan = {"channel": "phone", "every_days": 30, "owner": "李娜", "note": "", "starts_at": OPENED}
    first = app.set_contact_plan(customer_id, plan)
    again = app.set_contact_plan(customer_id, {**plan, "starts_at": OPENED + timedelta(days=1)})
    assert first.id == again.id and again.version == 2  # the same plan: nothing recorded
    app.end_contact_plan(customer_id, "paused")
    with pytest.raises(RuleViolation, match="no contact plan"):
        app.end_contact_plan(customer_id, "again")
    assert [e["event_type"] for e in published(app)] == [
        "interaction.contact_plan_set",
        "interaction.contact_plan_ended",
    ]


def test_sla_targets_that_contradict_themselves_are_refused() -> None:
    with pytest.raises(ValueError, match="longer than its resolution target"):
        policy({"low": 10_000}, {"low": 60})
    assert policy({"high": 5}, {}).due("high", OPENED)[0] == OPENED + timedelta(minutes=5)


OVERRIDE = {"reason": "customer_request", "note": "客户要求短信发送报价"}


def test_an_outbound_contact_against_an_opt_out_needs_a_reason_and_the_reason_is_published() -> (
    None
):
    app = InteractionApplication()
    customer_id = uuid.uuid4()
    contact: dict[str, Any] = {"channel": "sms", "started_at": OPENED, "subject": "报价"}
    with pytest.raises(RuleViolation, match="opted out of sms"):
        app.log_interaction(
            customer_id=customer_id, opted_out=["sms"], direction="outbound", **contact
        )
    # the customer wrote to us
    app.log_interaction(customer_id=customer_id, opted_out=["sms"], direction="inbound", **contact)
    logged = app.log_interaction(
        customer_id=customer_id,
        opted_out=["sms"],
        direction="outbound",
        consent_override=OVERRIDE,
        **contact,
    )
    assert logged.consent_override == OVERRIDE
    payload = published(app)[-1]["payload"]
    assert (payload["consent_override"], payload["consent_breach"]) == (OVERRIDE, False)


def test_a_correction_into_an_opted_out_channel_needs_a_reason_and_a_reason_clears_a_breach() -> (
    None
):
    app = InteractionApplication()
    meeting = app.log_interaction(
        customer_id=uuid.uuid4(),
        channel="meeting",
        direction="outbound",
        started_at=OPENED,
        subject="拜访",
    )
    with pytest.raises(RuleViolation, match="opted out of phone"):
        app.correct_interaction(meeting.id, {"channel": "phone"}, "was a call", opted_out=["phone"])
    with pytest.raises(RuleViolation, match="cannot be cleared"):
        app.correct_interaction(meeting.id, {"consent_override": None}, "x")
    app.correct_interaction(
        meeting.id, {"channel": "phone", "consent_override": OVERRIDE}, "call", opted_out=["phone"]
    )
    corrected = published(app)[-1]["payload"]
    assert corrected["changed"] == ["channel", "consent_override"]

    reported = Interaction(
        **{**REPORTED_CALL, "customer_id": uuid.uuid4()}, consent_override=None, consent_breach=True
    )
    app.save(reported)
    app.correct_interaction(reported.id, {"direction": "inbound"}, "the customer called us")
    assert app.interaction(reported.id).consent_breach is False
    assert published(app)[-1]["payload"]["consent_breach"] is False


REPORTED_CALL: dict[str, Any] = {
    "channel": "phone",
    "direction": "outbound",
    "started_at": OPENED,
    "duration_seconds": 60,
    "participants": [],
    "subject": "回访",
    "notes": "",
    "opportunity_id": None,
    "ticket_id": None,
    "source": "callcentre",
    "source_id": "C-1",
    "customer_reference": None,
    "customer_hint": None,
    "requested_id": None,
}


def test_an_interaction_logged_before_consent_was_recorded_still_loads() -> None:
    app = InteractionApplication()
    logged = Interaction(
        **{**REPORTED_CALL, "customer_id": uuid.uuid4()}, consent_override=None, consent_breach=True
    )
    (event,) = logged.collect_events()
    for name in ("consent_override", "consent_breach"):
        del vars(event)[name]  # as events stored before these fields existed
    app.recorder.insert_events([app.mapper.to_stored_event(event)])
    loaded = app.interaction(logged.id)
    assert (loaded.consent_override, loaded.consent_breach) == (None, False)
    envelope = to_contract(event)
    assert envelope is not None and envelope.payload.consent_breach is False
