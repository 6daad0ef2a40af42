"""The committed AsyncAPI document: current, complete, and every example in it valid."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from contracts import Topic, all_event_models, inbound_models, parse_event
from contracts.asyncapi import ASYNCAPI_FILE, channel_id, load_document, render
from contracts.envelope import example_envelope
from contracts.registry import events_by_topic
from crm.acls import definition_of
from crm.asyncapi import build_document
from local.up.layout import SERVICES

DOCUMENT = load_document()


def messages_of(channel: str) -> list[dict[str, Any]]:
    messages = DOCUMENT["components"]["messages"]
    references = DOCUMENT["channels"][channel]["messages"].values()
    return [messages[ref["$ref"].rsplit("/", 1)[-1]] for ref in references]


def test_the_committed_document_is_current() -> None:
    assert ASYNCAPI_FILE.read_text(encoding="utf-8") == render(build_document()), (
        "contracts/asyncapi.json is stale: run `python -m crm.asyncapi` and commit it"
    )


def test_every_topic_with_a_contract_has_its_channels() -> None:
    addresses = {channel["address"] for channel in DOCUMENT["channels"].values()}
    expected = {str(t) for t in events_by_topic()} | {str(t) for t in inbound_models()}
    assert addresses == expected | {str(Topic.DEAD_LETTER)}
    assert set(DOCUMENT["channels"]) >= {channel_id(m) for m in all_event_models()}
    actions = {
        DOCUMENT["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]: op["action"]
        for op in DOCUMENT["operations"].values()
    }
    assert all(actions[str(t)] == "receive" for t in inbound_models())
    assert all(actions[str(t)] == "send" for t in events_by_topic())


def test_every_message_has_an_example_and_a_key() -> None:
    for name, message in DOCUMENT["components"]["messages"].items():
        assert message["examples"] and all("payload" in e for e in message["examples"]), name
        assert message["bindings"]["kafka"]["key"]["description"], name


@pytest.mark.parametrize("model", all_event_models(), ids=channel_id)
def test_outbound_examples_are_valid_events(model: Any) -> None:
    (message,) = messages_of(channel_id(model))
    for example in message["examples"]:
        event = parse_event(orjson.dumps(example["payload"]))
        assert event.event_type == model.event_type
        assert example["payload"] == example_envelope(model)
    payload_schema = message["payload"]["$ref"].rsplit("/", 1)[-1]
    envelope_schema = DOCUMENT["components"]["schemas"][payload_schema]
    assert envelope_schema["properties"]["event_type"]["const"] == model.event_type
    assert envelope_schema["properties"]["schema_version"]["const"] == model.schema_version


@pytest.mark.parametrize("topic", list(inbound_models()), ids=str)
def test_inbound_examples_fit_their_topic_contract(topic: str) -> None:
    model = inbound_models()[topic]
    (message,) = messages_of(topic)
    assert message["payload"] == {"$ref": f"#/components/schemas/{model.__name__}"}
    for example in message["examples"]:
        model.model_validate_json(orjson.dumps(example["payload"]))


def test_dead_letters_are_documented_with_their_headers() -> None:
    (message,) = messages_of(str(Topic.DEAD_LETTER))
    assert {"dlq.reason", "dlq.detail", "dlq.source_topic"} <= set(message["headers"]["properties"])
    (example,) = message["examples"]
    assert example["headers"]["dlq.reason"] == "unknown currency"


def test_no_two_contract_types_share_a_name() -> None:
    """The document names schemas by class name: two enums or models of one name (say
    two `Direction`s) would make it depend on import order."""
    import enum
    import importlib
    import inspect

    from pydantic import BaseModel

    from contracts import registry

    modules = [
        importlib.import_module(name)
        for name in (*registry.EVENT_MODULES, "contracts.envelope", "contracts.references")
    ]
    seen: dict[str, str] = {}
    for module in modules:
        for name, value in vars(module).items():
            if not inspect.isclass(value) or value.__module__ != module.__name__:
                continue
            if issubclass(value, BaseModel | enum.Enum):
                assert seen.setdefault(name, module.__name__) == module.__name__, (
                    f"{name} is defined in {seen[name]} and in {module.__name__}"
                )


def test_the_inbound_channels_are_the_subscribers_the_services_run() -> None:
    running = {
        (topic, subscription.message)
        for broker_of in SERVICES
        for subscription in definition_of(broker_of.name).subscriptions
        if subscription.message is not None
        for topic in subscription.topics
    }
    assert running == {(str(t), model) for t, model in inbound_models().items()}
    received = {
        DOCUMENT["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
        for op in DOCUMENT["operations"].values()
        if op["action"] == "receive"
    }
    assert received == {topic for topic, _ in running}
