"""Other systems' facts over HTTP: every inbound topic's route takes the topic's documented
example, records it once however often it is sent, answers each message's outcome after
storing it, and refuses a batch holding what does not fit, naming each message with the
reason a dead letter would carry, without recording or dead-lettering any of it."""

from __future__ import annotations

from typing import Any

from contracts.asyncapi import load_document
from contracts.topics import INBOUND_TOPICS, Topic
from local.launcher import ServiceProcess
from services.runtime.http.inbound import MAX_MESSAGES, feed_name
from tests.e2e.test_asyncapi_examples import customer_of, examples_by_action
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic
from tests.support.routes import DEFINITIONS

WHERE_SEEN: dict[str, tuple[str, str]] = {
    Topic.PURCHASES_INBOUND: ("sales", "/customers/{}/purchases"),
    Topic.CALL_LOGS_INBOUND: ("interaction", "/customers/{}/timeline"),
    Topic.MESSAGES_INBOUND: ("interaction", "/customers/{}/timeline"),
    Topic.SURVEY_ANSWERS_INBOUND: ("interaction", "/customers/{}/timeline"),
}
"""Where each inbound topic's facts show, by customer."""


def outcomes(answer: dict[str, Any]) -> list[str]:
    return [o["outcome"] for o in answer["outcomes"]]


async def test_every_inbound_topic_takes_its_messages_over_http(
    infra: Infrastructure, sales_service: ServiceProcess, interaction_service: ServiceProcess
) -> None:
    services = {"sales": sales_service, "interaction": interaction_service}
    routes = {
        topic: name for name, definition in DEFINITIONS.items() for topic in definition.inbound
    }
    assert set(routes) == INBOUND_TOPICS == set(WHERE_SEEN)
    examples = examples_by_action(load_document(), "receive")

    for topic, service_name in sorted(routes.items()):
        (example,) = examples[topic]
        path = f"/inbound/{feed_name(topic)}"
        async with services[service_name].client(role="integration") as client:
            # a batch holding a message that does not fit is refused whole, naming it
            refused = await client.post(path, json=[example, {"nonsense": 1}, "text"])
            assert refused.status_code == 422, refused.text
            assert "2 of 3 messages" in refused.json()["error"]
            named = {tuple(d["location"]): d["message"] for d in refused.json()["details"]}
            assert named.keys() == {("body", "1"), ("body", "2")}
            assert named["body", "1"].startswith("missing field: ")
            assert named["body", "2"].startswith("not a JSON object: ")
            first = await client.post(path, json=[example, example])
            assert first.status_code == 200, first.text
            assert outcomes(first.json()) == ["recorded", "duplicate"], topic
            # sent again after a timeout: nothing recorded twice
            again = await client.post(path, json=[example])
            assert outcomes(again.json()) == ["duplicate"], again.text
            counts = {k: again.json()[k] for k in ("recorded", "duplicates", "rejected")}
            assert counts == {"recorded": 0, "duplicates": 1, "rejected": 0}

            for body, message in (
                (b"{}", "JSON array"),
                (b"[]", "no message"),
                (b"[1,", "not JSON"),
                (b"[" + b",".join([b"{}"] * (MAX_MESSAGES + 1)) + b"]", f"at most {MAX_MESSAGES}"),
            ):
                refused = await client.post(
                    path, content=body, headers={"Content-Type": "application/json"}
                )
                assert refused.status_code == 400 and message in refused.text, refused.text
        async with services[service_name].client(role="sales_rep") as other:
            assert (await other.post(path, json=[example])).status_code == 403

        async with services[WHERE_SEEN[topic][0]].client() as reader:
            await wait_for(
                reader,
                WHERE_SEEN[topic][1].format(customer_of(example)),
                lambda body: len(body["items"]) >= 1,
                timeout=30,
            )

    # what was rejected over HTTP was answered, not dead-lettered
    dead = await read_topic(infra.bootstrap_servers, Topic.DEAD_LETTER, expect=0, timeout=2)
    assert dead == []
