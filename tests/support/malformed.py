"""Fifty-odd messages that do not fit the CRM's contracts, each with the reason a consumer
must give for it, for the dead-letter tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

from contracts import customer as customer_contract
from contracts.envelope import payload_example
from contracts.inbound.interactions import CallLog, InboundMessage, SurveyAnswer
from contracts.inbound.purchases import PurchaseCompleted
from contracts.topics import Topic
from tests.support.events import envelope

FUTURE = "2031-01-01T09:00:00+08:00"
YEAR_1 = "0001-01-01T00:00:00+08:00"
YEAR_9999 = "9999-12-31T20:00:00-08:00"


@dataclass(frozen=True)
class Bad:
    topic: str
    key: bytes
    value: bytes | None
    reason: str
    detail: str = ""
    """Text the `dlq.detail` header must contain."""


def _json(document: Any) -> bytes:
    return orjson.dumps(document)


def _without(document: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in document.items() if k != field}


def malformed_messages() -> list[Bad]:
    purchase = payload_example(PurchaseCompleted)
    call = payload_example(CallLog)
    message = payload_example(InboundMessage)
    answer = payload_example(SurveyAnswer)
    p, c, m, s = (
        Topic.PURCHASES_INBOUND,
        Topic.CALL_LOGS_INBOUND,
        Topic.MESSAGES_INBOUND,
        Topic.SURVEY_ANSWERS_INBOUND,
    )
    cases: list[tuple[str, bytes | None, str, str]] = [
        # purchases
        (p, b'{"source": "shop-cn", "order_id": ', "malformed JSON", "Invalid JSON"),
        (p, b"\x00\x01\xfe\xff binary", "malformed JSON", ""),
        (p, _json([purchase]), "not a JSON object", ""),
        (p, b"", "empty message", ""),
        (p, None, "empty message", ""),
        (p, _json(_without(purchase, "amount")), "missing field", "amount"),
        (p, _json(_without(purchase, "occurred_at")), "missing field", "occurred_at"),
        (p, _json(_without(purchase, "order_id")), "missing field", "order_id"),
        (p, _json({**purchase, "amount": "lots"}), "wrong type", "amount"),
        (p, _json({**purchase, "amount": True}), "wrong type", "amount"),
        (p, _json({**purchase, "items": {"sku": "x"}}), "wrong type", "items"),
        (p, _json({**purchase, "occurred_at": 1763890000}), "wrong type", "occurred_at"),
        (p, _json({**purchase, "customer_id": "C-1"}), "wrong type", "customer_id"),
        (
            p,
            _json(
                {
                    **purchase,
                    "customer_reference": {"source": "Shop CN!", "source_customer_id": "1"},
                }
            ),
            "bad customer reference",
            "customer_reference.source",
        ),
        (
            p,
            _json({**purchase, "customer_reference": {"source": "shop-cn"}}),
            "bad customer reference",
            "customer_reference.source_customer_id",
        ),
        (p, _json(_without(purchase, "customer_reference")), "no customer named", "customer_id"),
        (p, _json({**purchase, "amount": "-12.50"}), "negative amount", "amount"),
        (p, _json({**purchase, "currency": "RMB"}), "unknown currency", "'RMB'"),
        (p, _json({**purchase, "currency": "usd"}), "unknown currency", "'usd'"),
        (p, _json({**purchase, "occurred_at": FUTURE}), "date in the future", "occurred_at"),
        (
            p,
            _json({**purchase, "occurred_at": "2026-11-23T09:30:00"}),
            "invalid purchase",
            "timezone",
        ),
        (p, _json({**purchase, "items": [{"name": "x"}] * 1001}), "too long", "items"),
        (p, _json({**purchase, "order_id": ""}), "invalid purchase", "order_id"),
        (p, _json({**purchase, "occurred_at": YEAR_1}), "date out of range", "occurred_at"),
        (p, _json({**purchase, "order_id": "SO-\x00-1"}), "control character", "order_id"),
        (
            p,
            _json({**purchase, "items": [{"name": "许\u0085可"}]}),
            "control character",
            "items.0.name",
        ),
        # call logs
        (c, b'{"source": "callcentre", "call_id"', "malformed JSON", ""),
        (c, _json(_without(call, "call_id")), "missing field", "call_id"),
        (c, _json({**call, "duration_seconds": "long"}), "wrong type", "duration_seconds"),
        (c, _json({**call, "duration_seconds": -5}), "invalid call log", "duration_seconds"),
        (c, _json({**call, "direction": "sideways"}), "unknown direction", "direction"),
        (c, _json({**call, "started_at": FUTURE}), "date in the future", "started_at"),
        (c, _json({**call, "notes": "很长" * 10_001}), "too long", "notes"),
        (c, _json({**call, "started_at": YEAR_9999}), "date out of range", "started_at"),
        (c, _json({**call, "subject": "咨询\x00发票"}), "control character", "subject"),
        (c, _json({**call, "notes": "第一行\n\x1b[2J"}), "control character", "notes"),
        (
            c,
            _json({**call, "customer_reference": {"source": "", "source_customer_id": "x"}}),
            "bad customer reference",
            "customer_reference.source",
        ),
        (c, _json(_without(call, "customer_reference")), "no customer named", ""),
        (c, b"", "empty message", ""),
        # messages
        (m, _json({**message, "channel": "fax"}), "unknown channel", "channel"),
        (m, _json({**message, "sent_at": FUTURE}), "date in the future", "sent_at"),
        (m, _json({**message, "sent_at": YEAR_1}), "date out of range", "sent_at"),
        (m, _json({**message, "text": "你好\x00"}), "control character", "text"),
        (m, _json(_without(message, "text")), "missing field", "text"),
        (m, _json({**message, "text": "x" * 25_000}), "too long", "text"),
        (m, _json({**message, "customer_id": 123}), "wrong type", "customer_id"),
        (m, _json("hello"), "not a JSON object", ""),
        # survey answers
        (s, _json({**answer, "csat": 7}), "csat out of range", "csat"),
        (s, _json({**answer, "nps": -1}), "nps out of range", "nps"),
        (s, _json(_without(_without(answer, "csat"), "nps")), "no score", ""),
        (s, _json({**answer, "answered_at": "yesterday"}), "wrong type", "answered_at"),
        (s, _json(_without(answer, "survey")), "missing field", "survey"),
        (s, _json({**answer, "answered_at": FUTURE}), "date in the future", "answered_at"),
        (s, _json({**answer, "answered_at": YEAR_1}), "date out of range", "answered_at"),
        (s, _json({**answer, "comment": "好\x7f"}), "control character", "comment"),
    ]
    # The CRM's own topics carry envelopes: another service's consumers reject these.
    stranger = uuid.uuid4()
    registered = envelope(
        stranger, 1, customer_contract.CustomerRegistered(name="x", kind="consumer")
    ).model_dump_json()
    tagged_v1 = envelope(stranger, 2, customer_contract.CustomerTaggedV1(tag="x"))
    cases += [
        (
            Topic.CUSTOMER,
            registered.replace("customer.registered", "customer.teleported").encode(),
            "unknown event type",
            "customer.teleported",
        ),
        (
            Topic.CUSTOMER,
            registered.replace('"schema_version":1', '"schema_version":9').encode(),
            "unsupported schema version",
            "version 9",
        ),
        (
            Topic.CUSTOMER,
            registered.replace('"consumer"', '"martian"').encode(),
            "invalid event",
            "payload.kind",
        ),
        (
            Topic.CUSTOMER,
            tagged_v1.model_dump_json().replace('"tag":"x"', '"tag":""').encode(),
            "invalid event",
            "version 1",
        ),
        (Topic.CUSTOMER, _json({"hello": "world"}), "not an event envelope", "event_type"),
        (Topic.CUSTOMER, b"{not json", "malformed JSON", ""),
    ]
    return [
        Bad(topic, f"bad-{n:02d}".encode(), value, reason, detail)
        for n, (topic, value, reason, detail) in enumerate(cases)
    ]
