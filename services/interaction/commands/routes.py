"""The routes of the interaction commands; their request bodies are in `bodies.py`."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from eventsourcing.domain import Aggregate
from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from services.interaction import queries
from services.interaction.commands.bodies import (
    AnswerSurvey,
    AssignTicket,
    CorrectInteraction,
    EndContactPlan,
    EscalateTicket,
    GiveFeedback,
    LogInteraction,
    OpenTicket,
    ReopenTicket,
    ResolveTicket,
    RespondToTicket,
    SetContactPlan,
)
from services.interaction.dependencies import App, IdempotencyKey, Policy, Pool, Version, now
from services.interaction.domain import inbound_id
from services.interaction.projections import CUSTOMERS
from services.runtime.customer_aliases import current_customer
from services.runtime.errors import RuleViolation
from services.runtime.http import answers
from services.runtime.http.answers import etag
from services.runtime.http.authorization import requires
from services.runtime.storage.eventstore import current_context

router = APIRouter()


class Accepted(answers.Accepted):
    id: UUID = Field(description="The interaction, ticket, answer, feedback or plan.")
    version: int = Field(description="Its version after the command.")


def accepted(response: Response, aggregate: Aggregate) -> Accepted:
    """The answer naming the changed aggregate and its new version (also the `ETag`)."""
    etag(response, aggregate.version)
    return Accepted(id=aggregate.id, version=aggregate.version)


def or_now(moment: datetime | None) -> datetime:
    """`moment`, or now when absent. The body's type (`contracts.timestamps.PastDatetime`)
    has refused a moment in the future already, naming the field."""
    return now() if moment is None else moment


CUSTOMER_GRACE_SECONDS = 3.0
"""How long a command waits for a customer registered moments ago to reach this service."""


async def require_customer(pool: asyncpg.Pool, customer_id: UUID) -> UUID:
    """Refuse a command about a customer the CRM does not know, after a short grace for a
    customer registered a moment ago (the customer topic reaches this service in
    milliseconds); the customer the command is recorded on: the survivor of a customer
    merged into another (`services.runtime.customer_aliases`), the customer otherwise."""
    deadline = time.monotonic() + CUSTOMER_GRACE_SECONDS
    while not await CUSTOMERS.known(pool, customer_id):
        if time.monotonic() > deadline:
            raise RuleViolation(
                f"no customer with id {customer_id} is known to the CRM; register the "
                "customer first (POST /customers on the customer service)"
            )
        await asyncio.sleep(0.1)
    return await current_customer(pool, customer_id)


def actor() -> str:
    """Who is asking: idempotency keys are scoped by caller, so two callers never collide."""
    return current_context().actor


def _changes(body: BaseModel, exclude: set[str]) -> dict[str, Any]:
    fields = body.model_fields_set - exclude
    changes = {name: getattr(body, name) for name in fields}
    if "participants" in changes and changes["participants"] is not None:
        changes["participants"] = [p.model_dump(mode="json") for p in changes["participants"]]
    if changes.get("consent_override") is not None:
        changes["consent_override"] = changes["consent_override"].model_dump(mode="json")
    for name in ("channel", "direction"):
        if changes.get(name) is not None:
            changes[name] = changes[name].value
    return changes


# Interactions ------------------------------------------------------------------------


@router.post(
    "/interactions",
    dependencies=[requires("interactions:write")],
    status_code=201,
    summary="Log a contact with a customer",
    description="An outbound contact on a channel the customer opted out of (phone, sms, "
    "email, wechat) is refused (422) unless `consent_override` states why.",
    tags=["interactions"],
)
async def log_interaction(
    body: LogInteraction, app: App, pool: Pool, key: IdempotencyKey, response: Response
) -> Accepted:
    body = body.model_copy(update={"customer_id": await require_customer(pool, body.customer_id)})
    interaction = await asyncio.to_thread(
        app.log_interaction,
        customer_id=body.customer_id,
        requested_id=inbound_id("http-interaction", actor(), key) if key else None,
        opted_out=await queries.opted_out_channels(pool, body.customer_id),
        channel=body.channel.value,
        direction=body.direction.value,
        started_at=or_now(body.started_at),
        duration_seconds=body.duration_seconds,
        participants=[p.model_dump(mode="json") for p in body.participants],
        subject=body.subject,
        notes=body.notes,
        opportunity_id=body.opportunity_id,
        ticket_id=body.ticket_id,
        consent_override=(
            body.consent_override.model_dump(mode="json") if body.consent_override else None
        ),
    )
    response.headers["Location"] = f"/interactions/{interaction.id}"
    return accepted(response, interaction)


@router.post(
    "/interactions/{interaction_id}/corrections",
    dependencies=[requires("interactions:write")],
    summary="Correct a logged interaction (recorded as a correction, nothing overwritten)",
    tags=["interactions"],
)
async def correct_interaction(
    interaction_id: UUID,
    body: CorrectInteraction,
    app: App,
    pool: Pool,
    version: Version,
    response: Response,
) -> Accepted:
    changes = _changes(body, {"reason"})
    if not changes:
        raise RuleViolation("name at least one field to correct")
    if "started_at" in changes:
        changes["started_at"] = or_now(changes["started_at"])
    logged = await asyncio.to_thread(app.interaction, interaction_id)
    opted_out = await queries.opted_out_channels(pool, logged.customer_id)
    interaction = await asyncio.to_thread(
        app.correct_interaction, interaction_id, changes, body.reason, version, opted_out
    )
    return accepted(response, interaction)


# Tickets -----------------------------------------------------------------------------


@router.post(
    "/tickets",
    dependencies=[requires("tickets:write")],
    status_code=201,
    summary="Open a service request or complaint",
    tags=["tickets"],
)
async def open_ticket(
    body: OpenTicket, app: App, pool: Pool, policy: Policy, response: Response
) -> Accepted:
    body = body.model_copy(update={"customer_id": await require_customer(pool, body.customer_id)})
    ticket = await asyncio.to_thread(
        app.open_ticket,
        customer_id=body.customer_id,
        opened_at=or_now(body.opened_at),
        policy=policy,
        kind=body.kind.value,
        channel=body.channel.value,
        category=body.category,
        severity=body.severity.value,
        subject=body.subject,
        description=body.description,
    )
    response.headers["Location"] = f"/tickets/{ticket.id}"
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/assignment",
    dependencies=[requires("tickets:write")],
    summary="Assign a ticket",
    tags=["tickets"],
)
def assign_ticket(
    ticket_id: UUID, body: AssignTicket, app: App, version: Version, response: Response
) -> Accepted:
    ticket = app.assign_ticket(ticket_id, body.assignee, version)
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/escalations",
    dependencies=[requires("tickets:write")],
    summary="Escalate a ticket: raise its level, and its severity if given",
    description="Due times follow the new severity's targets, counted from the opening, "
    "and never move later.",
    tags=["tickets"],
)
def escalate_ticket(
    ticket_id: UUID,
    body: EscalateTicket,
    app: App,
    policy: Policy,
    version: Version,
    response: Response,
) -> Accepted:
    severity = body.severity.value if body.severity else None
    ticket = app.escalate_ticket(ticket_id, severity, body.reason, policy, version)
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/responses",
    dependencies=[requires("tickets:write")],
    summary="Record an answer to the customer (the first stops the response clock)",
    tags=["tickets"],
)
def respond_to_ticket(
    ticket_id: UUID, body: RespondToTicket, app: App, version: Version, response: Response
) -> Accepted:
    ticket = app.respond_to_ticket(
        ticket_id,
        or_now(body.responded_at),
        body.responder,
        body.message,
        version,
    )
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/resolution",
    dependencies=[requires("tickets:write")],
    summary="Resolve a ticket",
    tags=["tickets"],
)
def resolve_ticket(
    ticket_id: UUID, body: ResolveTicket, app: App, version: Version, response: Response
) -> Accepted:
    ticket = app.resolve_ticket(ticket_id, or_now(body.resolved_at), body.resolution, version)
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/reopening",
    dependencies=[requires("tickets:write")],
    summary="Reopen a resolved or closed ticket (the resolution clock restarts)",
    tags=["tickets"],
)
def reopen_ticket(
    ticket_id: UUID,
    body: ReopenTicket,
    app: App,
    policy: Policy,
    version: Version,
    response: Response,
) -> Accepted:
    ticket = app.reopen_ticket(ticket_id, now(), body.reason, policy, version)
    return accepted(response, ticket)


@router.post(
    "/tickets/{ticket_id}/closure",
    dependencies=[requires("tickets:write")],
    summary="Close a resolved ticket",
    tags=["tickets"],
)
def close_ticket(ticket_id: UUID, app: App, version: Version, response: Response) -> Accepted:
    ticket = app.close_ticket(ticket_id, now(), version)
    return accepted(response, ticket)


# Satisfaction ------------------------------------------------------------------------


@router.post(
    "/survey-answers",
    dependencies=[requires("interactions:write")],
    status_code=201,
    summary="Record a survey answer",
    tags=["satisfaction"],
)
async def answer_survey(
    body: AnswerSurvey, app: App, pool: Pool, key: IdempotencyKey, response: Response
) -> Accepted:
    if body.csat is None and body.nps is None:
        raise RuleViolation("an answer carries csat (1-5), nps (0-10) or both")
    body = body.model_copy(update={"customer_id": await require_customer(pool, body.customer_id)})
    answer = await asyncio.to_thread(
        app.answer_survey,
        customer_id=body.customer_id,
        requested_id=inbound_id("http-survey-answer", actor(), key) if key else None,
        survey=body.survey,
        csat=body.csat,
        nps=body.nps,
        comment=body.comment,
        channel=body.channel.value if body.channel else None,
        interaction_id=body.interaction_id,
        ticket_id=body.ticket_id,
        answered_at=or_now(body.answered_at),
    )
    return accepted(response, answer)


@router.post(
    "/feedback",
    dependencies=[requires("interactions:write")],
    status_code=201,
    summary="Record a suggestion or praise",
    tags=["satisfaction"],
)
async def give_feedback(body: GiveFeedback, app: App, pool: Pool, response: Response) -> Accepted:
    body = body.model_copy(update={"customer_id": await require_customer(pool, body.customer_id)})
    feedback = await asyncio.to_thread(
        app.give_feedback,
        customer_id=body.customer_id,
        kind=body.kind.value,
        text=body.text,
        channel=body.channel.value if body.channel else None,
        interaction_id=body.interaction_id,
        given_at=or_now(body.given_at),
    )
    return accepted(response, feedback)


# Contact plans -----------------------------------------------------------------------


@router.put(
    "/customers/{customer_id}/contact-plan",
    dependencies=[requires("interactions:write")],
    summary="Set how often and on which channel the customer is to be contacted",
    tags=["contact plans"],
)
async def set_contact_plan(
    customer_id: UUID, body: SetContactPlan, app: App, pool: Pool, response: Response
) -> Accepted:
    customer_id = await require_customer(pool, customer_id)
    plan = await asyncio.to_thread(
        app.set_contact_plan,
        customer_id,
        {
            "channel": body.channel.value,
            "every_days": body.every_days,
            "owner": body.owner,
            "note": body.note,
            "starts_at": body.starts_at or now(),
        },
    )
    return accepted(response, plan)


@router.delete(
    "/customers/{customer_id}/contact-plan",
    dependencies=[requires("interactions:write")],
    summary="End the customer's contact plan",
    tags=["contact plans"],
)
def end_contact_plan(
    customer_id: UUID, app: App, response: Response, body: EndContactPlan | None = None
) -> Accepted:
    plan = app.end_contact_plan(customer_id, body.reason if body else "")
    return accepted(response, plan)
