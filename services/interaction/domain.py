"""Aggregates of the interaction service: the rules each obeys. Pure; no I/O.

- `Interaction`: one contact with a customer; corrections are events, nothing is
  overwritten.
- `Ticket`: a service request or complaint with its service-level clock.
- `SurveyResponse` and `Feedback`: what the customer told us.
- `ContactPlan`: how often and on which channel a customer is to be contacted.
- `SlaPolicy`: how soon a ticket of each severity must be answered and resolved.

Values arrive validated against the contract vocabularies; the aggregates guard what
depends on their own state. A command that changes nothing records no event.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from contracts.interaction_values import SEVERITY_RANK, Severity
from services.runtime.errors import Conflict, RuleViolation

_NAMESPACE = UUID("c1d4a2b7-6e0f-4c3d-8a95-3f2e1b0d9c87")


def inbound_id(kind: str, source: str, source_id: str) -> UUID:
    """The aggregate id of a fact another system reported: the same message, the same id."""
    return uuid.uuid5(_NAMESPACE, f"{kind}\x1f{source}\x1f{source_id}")


def contact_plan_id(customer_id: UUID) -> UUID:
    return uuid.uuid5(_NAMESPACE, f"contact-plan\x1f{customer_id}")


# Consent -----------------------------------------------------------------------------

CONSENT_CHANNEL = {"phone": "phone", "sms": "sms", "email": "email", "wechat": "wechat"}
"""Interaction channels a customer can opt out of (the customer record's channel names);
meetings, visits, chat and web have no opt-out."""


def against_opt_out(channel: str, direction: str, opted_out: Collection[str]) -> bool:
    """Whether a contact goes against the customer's consent: we reached out to them on
    a channel they opted out of. A customer contacting us on any channel never does."""
    return direction == "outbound" and CONSENT_CHANNEL.get(channel) in opted_out


def consent_refusal(channel: str) -> RuleViolation:
    """The answer to recording an outbound contact on an opted-out channel with no reason."""
    return RuleViolation(
        f"the customer opted out of {channel}: an outbound {channel} contact is not recorded "
        "without a stated reason. If the customer asked for it, send it again with "
        '"consent_override": {"reason": "customer_request", "note": "who asked, when"}; '
        'for a notice the law requires, "reason": "legal_obligation"'
    )


def check_consent(
    channel: str, direction: str, opted_out: Collection[str], override: dict[str, Any] | None
) -> None:
    """Refuse an outbound contact on an opted-out channel unless a reason is stated."""
    if override is None and against_opt_out(channel, direction, opted_out):
        raise consent_refusal(channel)


class Interaction(Aggregate):
    CORRECTABLE = (
        "channel",
        "direction",
        "started_at",
        "duration_seconds",
        "participants",
        "subject",
        "notes",
        "opportunity_id",
        "ticket_id",
        "consent_override",
    )

    @staticmethod
    def create_id(requested_id: UUID | None = None) -> UUID:
        return requested_id or uuid.uuid4()

    @event("Logged")
    def __init__(
        self,
        *,
        customer_id: UUID,
        channel: str,
        direction: str,
        started_at: datetime,
        duration_seconds: int | None,
        participants: list[dict[str, Any]],
        subject: str,
        notes: str,
        opportunity_id: UUID | None,
        ticket_id: UUID | None,
        source: str | None,
        source_id: str | None,
        customer_reference: dict[str, str] | None,
        customer_hint: dict[str, Any] | None,
        requested_id: UUID | None,
        consent_override: dict[str, Any] | None = None,
        consent_breach: bool = False,
    ) -> None:
        self.customer_id = customer_id
        self.channel = channel
        self.direction = direction
        self.started_at = started_at
        self.duration_seconds = duration_seconds
        self.participants = [dict(p) for p in participants]
        self.subject = subject
        self.notes = notes
        self.opportunity_id = opportunity_id
        self.ticket_id = ticket_id
        self.source = source
        self.source_id = source_id
        self.customer_reference = customer_reference
        self.customer_hint = customer_hint
        self.consent_override = consent_override
        self.consent_breach = consent_breach

    def correct(
        self, changes: dict[str, Any], reason: str, opted_out: Collection[str] = ()
    ) -> None:
        """Correct fields. A correction that makes the contact an outbound one on a channel
        the customer opted out of needs a `consent_override`, as logging it would; one
        that states the reason, or no longer goes against the opt-out, clears a breach."""
        unknown = set(changes) - set(self.CORRECTABLE)
        if unknown:
            raise RuleViolation(f"these fields cannot be corrected: {', '.join(sorted(unknown))}")
        for required in ("channel", "direction", "started_at", "subject", "consent_override"):
            if required in changes and changes[required] is None:
                raise RuleViolation(f"{required} cannot be cleared, only corrected")
        effective = {k: v for k, v in changes.items() if getattr(self, k) != v}
        channel = effective.get("channel", self.channel)
        direction = effective.get("direction", self.direction)
        override = changes.get("consent_override", self.consent_override)
        if {"channel", "direction"} & set(effective):
            check_consent(channel, direction, opted_out, override)
        still_breach = (
            self.consent_breach
            and override is None
            and direction == "outbound"
            and channel == self.channel
        )
        if still_breach != self.consent_breach:
            effective["consent_breach"] = still_breach
        if effective:
            self._corrected(customer_id=self.customer_id, changes=effective, reason=reason)

    @event("Corrected")
    def _corrected(self, customer_id: UUID, changes: dict[str, Any], reason: str) -> None:
        for name, value in changes.items():
            setattr(self, name, value)


class Ticket(Aggregate):
    @event("Opened")
    def __init__(
        self,
        *,
        customer_id: UUID,
        kind: str,
        channel: str,
        category: str,
        severity: str,
        subject: str,
        description: str,
        opened_at: datetime,
        response_due_at: datetime,
        resolution_due_at: datetime,
        customer_reference: dict[str, str] | None,
        customer_hint: dict[str, Any] | None,
    ) -> None:
        self.customer_id = customer_id
        self.kind = kind
        self.channel = channel
        self.category = category
        self.severity = severity
        self.subject = subject
        self.description = description
        self.opened_at = opened_at
        self.response_due_at = response_due_at
        self.resolution_due_at = resolution_due_at
        self.customer_reference = customer_reference
        self.customer_hint = customer_hint
        self.status = "open"
        self.assignee: str | None = None
        self.level = 0
        self.first_responded_at: datetime | None = None
        self.resolved_at: datetime | None = None

    @property
    def is_closed(self) -> bool:
        return self.status == "closed"

    def _guard_open(self, action: str) -> None:
        if self.status == "closed":
            raise Conflict(f"ticket {self.id} is closed; reopen it before you {action}")

    def assign(self, assignee: str) -> None:
        self._guard_open("assign it")
        if assignee != self.assignee:
            self._assigned(customer_id=self.customer_id, assignee=assignee)

    @event("Assigned")
    def _assigned(self, customer_id: UUID, assignee: str) -> None:
        self.assignee = assignee

    def escalate(
        self, severity: str | None, reason: str, targets: dict[str, tuple[int, int]]
    ) -> None:
        """Raise the severity (or only the level); due times follow the new severity,
        counted from when the ticket was opened, and never move later."""
        self._guard_open("escalate it")
        if self.status == "resolved":
            raise Conflict(f"ticket {self.id} is resolved; reopen it to escalate")
        new = severity or self.severity
        if SEVERITY_RANK[Severity(new)] < SEVERITY_RANK[Severity(self.severity)]:
            raise RuleViolation(
                f"escalation cannot lower the severity from {self.severity} to {new}"
            )
        response_minutes, resolution_minutes = targets[new]
        response_due = min(self.response_due_at, self.opened_at + _minutes(response_minutes))
        resolution_due = min(self.resolution_due_at, self.opened_at + _minutes(resolution_minutes))
        self._escalated(
            customer_id=self.customer_id,
            severity=new,
            level=self.level + 1,
            reason=reason,
            response_due_at=response_due,
            resolution_due_at=resolution_due,
        )

    @event("Escalated")
    def _escalated(
        self,
        customer_id: UUID,
        severity: str,
        level: int,
        reason: str,
        response_due_at: datetime,
        resolution_due_at: datetime,
    ) -> None:
        self.severity = severity
        self.level = level
        self.response_due_at = response_due_at
        self.resolution_due_at = resolution_due_at

    def respond(self, responded_at: datetime, responder: str, message: str) -> None:
        self._guard_open("answer it")
        if responded_at < self.opened_at:
            raise RuleViolation("a response cannot come before the ticket was opened")
        self._responded(
            customer_id=self.customer_id,
            responded_at=responded_at,
            responder=responder,
            message=message,
        )

    @event("Responded")
    def _responded(
        self, customer_id: UUID, responded_at: datetime, responder: str, message: str
    ) -> None:
        if self.first_responded_at is None:
            self.first_responded_at = responded_at

    def resolve(self, resolved_at: datetime, resolution: str) -> None:
        self._guard_open("resolve it")
        if self.status == "resolved":
            raise Conflict(f"ticket {self.id} is resolved already")
        if resolved_at < self.opened_at:
            raise RuleViolation("a ticket cannot be resolved before it was opened")
        self._resolved(customer_id=self.customer_id, resolved_at=resolved_at, resolution=resolution)

    @event("Resolved")
    def _resolved(self, customer_id: UUID, resolved_at: datetime, resolution: str) -> None:
        self.status = "resolved"
        self.resolved_at = resolved_at
        if self.first_responded_at is None:
            self.first_responded_at = resolved_at

    def reopen(self, reopened_at: datetime, reason: str, resolution_minutes: int) -> None:
        if self.status == "open":
            raise Conflict(f"ticket {self.id} is open; only a resolved or closed one reopens")
        self._reopened(
            customer_id=self.customer_id,
            reopened_at=reopened_at,
            reason=reason,
            resolution_due_at=reopened_at + _minutes(resolution_minutes),
        )

    @event("Reopened")
    def _reopened(
        self, customer_id: UUID, reopened_at: datetime, reason: str, resolution_due_at: datetime
    ) -> None:
        self.status = "open"
        self.resolved_at = None
        self.resolution_due_at = resolution_due_at

    def close(self, closed_at: datetime) -> None:
        if self.status == "closed":
            return
        if self.status != "resolved":
            raise Conflict(f"ticket {self.id} is not resolved; resolve it before closing")
        self._closed(customer_id=self.customer_id, closed_at=closed_at)

    @event("Closed")
    def _closed(self, customer_id: UUID, closed_at: datetime) -> None:
        self.status = "closed"


class SurveyResponse(Aggregate):
    @staticmethod
    def create_id(requested_id: UUID | None = None) -> UUID:
        return requested_id or uuid.uuid4()

    @event("Answered")
    def __init__(
        self,
        *,
        customer_id: UUID,
        survey: str,
        csat: int | None,
        nps: int | None,
        comment: str,
        channel: str | None,
        interaction_id: UUID | None,
        ticket_id: UUID | None,
        answered_at: datetime,
        source: str | None,
        source_id: str | None,
        customer_reference: dict[str, str] | None,
        customer_hint: dict[str, Any] | None,
        requested_id: UUID | None,
    ) -> None:
        if csat is None and nps is None:
            raise RuleViolation("a survey answer carries csat, nps or both")
        self.customer_id = customer_id
        self.survey = survey
        self.csat = csat
        self.nps = nps
        self.comment = comment
        self.channel = channel
        self.interaction_id = interaction_id
        self.ticket_id = ticket_id
        self.answered_at = answered_at
        self.source = source
        self.source_id = source_id
        self.customer_reference = customer_reference
        self.customer_hint = customer_hint


class Feedback(Aggregate):
    @event("Given")
    def __init__(
        self,
        *,
        customer_id: UUID,
        kind: str,
        text: str,
        channel: str | None,
        interaction_id: UUID | None,
        given_at: datetime,
    ) -> None:
        self.customer_id = customer_id
        self.kind = kind
        self.text = text
        self.channel = channel
        self.interaction_id = interaction_id
        self.given_at = given_at


class ContactPlan(Aggregate):
    """One per customer (its id derives from the customer's): set, changed, ended."""

    @staticmethod
    def create_id(customer_id: UUID) -> UUID:
        return contact_plan_id(customer_id)

    @event("Started")
    def __init__(self, *, customer_id: UUID) -> None:
        self.customer_id = customer_id
        self.plan: dict[str, Any] | None = None

    def set(self, plan: dict[str, Any]) -> None:
        current = {k: v for k, v in (self.plan or {}).items() if k != "starts_at"}
        wanted = {k: v for k, v in plan.items() if k != "starts_at"}
        if current != wanted:
            self._set(customer_id=self.customer_id, plan=dict(plan))

    @event("Set")
    def _set(self, customer_id: UUID, plan: dict[str, Any]) -> None:
        self.plan = dict(plan)

    def end(self, reason: str) -> None:
        if self.plan is None:
            raise RuleViolation(f"customer {self.customer_id} has no contact plan to end")
        self._ended(customer_id=self.customer_id, reason=reason)

    @event("Ended")
    def _ended(self, customer_id: UUID, reason: str) -> None:
        self.plan = None


def _minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


# Service-level targets ---------------------------------------------------------------

DEFAULT_RESPONSE_MINUTES = {"critical": 15, "high": 60, "medium": 240, "low": 1440}
DEFAULT_RESOLUTION_MINUTES = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}
AT_RISK_SHARE = 0.2
"""A running clock is "at risk" once less than this share of its target is left."""


@dataclass(frozen=True)
class SlaPolicy:
    """How soon a ticket of each severity must be answered and resolved, in minutes.

    The targets in force when a ticket is opened (or escalated, or reopened) are turned
    into due times and recorded in the ticket's events, so a later change of targets
    never rewrites the history of earlier tickets.
    """

    response_minutes: dict[str, int]
    resolution_minutes: dict[str, int]

    def due(self, severity: str, since: datetime) -> tuple[datetime, datetime]:
        return (
            since + _minutes(self.response_minutes[severity]),
            since + _minutes(self.resolution_minutes[severity]),
        )

    def resolution_minutes_for(self, severity: str) -> int:
        return self.resolution_minutes[severity]

    def targets(self) -> dict[str, tuple[int, int]]:
        return {
            s.value: (self.response_minutes[s.value], self.resolution_minutes[s.value])
            for s in Severity
        }


def policy(response: dict[str, int], resolution: dict[str, int]) -> SlaPolicy:
    """The policy with the given targets over the defaults, checked for sense."""
    merged_response = {**DEFAULT_RESPONSE_MINUTES, **response}
    merged_resolution = {**DEFAULT_RESOLUTION_MINUTES, **resolution}
    for severity in Severity:
        if merged_response[severity] > merged_resolution[severity]:
            raise ValueError(
                f"the {severity} response target ({merged_response[severity]} min) is longer "
                f"than its resolution target ({merged_resolution[severity]} min)"
            )
    return SlaPolicy(merged_response, merged_resolution)
