"""Interaction commands: the service layer of the interaction service.

Each command loads its aggregate, checks the caller's expected version (optimistic
concurrency), lets the aggregate decide and saves the new events. Facts reported by other
systems (calls, messages, survey answers) are recorded in batches: one `save()` for all
new aggregates of a batch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from contracts.envelope import EventEnvelope
from services.interaction.domain import (
    ContactPlan,
    Feedback,
    Interaction,
    SlaPolicy,
    SurveyResponse,
    Ticket,
    check_consent,
    contact_plan_id,
)
from services.interaction.publishing import to_contract
from services.runtime.errors import Conflict
from services.runtime.storage.eventstore import EventSourcedApplication

A = TypeVar("A", bound=Aggregate)


class InteractionApplication(EventSourcedApplication):
    name = "Interactions"

    # Interactions --------------------------------------------------------------------

    def log_interaction(
        self,
        *,
        customer_id: UUID,
        requested_id: UUID | None = None,
        opted_out: Collection[str] = (),
        **fields: Any,
    ) -> Interaction:
        """Log a contact. With `requested_id` (derived from the caller's idempotency key)
        a repeated request returns the interaction logged the first time. An outbound
        contact on a channel in `opted_out` (the customer's opt-outs) needs a
        `consent_override`."""
        if requested_id is not None and (found := self._existing(Interaction, requested_id)):
            return found
        override = fields.get("consent_override")
        check_consent(fields["channel"], fields["direction"], opted_out, override)
        interaction = Interaction(
            customer_id=customer_id,
            channel=fields["channel"],
            direction=fields["direction"],
            started_at=fields["started_at"],
            duration_seconds=fields.get("duration_seconds"),
            participants=fields.get("participants") or [],
            subject=fields["subject"],
            notes=fields.get("notes") or "",
            opportunity_id=fields.get("opportunity_id"),
            ticket_id=fields.get("ticket_id"),
            source=None,
            source_id=None,
            customer_reference=None,
            customer_hint=None,
            requested_id=requested_id,
            consent_override=override,
            consent_breach=False,
        )
        return self._save_new(interaction)

    def interaction(self, interaction_id: UUID) -> Interaction:
        return self.load(interaction_id, Interaction, "interaction")

    def correct_interaction(
        self,
        interaction_id: UUID,
        changes: dict[str, Any],
        reason: str,
        expected_version: int | None = None,
        opted_out: Collection[str] = (),
    ) -> Interaction:
        return self.change(
            interaction_id,
            expected_version,
            lambda i: i.correct(changes, reason, opted_out),
            kind=Interaction,
            what="interaction",
        )

    def record_reported(self, aggregates: Sequence[Aggregate]) -> list[UUID]:
        """Save facts other systems reported, all in one `save()`.

        The caller has left out those already recorded; if another replica recorded some
        meanwhile, they are saved one by one and the repeats skipped. Returns the ids
        recorded now.
        """
        if not aggregates:
            return []
        try:
            self.save(*aggregates)
            return [a.id for a in aggregates]
        except RecordConflictError:
            recorded = []
            for aggregate in aggregates:
                try:
                    self.save(aggregate)
                    recorded.append(aggregate.id)
                except RecordConflictError:
                    continue
            return recorded

    # Tickets -------------------------------------------------------------------------

    def open_ticket(
        self, *, customer_id: UUID, opened_at: datetime, policy: SlaPolicy, **fields: Any
    ) -> Ticket:
        response_due, resolution_due = policy.due(fields["severity"], opened_at)
        ticket = Ticket(
            customer_id=customer_id,
            kind=fields["kind"],
            channel=fields["channel"],
            category=fields["category"],
            severity=fields["severity"],
            subject=fields["subject"],
            description=fields.get("description") or "",
            opened_at=opened_at,
            response_due_at=response_due,
            resolution_due_at=resolution_due,
            customer_reference=None,
            customer_hint=None,
        )
        self.save(ticket)
        return ticket

    def assign_ticket(
        self, ticket_id: UUID, assignee: str, expected_version: int | None = None
    ) -> Ticket:
        return self._change_ticket(ticket_id, expected_version, lambda t: t.assign(assignee))

    def escalate_ticket(
        self,
        ticket_id: UUID,
        severity: str | None,
        reason: str,
        policy: SlaPolicy,
        expected_version: int | None = None,
    ) -> Ticket:
        return self._change_ticket(
            ticket_id,
            expected_version,
            lambda t: t.escalate(severity, reason, policy.targets()),
        )

    def respond_to_ticket(
        self,
        ticket_id: UUID,
        responded_at: datetime,
        responder: str,
        message: str,
        expected_version: int | None = None,
    ) -> Ticket:
        return self._change_ticket(
            ticket_id,
            expected_version,
            lambda t: t.respond(responded_at, responder, message),
        )

    def resolve_ticket(
        self,
        ticket_id: UUID,
        resolved_at: datetime,
        resolution: str,
        expected_version: int | None = None,
    ) -> Ticket:
        return self._change_ticket(
            ticket_id, expected_version, lambda t: t.resolve(resolved_at, resolution)
        )

    def reopen_ticket(
        self,
        ticket_id: UUID,
        reopened_at: datetime,
        reason: str,
        policy: SlaPolicy,
        expected_version: int | None = None,
    ) -> Ticket:
        def reopen(ticket: Ticket) -> None:
            ticket.reopen(reopened_at, reason, policy.resolution_minutes_for(ticket.severity))

        return self._change_ticket(ticket_id, expected_version, reopen)

    def close_ticket(
        self, ticket_id: UUID, closed_at: datetime, expected_version: int | None = None
    ) -> Ticket:
        return self._change_ticket(ticket_id, expected_version, lambda t: t.close(closed_at))

    def ticket_events_until(self, ticket_id: UUID, moment: datetime) -> list[EventEnvelope[Any]]:
        """The ticket's events recorded up to `moment`, as their contracts tell them."""
        return [
            envelope
            for domain_event in self.events_until(ticket_id, moment, "ticket", "opened")
            if (envelope := to_contract(domain_event)) is not None
        ]

    def _change_ticket(
        self, ticket_id: UUID, expected_version: int | None, command: Callable[[Ticket], object]
    ) -> Ticket:
        return self.change(ticket_id, expected_version, command, kind=Ticket, what="ticket")

    # Satisfaction --------------------------------------------------------------------

    def answer_survey(
        self, *, customer_id: UUID, requested_id: UUID | None = None, **fields: Any
    ) -> SurveyResponse:
        """Record an answer; with `requested_id` a repeated request records nothing new."""
        if requested_id is not None and (found := self._existing(SurveyResponse, requested_id)):
            return found
        response = SurveyResponse(
            customer_id=customer_id,
            survey=fields["survey"],
            csat=fields.get("csat"),
            nps=fields.get("nps"),
            comment=fields.get("comment") or "",
            channel=fields.get("channel"),
            interaction_id=fields.get("interaction_id"),
            ticket_id=fields.get("ticket_id"),
            answered_at=fields["answered_at"],
            source=None,
            source_id=None,
            customer_reference=None,
            customer_hint=None,
            requested_id=requested_id,
        )
        return self._save_new(response)

    def give_feedback(self, *, customer_id: UUID, **fields: Any) -> Feedback:
        feedback = Feedback(
            customer_id=customer_id,
            kind=fields["kind"],
            text=fields["text"],
            channel=fields.get("channel"),
            interaction_id=fields.get("interaction_id"),
            given_at=fields["given_at"],
        )
        self.save(feedback)
        return feedback

    # Contact plans -------------------------------------------------------------------

    def set_contact_plan(self, customer_id: UUID, plan: dict[str, Any]) -> ContactPlan:
        try:
            contact_plan: ContactPlan = self.repository.get(contact_plan_id(customer_id))
        except AggregateNotFoundError:
            contact_plan = ContactPlan(customer_id=customer_id)
        contact_plan.set(plan)
        self.save_change(contact_plan, "contact plan")
        return contact_plan

    def end_contact_plan(self, customer_id: UUID, reason: str) -> ContactPlan:
        contact_plan = self.load(contact_plan_id(customer_id), ContactPlan, "contact plan")
        contact_plan.end(reason)
        self.save_change(contact_plan, "contact plan")
        return contact_plan

    # ---------------------------------------------------------------------------------

    def _existing(self, kind: type[A], aggregate_id: UUID) -> A | None:
        try:
            aggregate: Aggregate = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, kind):
            raise Conflict(f"the idempotency key was used for something else ({aggregate_id})")
        return aggregate

    def _save_new(self, aggregate: A) -> A:
        """Save a new aggregate; if a concurrent repeat of the request saved it first,
        return that one."""
        try:
            self.save(aggregate)
        except RecordConflictError:
            found = self._existing(type(aggregate), aggregate.id)
            if found is None:
                raise
            return found
        return aggregate
