"""Consent holds on every way an outbound contact is recorded, on real PostgreSQL and a
real broker: every channel on every HTTP route and inbound topic that records outbound
contact with a customer who opted out of channels."""

from __future__ import annotations

from typing import Any

import httpx

from contracts.interaction_values import InteractionChannel, MessageChannel
from contracts.references import CustomerReference
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.clock import ago
from tests.support.customers import register_customer
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json
from tests.support.metrics import scrape, total

OPTED_OUT = ["phone", "sms", "email", "wechat"]
"""Every channel a customer can opt out of that is also a channel of contact."""
GOVERNED = {InteractionChannel(c) for c in OPTED_OUT}
OVERRIDE = {"reason": "customer_request", "note": "客户来电要求用此渠道发送报价"}
REFERENCE = CustomerReference(source="callcentre", source_customer_id="86-13700137000")


def contact(customer_id: str, channel: str, direction: str, subject: str) -> dict[str, Any]:
    return {
        "customer_id": customer_id,
        "channel": channel,
        "direction": direction,
        "started_at": ago(minutes=30),
        "subject": subject,
    }


def refused_for_consent(response: httpx.Response, channel: str) -> None:
    assert response.status_code == 422, response.text
    message = response.json()["error"]
    assert f"opted out of {channel}" in message, message
    assert "consent_override" in message and "customer_request" in message, message


async def test_outbound_contact_on_an_opted_out_channel_needs_a_stated_reason(
    infra: Infrastructure, interaction_service: ServiceProcess
) -> None:
    servers = infra.bootstrap_servers
    quiet = str(
        await register_customer(
            servers, "北京静默科技", preferred=["mail"], opted_out=OPTED_OUT, references=[REFERENCE]
        )
    )
    async with interaction_service.client(timeout=10) as client:
        known = await wait_for(
            client, f"/customers/{quiet}/timeline", lambda body: body["consent"] is not None
        )
        assert known["consent"] == {"preferred": ["mail"], "opted_out": OPTED_OUT}

        # HTTP: every channel, outbound and inbound --------------------------------------
        expected: dict[str, dict[str, Any]] = {}
        for channel in InteractionChannel:
            outbound = contact(quiet, channel, "outbound", f"outbound {channel}")
            answer = await client.post("/interactions", json=outbound)
            if channel in GOVERNED:
                refused_for_consent(answer, channel)
                answer = await client.post(
                    "/interactions", json={**outbound, "consent_override": OVERRIDE}
                )
                assert answer.status_code == 201, answer.text
                expected[answer.json()["id"]] = {"consent_override": OVERRIDE}
            else:
                assert answer.status_code == 201, f"{channel}: {answer.text}"
                expected[answer.json()["id"]] = {"consent_override": None}
            inbound = await client.post(
                "/interactions", json=contact(quiet, channel, "inbound", f"inbound {channel}")
            )
            assert inbound.status_code == 201, f"the customer contacted us: {inbound.text}"
            expected[inbound.json()["id"]] = {"consent_override": None}
        unknown_reason = await client.post(
            "/interactions",
            json={
                **contact(quiet, "sms", "outbound", "x"),
                "consent_override": {"reason": "we felt like it"},
            },
        )
        assert unknown_reason.status_code == 422 and "customer_request" in unknown_reason.text

        # HTTP corrections that turn a contact into outbound on an opted-out channel ------
        for channel in sorted(GOVERNED):
            logged = await client.post(
                "/interactions", json=contact(quiet, "meeting", "inbound", f"corrected {channel}")
            )
            interaction_id = logged.json()["id"]
            change = {"channel": channel, "direction": "outbound", "reason": "logged wrongly"}
            path = f"/interactions/{interaction_id}/corrections"
            corrected = await client.post(path, json=change)
            refused_for_consent(corrected, channel)
            corrected = await client.post(path, json={**change, "consent_override": OVERRIDE})
            assert corrected.status_code == 200, corrected.text
            expected[interaction_id] = {"consent_override": OVERRIDE}

        # Inbound topics: the contact happened already; recorded, flagged a breach --------
        call = {
            "source": "callcentre",
            "customer_reference": REFERENCE.model_dump(),
            "duration_seconds": 60,
            "agent": "王芳",
            "started_at": ago(minutes=20),
        }
        messages = [
            ("call", Topic.CALL_LOGS_INBOUND, {**call, "call_id": "out-1", "direction": "outbound",
             "subject": "outbound call"}, True),
            ("call", Topic.CALL_LOGS_INBOUND, {**call, "call_id": "in-1", "direction": "inbound",
             "subject": "inbound call"}, False),
            ("call", Topic.CALL_LOGS_INBOUND, {**call, "call_id": "out-2", "direction": "outbound",
             "subject": "outbound call asked for", "consent_override": OVERRIDE}, False),
        ]  # fmt: skip
        for carried in MessageChannel:
            message = {
                "source": "msg-gateway",
                "customer_id": quiet,
                "channel": carried,
                "sent_at": ago(minutes=10),
            }
            for direction in ("outbound", "inbound"):
                breach = direction == "outbound" and carried in GOVERNED
                messages.append(
                    (
                        "message",
                        Topic.MESSAGES_INBOUND,
                        {
                            **message,
                            "message_id": f"{carried}-{direction}",
                            "direction": direction,
                            "text": f"{direction} message on {carried}",
                        },
                        breach,
                    )
                )
        for _, topic, body, _ in messages:
            await publish_json(servers, topic, [(REFERENCE.source_customer_id, body)])

        count = len(expected) + len(messages)
        timeline = await wait_for(
            client,
            f"/customers/{quiet}/timeline",
            lambda body: len(body["items"]) == count,
            limit=200,
        )
        by_subject = {e["title"]: e for e in timeline["items"]}
        for entry in timeline["items"]:
            if entry["entry_id"] in expected:
                want = expected[entry["entry_id"]]
                assert entry["details"]["consent_override"] == want["consent_override"], entry
                assert entry["details"]["consent_breach"] is False, entry
        for kind, _, body, breach in messages:
            subject = body.get("subject") or body["text"]
            entry = by_subject[subject]
            assert entry["details"]["consent_breach"] is breach, (kind, entry)
            assert entry["details"]["consent_override"] == body.get("consent_override"), entry
        breaches = [e for e in timeline["items"] if e["details"]["consent_breach"]]
        assert len(breaches) == 4  # the outbound call; outbound sms, email and wechat messages
        one = await client.get(f"/interactions/{breaches[0]['entry_id']}")
        assert one.json()["consent_breach"] is True

        # A breach is explained afterwards by a correction that states the reason ----------
        explained = await client.post(
            f"/interactions/{breaches[0]['entry_id']}/corrections",
            json={"consent_override": OVERRIDE, "reason": "the customer had asked for it"},
        )
        assert explained.status_code == 200, explained.text
        corrected = await wait_for(
            client,
            f"/interactions/{breaches[0]['entry_id']}",
            lambda body: body["correction_count"] == 1,
        )
        assert corrected["consent_breach"] is False
        assert corrected["consent_override"] == OVERRIDE

        samples = await scrape(client)
        assert total(samples, "crm_interaction_consent_breaches_total") == len(breaches)
        assert total(samples, "crm_interaction_consent_breaches_total", channel="phone") == 1
