"""Ingestion of what the call centre, the messaging gateway and the survey tool report.

Each inbound topic is a `Feed`; `InboundIngestion` records its facts each exactly once
(`services.runtime.messaging.reported_facts`: per batch, the customers named by reference
resolved in one query, the facts already recorded found in one query, the new ones saved
in one `save()`, one transaction); a fact's aggregate id derives from (source, source
id). A re-delivered or re-sent message finds its fact recorded and records nothing twice.

Parsing gives a reason a sender can act on. Reasons (the `dlq.reason` header of a
dead-lettered message) are a small fixed set, so that they can label metrics: `empty
message`, `malformed JSON`, `not a JSON object`, `missing field`, `wrong type`, `unknown
channel`, `unknown direction`, `csat out of range`, `nps out of range`, `no score`, `no
customer named`, `bad customer reference`, `date in the future`, `date out of range`,
`control character`, `too long`, and `invalid call log` / `invalid message` / `invalid
survey answer` for anything else. `dlq.detail` names the field and the problem.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord
from eventsourcing.domain import Aggregate
from pydantic_core import ErrorDetails

from contracts.inbound.interactions import CallLog, InboundCustomer, InboundMessage, SurveyAnswer
from contracts.topics import Topic
from services.interaction.application import InteractionApplication
from services.interaction.domain import (
    Interaction,
    SurveyResponse,
    against_opt_out,
    inbound_id,
)
from services.interaction.metrics import CONSENT_BREACHES
from services.interaction.queries import Consent, consent_of
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import parse_inbound
from services.runtime.messaging.reported_facts import NewFact, ReportedFacts
from services.runtime.storage.eventstore import CommandContext, stamp
from services.runtime.transient import TRANSIENT_ERRORS

M = TypeVar("M", bound=InboundCustomer)
log = logging.getLogger(__name__)


# Parsing -----------------------------------------------------------------------------


def parse_call_log(raw: bytes | None) -> CallLog:
    return parse_inbound(raw, CallLog, invalid="invalid call log", specific=_reason)


def parse_message(raw: bytes | None) -> InboundMessage:
    return parse_inbound(raw, InboundMessage, invalid="invalid message", specific=_reason)


def parse_survey_answer(raw: bytes | None) -> SurveyAnswer:
    return parse_inbound(raw, SurveyAnswer, invalid="invalid survey answer", specific=_reason)


def _reason(field: str, kind: str, error: ErrorDetails) -> str | None:
    if field == "channel" and kind == "enum":
        return "unknown channel"
    if field == "direction" and kind == "enum":
        return "unknown direction"
    if field in ("csat", "nps") and kind in ("greater_than_equal", "less_than_equal"):
        return f"{field} out of range"
    if kind == "value_error" and not error["loc"]:
        return "no customer named" if "customer" in error["msg"] else "no score"
    return None


# Feeds -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Feed(Generic[M]):
    """One inbound topic: how to parse its messages and what each one records."""

    name: str
    group_id: str
    topic: str
    label: str
    parse: Callable[[bytes | None], M]
    key: Callable[[M], tuple[str, str]]
    """The sender's (source, id) of the fact: its idempotency key."""
    build: Callable[[M, UUID, UUID, Collection[str]], Aggregate]
    """The aggregate recording the message, given its id, the resolved customer id and
    the channels that customer opted out of."""


def _referenced(message: InboundCustomer) -> dict[str, Any]:
    return {
        "customer_reference": (
            message.customer_reference.model_dump(mode="json")
            if message.customer_reference
            else None
        ),
        "customer_hint": (
            message.customer_hint.model_dump(mode="json") if message.customer_hint else None
        ),
    }


def _consent(
    message: CallLog | InboundMessage, channel: str, opted_out: Collection[str]
) -> dict[str, Any]:
    """A reported contact happened already: one against the customer's opt-out is recorded
    all the same, flagged a breach unless the sender stated a reason."""
    override = message.consent_override
    return {
        "consent_override": override.model_dump(mode="json") if override else None,
        "consent_breach": override is None
        and against_opt_out(channel, message.direction.value, opted_out),
    }


def call_interaction(
    message: CallLog, aggregate_id: UUID, customer_id: UUID, opted_out: Collection[str]
) -> Interaction:
    participants = [{"role": "staff", "name": message.agent, "contact_id": None}]
    hint = message.customer_hint
    if hint is not None and hint.name:
        participants.append({"role": "contact", "name": hint.name, "contact_id": None})
    return Interaction(
        requested_id=aggregate_id,
        customer_id=customer_id,
        channel="phone",
        direction=message.direction.value,
        started_at=message.started_at,
        duration_seconds=message.duration_seconds,
        participants=participants if message.agent else participants[1:],
        subject=message.subject,
        notes=message.notes,
        opportunity_id=None,
        ticket_id=message.ticket_id,
        source=message.source,
        source_id=message.call_id,
        **_referenced(message),
        **_consent(message, "phone", opted_out),
    )


