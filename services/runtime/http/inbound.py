"""Other systems' facts over HTTP, for a system that cannot publish to Kafka.

Each inbound topic a service consumes has a route taking the same messages:
`POST /inbound/purchases` for `crm.inbound.purchases.v1`, and so on. The body is a JSON
array of up to `MAX_MESSAGES` messages, each in the topic's contract. Each is parsed as
the topic's consumer parses a message: a batch holding any that does not fit is refused
whole (422, each such message named with the reason a dead letter would carry), so that
nothing of it is half-recorded. The others are recorded by the same handler in one batch;
the answer comes once the database has committed them, so a 200 means they are kept. It
says for each message whether it was `recorded` now, a `duplicate` of one recorded
before (the sender's own ids are the idempotency keys: sending a batch again after a
timeout records nothing twice), or `rejected` by the service for a reason of its own
(with the reason). Nothing sent over HTTP is dead-lettered: the caller has the answer.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import orjson
from aiokafka.structs import ConsumerRecord
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from contracts.registry import ContractViolation
from services.runtime.errors import BadRequest
from services.runtime.http.authorization import requires
from services.runtime.messaging.consumer import Parsed
from services.runtime.messaging.reported_facts import ReportedFacts

MAX_MESSAGES = 1000
"""Messages per request (the body limit, `CRM_MAX_BODY_BYTES`, applies too)."""

PERMISSION = "inbound:write"


class MessageOutcome(BaseModel):
    index: int = Field(description="The message's position in the array, from 0.")
    outcome: Literal["recorded", "duplicate", "rejected"]
    reason: str | None = Field(
        default=None, description="Why it was rejected, as `dlq.reason` would say."
    )
    detail: str | None = Field(default=None, description="The field and the problem.")


class InboundAnswer(BaseModel):
    recorded: int = Field(description="Messages whose facts were recorded now.")
    duplicates: int = Field(description="Messages whose facts were recorded before.")
    rejected: int = Field(description="Messages that do not fit the contract.")
    outcomes: list[MessageOutcome] = Field(description="One per message, in order.")


def feed_name(topic: str) -> str:
    """`crm.inbound.purchases.v1` → `purchases`."""
    return topic.removeprefix("crm.inbound.").rsplit(".v", 1)[0]


def inbound_router(contracts: Mapping[str, type[BaseModel]]) -> APIRouter:
    """A route per inbound topic in `contracts` (topic → its message model)."""
    router = APIRouter(tags=["inbound"])
    for topic, model in contracts.items():
        router.add_api_route(
            f"/inbound/{feed_name(topic)}",
            _endpoint(topic),
            methods=["POST"],
            response_model=InboundAnswer,
            dependencies=[requires(PERMISSION)],
            summary=f"Record {feed_name(topic).replace('-', ' ')} as if published on {topic}",
            description=f"The messages of `{topic}` ({model.__name__}), as a JSON array of "
            f"at most {MAX_MESSAGES}; answered once they are stored, with an outcome per "
            "message. Sending them again records nothing twice. A batch holding a message "
            "that does not fit the contract is refused whole (422, naming each).",
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "array",
                                "maxItems": MAX_MESSAGES,
                                "items": {"$ref": f"#/components/schemas/{model.__name__}"},
                            }
                        }
                    },
                }
            },
        )
    return router


def document_inbound(app: FastAPI, contracts: Mapping[str, type[BaseModel]]) -> None:
    """Put the inbound message models among the OpenAPI document's schemas, where the
    routes' request bodies refer to them."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in contracts.values():
            if model.__name__ not in schemas:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                for name, nested in definition.pop("$defs", {}).items():
                    schemas.setdefault(name, nested)
                schemas[model.__name__] = definition
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _endpoint(topic: str) -> Any:
    async def record(request: Request) -> InboundAnswer | JSONResponse:
        messages = _messages(await request.body())
        handler = _handler(request, topic)
        now = int(time.time() * 1000)
        records = [_record(topic, index, orjson.dumps(m), now) for index, m in enumerate(messages)]
        outcomes: dict[int, MessageOutcome] = {}
        parsed: list[Parsed[Any]] = []
        for record in records:
            try:
                parsed.append(Parsed(record, handler.parse(record)))
            except ContractViolation as exc:
                outcomes[record.offset] = _rejected(record.offset, exc.reason, exc.detail)
        if outcomes:
            return _refused(topic, len(records), outcomes.values())
        recorded, rejections = await handler.ingest(parsed)
        for rejection in rejections:
            offset = rejection.record.offset
            outcomes[offset] = _rejected(offset, rejection.reason, rejection.detail)
        for item in recorded:
            outcomes[item.record.offset] = MessageOutcome(
                index=item.record.offset, outcome="recorded"
            )
        ordered = [
            outcomes.get(i) or MessageOutcome(index=i, outcome="duplicate")
            for i in range(len(records))
        ]
        return InboundAnswer(
            recorded=sum(o.outcome == "recorded" for o in ordered),
            duplicates=sum(o.outcome == "duplicate" for o in ordered),
            rejected=sum(o.outcome == "rejected" for o in ordered),
            outcomes=ordered,
        )

    record.__name__ = f"record_{feed_name(topic).replace('-', '_')}"
    return record


def _refused(topic: str, sent: int, rejected: Iterable[MessageOutcome]) -> JSONResponse:
    """422 for a batch holding messages that do not fit the contract: nothing of it is
    recorded, and each such message is named with the reason a dead letter would give."""
    details = [
        {"location": ["body", str(o.index)], "message": f"{o.reason}: {o.detail or o.reason}"}
        for o in rejected
    ]
    return JSONResponse(
        {
            "error": f"{len(details)} of {sent} messages do not fit the contract of {topic}; "
            "nothing was recorded: correct or leave them out and send the batch again",
            "details": details,
        },
        status_code=422,
    )


def _messages(body: bytes) -> list[Any]:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(document, list):
        raise BadRequest("the body must be a JSON array of messages")
    if not document:
        raise BadRequest("the array holds no message")
    if len(document) > MAX_MESSAGES:
        raise BadRequest(f"{len(document)} messages; at most {MAX_MESSAGES} per request")
    return document


def _handler(request: Request, topic: str) -> ReportedFacts[Any]:
    consumers: Sequence[Any] = request.app.state.runtime.consumers
    for consumer in consumers:
        handler = consumer.handler
        if isinstance(handler, ReportedFacts) and tuple(handler.topics) == (topic,):
            return handler
    raise LookupError(f"no handler of {topic} in this service")  # a route built wrongly


def _record(topic: str, index: int, value: bytes, now: int) -> ConsumerRecord[Any, Any]:
    """The message as its topic's consumer would have read it; the offset is its index."""
    return ConsumerRecord(
        topic=topic,
        partition=-1,
        offset=index,
        timestamp=now,
        timestamp_type=0,
        key=None,
        value=value,
        checksum=None,
        serialized_key_size=-1,
        serialized_value_size=len(value),
        headers=[],
    )


def _rejected(index: int, reason: str, detail: str) -> MessageOutcome:
    return MessageOutcome(index=index, outcome="rejected", reason=reason, detail=detail or None)
