"""Ingestion of what the call centre, the messaging gateway and the survey tool report.

Per batch of inbound messages, not per message:
1. each message is parsed; what does not fit its contract is dead-lettered with a reason;
2. the customers named by reference are resolved in one query against the reference
   mapping folded from the customer topic; a reference the CRM has never seen gets the
   customer id derived from it (the customer service then registers that customer);
3. each fact's aggregate id is derived from (source, source id); those already in the
   event store are found in one query, and repeats within the batch are dropped;
4. the new facts are saved in one `save()`, one transaction.
A re-delivered or re-sent message finds its fact recorded and records nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import asyncpg
from aiokafka.structs import ConsumerRecord
from eventsourcing.domain import Aggregate

from contracts.interaction import CallLog, InboundCustomer, InboundMessage, SurveyAnswer
from contracts.references import customer_id_for_reference
from contracts.topics import Topic
from services.interaction.application import InteractionApplication
from services.interaction.domain import Interaction, SurveyResponse, inbound_id
from services.interaction.inbound import parse_call_log, parse_message, parse_survey_answer
from services.runtime.customer_replica import resolve_references
from services.runtime.messaging.consumer import TRANSIENT_ERRORS, Parsed
from services.runtime.messaging.deadletter import Rejection
from services.runtime.messaging.inbound import RecordedAggregates
from services.runtime.metrics import EVENTS_CONSUMED
from services.runtime.storage.eventstore import CommandContext, stamp

M = TypeVar("M", bound=InboundCustomer)
log = logging.getLogger(__name__)


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
    build: Callable[[M, UUID, UUID], Aggregate]
    """The aggregate recording the message, given its id and the resolved customer id."""


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


def call_interaction(message: CallLog, aggregate_id: UUID, customer_id: UUID) -> Interaction:
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
    )


def message_interaction(
    message: InboundMessage, aggregate_id: UUID, customer_id: UUID
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
    )


def survey_response(message: SurveyAnswer, aggregate_id: UUID, customer_id: UUID) -> SurveyResponse:
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


class InboundIngestion(Generic[M]):
    """A `BatchHandler` recording one inbound topic's messages, each exactly once."""

    def __init__(self, feed: Feed[M], application: InteractionApplication, pool: asyncpg.Pool):
        self._feed = feed
        self._application = application
        self._pool = pool
        self._recorded = RecordedAggregates(application, pool)
        self.name = feed.name
        self.group_id = feed.group_id
        self.topics: Sequence[str] = (feed.topic,)

    def parse(self, record: ConsumerRecord[Any, Any]) -> M:
        return self._feed.parse(record.value)

    def describe(self, value: M) -> str:
        return self._feed.label

    async def prepare(self) -> None:
        return None

    def on_caught_up(self) -> None:
        return None

    async def handle(self, batch: Sequence[Parsed[M]]) -> list[Rejection]:
        feed = self._feed
        known = await resolve_references(
            self._pool,
            list(
                {
                    (r.source, r.source_customer_id)
                    for item in batch
                    if item.value.customer_id is None and (r := item.value.customer_reference)
                }
            ),
        )
        candidates: dict[UUID, Parsed[M]] = {}
        for item in batch:
            candidates.setdefault(inbound_id(feed.label, *feed.key(item.value)), item)
        existing = await self._recorded.among(list(candidates))
        fresh = [
            (aggregate_id, item, customer_for(item.value, known))
            for aggregate_id, item in candidates.items()
            if aggregate_id not in existing
        ]
        recorded, rejections = await self._record(fresh)
        for outcome, number in (
            ("applied", len(recorded)),
            ("duplicate", len(batch) - len(recorded) - len(rejections)),
        ):
            if number:
                EVENTS_CONSUMED.labels(
                    consumer=self.name, topic=feed.topic, event_type=feed.label, outcome=outcome
                ).inc(number)
        return rejections

    def _aggregate(self, aggregate_id: UUID, item: Parsed[M], customer_id: UUID) -> Aggregate:
        """The new aggregate recording the message, stamped with the message as its cause."""
        aggregate = self._feed.build(item.value, aggregate_id, customer_id)
        source, source_id = self._feed.key(item.value)
        record = item.record
        stamp(
            aggregate,
            CommandContext(
                actor=source,
                correlation_id=f"{source}:{source_id}",
                causation_id=f"{record.topic}:{record.partition}:{record.offset}",
            ),
        )
        return aggregate

    async def _record(
        self, fresh: list[tuple[UUID, Parsed[M], UUID]]
    ) -> tuple[list[UUID], list[Rejection]]:
        """Save the batch's new facts in one `save()`. Should that fail for a reason other
        than an outage, save them one by one and reject only those that cannot be saved."""
        save = self._application.record_reported
        try:
            return await asyncio.to_thread(save, [self._aggregate(*f) for f in fresh]), []
        except TRANSIENT_ERRORS:
            raise
        except Exception:
            log.warning("%s: saving a batch failed; saving one by one", self.name, exc_info=True)
        recorded: list[UUID] = []
        rejections: list[Rejection] = []
        for aggregate_id, item, customer_id in fresh:
            try:
                recorded += await asyncio.to_thread(
                    save, [self._aggregate(aggregate_id, item, customer_id)]
                )
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                rejections.append(
                    Rejection(item.record, "could not record", f"{type(exc).__name__}: {exc}")
                )
        return recorded, rejections


def customer_for(message: InboundCustomer, known: dict[tuple[str, str], UUID]) -> UUID:
    """The CRM id of the customer the message names: given, known by reference, or derived
    from the reference."""
    if message.customer_id is not None:
        return message.customer_id
    reference = message.customer_reference
    assert reference is not None  # the contract requires one of the two
    found = known.get((reference.source, reference.source_customer_id))
    return found if found is not None else customer_id_for_reference(reference)