def message_interaction(
    message: InboundMessage, aggregate_id: UUID, customer_id: UUID, opted_out: Collection[str]
) -> Interaction:
    role = "contact" if message.direction.value == "inbound" else "staff"
    participants = (
        [{"role": role, "name": message.sender, "contact_id": None}] if message.sender else []
    )
    return Interaction(
        requested_id=aggregate_id,
        customer_id=customer_id,
        channel=message.channel.value,
        direction=message.direction.value,
        started_at=message.sent_at,
        duration_seconds=None,
        participants=participants,
        subject=message.subject or _first_words(message.text),
        notes=message.text,
        opportunity_id=None,
        ticket_id=None,
        source=message.source,
        source_id=message.message_id,
        **_referenced(message),
        **_consent(message, message.channel.value, opted_out),
    )


def survey_response(
    message: SurveyAnswer, aggregate_id: UUID, customer_id: UUID, opted_out: Collection[str]
) -> SurveyResponse:
    return SurveyResponse(
        requested_id=aggregate_id,
        customer_id=customer_id,
        survey=message.survey,
        csat=message.csat,
        nps=message.nps,
        comment=message.comment,
        channel=message.channel.value if message.channel else None,
        interaction_id=message.interaction_id,
        ticket_id=message.ticket_id,
        answered_at=message.answered_at,
        source=message.source,
        source_id=message.answer_id,
        **_referenced(message),
    )


def _first_words(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


CALL_LOGS: Feed[CallLog] = Feed(
    name="interaction_call_logs_inbound",
    group_id="crm.interaction.call-logs-inbound",
    topic=Topic.CALL_LOGS_INBOUND,
    label="call_log",
    parse=parse_call_log,
    key=lambda m: (m.source, m.call_id),
    build=call_interaction,
)
MESSAGES: Feed[InboundMessage] = Feed(
    name="interaction_messages_inbound",
    group_id="crm.interaction.messages-inbound",
    topic=Topic.MESSAGES_INBOUND,
    label="message",
    parse=parse_message,
    key=lambda m: (m.source, m.message_id),
    build=message_interaction,
)
SURVEY_ANSWERS: Feed[SurveyAnswer] = Feed(
    name="interaction_survey_answers_inbound",
    group_id="crm.interaction.survey-answers-inbound",
    topic=Topic.SURVEY_ANSWERS_INBOUND,
    label="survey_answer",
    parse=parse_survey_answer,
    key=lambda m: (m.source, m.answer_id),
    build=survey_response,
)


# Recording ---------------------------------------------------------------------------


class InboundIngestion(ReportedFacts[M]):
    """Records one inbound topic's messages, each exactly once."""

    def __init__(self, feed: Feed[M], application: InteractionApplication, pool: asyncpg.Pool):
        super().__init__(
            name=feed.name,
            group_id=feed.group_id,
            topic=feed.topic,
            label=feed.label,
            application=application,
            pool=pool,
        )
        self._feed = feed
        self._application = application

    def parse(self, record: ConsumerRecord[Any, Any]) -> M:
        return self._feed.parse(record.value)

    def fact_id(self, message: M) -> UUID:
        return inbound_id(self._feed.label, *self._feed.key(message))

    def _aggregate(self, fact: NewFact[M], consent: dict[UUID, Consent]) -> Aggregate:
        """The new aggregate recording the message, stamped with the message as its cause."""
        known = consent.get(fact.customer_id)
        aggregate = self._feed.build(
            fact.item.value, fact.aggregate_id, fact.customer_id, known.opted_out if known else ()
        )
        source, source_id = self._feed.key(fact.item.value)
        record = fact.item.record
        stamp(
            aggregate,
            CommandContext(
                actor=source,
                correlation_id=f"{source}:{source_id}",
                causation_id=f"{record.topic}:{record.partition}:{record.offset}",
            ),
        )
        return aggregate

    async def record(self, fresh: list[NewFact[M]]) -> tuple[list[UUID], list[Rejection]]:
        """Save the batch's new facts in one `save()`. Should that fail for a reason other
        than an outage, save them one by one and reject only those that cannot be saved."""
        consent = await consent_of(self._pool, [f.customer_id for f in fresh]) if fresh else {}
        built: dict[UUID, Aggregate] = {}

        def build(fact: NewFact[M]) -> Aggregate:
            built[fact.aggregate_id] = self._aggregate(fact, consent)
            return built[fact.aggregate_id]

        recorded, rejections = await self._save(fresh, build)
        for aggregate_id in recorded:
            found = built.get(aggregate_id)
            if isinstance(found, Interaction) and found.consent_breach:
                CONSENT_BREACHES.labels(channel=found.channel, source=found.source or "").inc()
        return recorded, rejections

    async def _save(
        self, fresh: list[NewFact[M]], build: Callable[[NewFact[M]], Aggregate]
    ) -> tuple[list[UUID], list[Rejection]]:
        save = self._application.record_reported
        try:
            return await asyncio.to_thread(save, [build(f) for f in fresh]), []
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.warning("%s: saving a batch failed; saving one by one", self.name, exc_info=True)
        recorded: list[UUID] = []
        rejections: list[Rejection] = []
        for fact in fresh:
            try:
                recorded += await asyncio.to_thread(save, [build(fact)])
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                rejections.append(
                    Rejection(fact.item.record, "could not record", f"{type(exc).__name__}: {exc}")
                )
        return recorded, rejections
