"""Generates the committed AsyncAPI document of every topic: `python -m contracts.asyncapi`.

The document (`contracts/asyncapi.json`, AsyncAPI 3.0) is built by FastStream from the
contract models found through `contracts.registry`, so a new event module (one with
`EVENTS`, and `INBOUND` for messages other systems publish) appears in it without
touching this file:
- every event type and version the CRM publishes is a channel on its service's topic
  (`send` operations), its payload the whole envelope;
- every inbound topic is a channel whose message is the plain document other systems
  publish (`receive` operations);
- the dead-letter topic is a channel too, with its `dlq.*` headers.
FastStream cannot attach message examples, Kafka keys or headers, so those are added to
its output here, from the same models. Every message has an example.

Generating needs FastStream (`pip install 'crm-contracts[asyncapi]'`); reading the
committed document (`load_document()`) needs nothing. A test fails when it is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from contracts.envelope import EventEnvelope, EventPayload, example_envelope, payload_example
from contracts.registry import events_by_topic, inbound_models
from contracts.topics import Topic

ASYNCAPI_FILE = Path(__file__).parent / "asyncapi.json"
ASYNCAPI_VERSION = "3.0.0"

DESCRIPTION = """\
Every topic of the CRM, inbound and outbound.

**Events the CRM publishes** (`send` operations) travel in one envelope: `event_id`
(stable, de-duplicate on it), `event_type`, `schema_version`, `customer_id` (also the
message key, so one customer's events are in order on one partition), `aggregate_id`,
`aggregate_version`, `occurred_at`, `recorded_at`, `producer`, `actor`,
`correlation_id`, `causation_id` and the typed `payload`. One channel per event type and
version; several share a topic. Delivery is at least once. Ignore fields and event types
you do not know.

**Messages other systems publish** (`receive` operations) are plain JSON documents, not
envelopes. What does not fit goes to the dead-letter topic with the original bytes and
the reason in `dlq.*` headers.
"""

DEAD_LETTER_HEADERS: dict[str, str] = {
    "dlq.reason": "Why the message was rejected, e.g. `malformed JSON`, `missing field`, "
    "`unknown currency`, `unknown event type`, `could not apply`.",
    "dlq.detail": "Which field and what is wrong with it.",
    "dlq.source_topic": "The topic the message was read from (and is replayed to).",
    "dlq.source_partition": "Its partition there.",
    "dlq.source_offset": "Its offset there.",
    "dlq.consumer": "The service that rejected it.",
    "dlq.failed_at": "When it was rejected (ISO 8601).",
}


def channel_id(model: type[EventPayload]) -> str:
    return f"{model.event_type}.v{model.schema_version}"


def envelope_model(model: type[EventPayload]) -> type[BaseModel]:
    """`EventEnvelope[model]` under a readable name (`CustomerRegisteredEnvelope`)."""
    base: Any = EventEnvelope[model]  # type: ignore[valid-type]

    def pin_type_and_version(schema: dict[str, Any]) -> None:
        schema["properties"]["event_type"]["const"] = model.event_type
        schema["properties"]["schema_version"]["const"] = model.schema_version

    envelope: type[BaseModel] = type(
        f"{model.__name__}Envelope",
        (base,),
        {
            "__module__": __name__,
            "__doc__": f"{model.event_type} version {model.schema_version} in its envelope.",
            "model_config": ConfigDict(
                title=f"{model.__name__}Envelope", json_schema_extra=pin_type_and_version
            ),
        },
    )
    return envelope


def _summary(model: type[BaseModel]) -> str:
    return (model.__doc__ or model.__name__).strip().split("\n\n")[0].replace("\n", " ")


def _inbound_handler(model: type[BaseModel]) -> Any:
    async def handle(message: Any) -> None:
        """Documents the inbound message; never runs."""

    handle.__annotations__ = {"message": model, "return": None}
    return handle


def _faststream_document() -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """FastStream's document, and what to add to each of its channels' messages."""
    from faststream.kafka import KafkaBroker
    from faststream.specification import AsyncAPI

    broker = KafkaBroker(
        "127.0.0.1:9092",
        description="The embedded broker of `crm up`; in production, your Kafka cluster "
        "(CRM_KAFKA_BOOTSTRAP_SERVERS).",
    )
    extras: dict[str, dict[str, Any]] = {}
    for topic, models in events_by_topic().items():
        for model in models:
            name = channel_id(model)
            broker.publisher(
                topic,
                title=name,
                description=f"`{model.event_type}` version {model.schema_version} on "
                f"`{topic}`. {topic.description}",
                schema=envelope_model(model),
            )
            extras[name] = {
                "name": name,
                "summary": _summary(model),
                "key": "The customer id (UUID as text), the envelope's `customer_id`.",
                "correlation": "$message.payload#/correlation_id",
                "examples": [{"name": name, "payload": example_envelope(model)}],
            }
    for inbound_topic, inbound_model in inbound_models().items():
        name = str(inbound_topic)
        subscriber = broker.subscriber(name, title=name, description=Topic(name).description)
        subscriber(_inbound_handler(inbound_model))
        extras[name] = {
            "name": inbound_model.__name__,
            "summary": _summary(inbound_model),
            "key": "The CRM customer id if you know it, otherwise your own id for the "
            "customer, so that one customer's messages stay in order.",
            "examples": [
                {"name": inbound_model.__name__, "payload": payload_example(inbound_model)}
            ],
        }
    dead_letter = str(Topic.DEAD_LETTER)
    broker.publisher(dead_letter, title=dead_letter, description=Topic.DEAD_LETTER.description)
    extras[dead_letter] = {
        "name": "DeadLetter",
        "summary": "A message a consumer could not parse or apply: its original key, value "
        "and headers, byte for byte, with `dlq.*` headers saying why and where from.",
        "key": "The original message's key.",
        "payload": {"description": "The original message value, unchanged (any bytes)."},
        "headers": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": text}
                for name, text in DEAD_LETTER_HEADERS.items()
            },
            "required": ["dlq.reason", "dlq.source_topic"],
        },
        "examples": [_dead_letter_example()],
    }
    specification = AsyncAPI(
        broker,
        title="CRM event contracts",
        version=_version(),
        description=DESCRIPTION,
        schema_version=ASYNCAPI_VERSION,
    ).to_specification()
    document: dict[str, Any] = specification.to_jsonable()
    return document, extras


def _dead_letter_example() -> dict[str, Any]:
    (topic, model), *_ = inbound_models().items()
    bad = {**payload_example(model), "currency": "RMB"}
    return {
        "name": "unknown-currency",
        "summary": "A purchase in a currency the CRM does not accept.",
        "headers": {
            "dlq.reason": "unknown currency",
            "dlq.detail": "currency: 'RMB' is not a supported ISO 4217 code (supported: CNY, …)",
            "dlq.source_topic": str(topic),
            "dlq.source_partition": "1",
            "dlq.source_offset": "42",
            "dlq.consumer": "sales",
            "dlq.failed_at": "2026-11-23T01:30:05+00:00",
        },
        "payload": bad,
    }


def _version() -> str:
    from contracts import __version__

    return __version__


def build_document() -> dict[str, Any]:
    document, extras = _faststream_document()
    messages = document["components"]["messages"]
    for channel_name, channel in document["channels"].items():
        extra = extras[channel_name]
        for reference in channel["messages"].values():
            message = messages[reference["$ref"].rsplit("/", 1)[-1]]
            message["name"] = extra["name"]
            message["summary"] = extra["summary"]
            message["contentType"] = "application/json"
            message["bindings"] = {
                "kafka": {
                    "key": {"type": "string", "description": extra["key"]},
                    "bindingVersion": "0.5.0",
                }
            }
            message.pop("correlationId", None)
            if "correlation" in extra:
                message["correlationId"] = {"location": extra["correlation"]}
            if "payload" in extra:
                message["payload"] = extra["payload"]
            if "headers" in extra:
                message["headers"] = extra["headers"]
            message["examples"] = extra["examples"]
    document["components"]["schemas"].pop("EmptyPayload", None)
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def load_document() -> dict[str, Any]:
    """The committed document, as other systems and the services' `/asyncapi.json` see it."""
    loaded: dict[str, Any] = json.loads(ASYNCAPI_FILE.read_text(encoding="utf-8"))
    return loaded


def main() -> int:
    ASYNCAPI_FILE.write_text(render(build_document()), encoding="utf-8")
    print(f"wrote {ASYNCAPI_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
