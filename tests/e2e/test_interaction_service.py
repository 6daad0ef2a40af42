"""The interaction service on real PostgreSQL and a real broker, as its users see it.

One service process serves the whole story (each start costs seconds): a support team
logs calls and meetings, a complaint misses its response target and is resolved, the
call centre and the survey tool publish through their inbound topics with an ordinary
Kafka client, and the timeline, search, SLA, survey and contact-plan views answer.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import orjson

from contracts.inbound.interactions import EXAMPLE_CALL_LOG
from contracts.personal import open_value
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.topics import Topic
from local.demo import interaction as demo_interaction
from local.launcher import ServiceProcess, session_master_key
from services.runtime.privacy.keyring import Keyring
from tests.support.clock import ago
from tests.support.customers import register_customer
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import header, publish_json, read_topic

CALLCENTRE_REF = CustomerReference(source="callcentre", source_customer_id="86-13800138000")


def survey(answer_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "source": "survey-tool",
        "answer_id": answer_id,
        "survey": "post-ticket",
        "answered_at": ago(minutes=5),
        **fields,
    }


async def test_contacts_complaints_surveys_and_plans(
    infra: Infrastructure, interaction_service: ServiceProcess
) -> None:
    servers = infra.bootstrap_servers
    huaxin = await register_customer(
        servers,
        "上海华信贸易有限公司",
        preferred=["wechat"],
        opted_out=["phone"],
        references=[CALLCENTRE_REF],
    )
    quiet = await register_customer(
        servers, "北京静默科技", opted_out=["phone", "sms", "email", "wechat"]
    )
    async with interaction_service.client(timeout=10) as client:
        await wait_for(client, f"/customers/{huaxin}/timeline", lambda body: True)

        # A support team logs a meeting and a call ---------------------------------------
        meeting = await client.post(
            "/interactions",
            json={
                "customer_id": str(huaxin),
                "channel": "meeting",
                "direction": "outbound",
                "started_at": ago(days=5),
                "duration_seconds": 3600,
                "participants": [
                    {"role": "staff", "name": "李娜"},
                    {"role": "contact", "name": "张伟"},
                ],
                "subject": "年度合同续签洽谈",
                "notes": "Customer wants delivery to South China; quote next week.",
            },
        )
        assert meeting.status_code == 201, meeting.text
        meeting_id = meeting.json()["id"]
        call_body = {
            "customer_id": str(huaxin),
            "channel": "phone",
            "direction": "inbound",
            "started_at": ago(days=3),
            "duration_seconds": 240,
            "participants": [{"role": "staff", "name": "王芳"}],
            "subject": "咨询发票开具",
            "notes": "已告知三个工作日内寄出",
        }
        once = {"Idempotency-Key": "call-1"}
        call = await client.post("/interactions", headers=once, json=call_body)
        assert call.status_code == 201, call.text
        repeated = await client.post("/interactions", headers=once, json=call_body)
        assert repeated.json() == call.json()  # a retried request records nothing twice
        corrected = await client.post(
            f"/interactions/{meeting_id}/corrections",
            headers={"If-Match": '"1"'},
            json={"duration_seconds": 5400, "reason": "the meeting ran over"},
        )
        assert corrected.status_code == 200, corrected.text
        stale = await client.post(
            f"/interactions/{meeting_id}/corrections",
            headers={"If-Match": '"1"'},
            json={"subject": "x", "reason": "stale"},
        )
        assert stale.status_code == 409

        # A complaint opened two hours ago has missed its 30-minute response target ------
        complaint = await client.post(
            "/tickets",
            json={
                "customer_id": str(huaxin),
                "kind": "complaint",
                "channel": "phone",
                "category": "delivery",
                "severity": "high",
                "subject": "货物延迟三天未送达",
                "opened_at": ago(hours=2),
            },
        )
        assert complaint.status_code == 201, complaint.text
        complaint_id = complaint.json()["id"]
        request = await client.post(
            "/tickets",
            json={
                "customer_id": str(huaxin),
                "kind": "service_request",
                "channel": "email",
                "category": "billing",
                "severity": "low",
                "subject": "Invoice copy",
            },
        )
        assert request.status_code == 201
        breached = await wait_for(
            client,
            "/tickets",
            lambda body: [t["ticket_id"] for t in body["items"]] == [complaint_id],
            sla_state="breached",
        )
        late = breached["items"][0]
        assert late["customer_name"] == "上海华信贸易有限公司"
        assert late["response_breached"] is True, "unanswered past its target: breached now"
        assert late["resolution_breached"] is False
        on_track = await wait_for(
            client, "/tickets", lambda body: len(body["items"]) == 1, sla_state="on_track"
        )
        assert on_track["items"][0]["severity"] == "low"
        summary = (await client.get("/tickets/summary")).json()
        assert [(r["severity"], r["assignee"], r["sla_state"], r["tickets"]) for r in summary] == [
            ("high", None, "breached", 1),
            ("low", None, "on_track", 1),
        ]

        assert (
            await client.post(f"/tickets/{complaint_id}/assignment", json={"assignee": "王芳"})
        ).status_code == 200
        answered = await client.post(
            f"/tickets/{complaint_id}/responses",
            json={"responder": "王芳", "message": "已联系物流"},
        )
        assert answered.status_code == 200
        resolved = await client.post(
            f"/tickets/{complaint_id}/resolution", json={"resolution": "今日送达, 补偿优惠券"}
        )
        assert resolved.status_code == 200
        again = await client.post(f"/tickets/{complaint_id}/resolution", json={"resolution": "x"})
        assert again.status_code == 409 and "resolved already" in again.text
        ticket = await wait_for(
            client, f"/tickets/{complaint_id}", lambda body: body["status"] == "resolved"
        )
        assert ticket["sla_state"] == "breached"
        assert ticket["response_breached"] is True
        assert ticket["resolution_breached"] is False
        assert ticket["assignee"] == "王芳"
        times = (await client.get("/tickets/times", params={"period": "day"})).json()
        delivery = next(row for row in times if row["category"] == "delivery")
        assert delivery["opened"] == 1 and delivery["resolved"] == 1
        assert delivery["response_breaches"] == 1
        assert 115 <= delivery["avg_first_response_minutes"] <= 130

        # The call centre and the survey tool publish with an ordinary Kafka client -----
        stranger = CustomerReference(source="survey-tool", source_customer_id="R-9")
        await publish_json(
            servers,
            Topic.CALL_LOGS_INBOUND,
            [("86-13800138000", {**EXAMPLE_CALL_LOG, "started_at": ago(days=2)})],
        )
        answer = survey(
            "S-1",
            customer_reference=CALLCENTRE_REF.model_dump(),
            csat=5,
            nps=10,
            channel="phone",
            ticket_id=complaint_id,
            comment="处理很及时",
        )
        await publish_json(
            servers,
            Topic.SURVEY_ANSWERS_INBOUND,
            [
                ("S-1", answer),
                ("S-1", answer),  # sent twice: recorded once
                (
                    "S-2",
                    survey(
                        "S-2",
                        customer_reference=stranger.model_dump(),
                        customer_hint={"name": "陈静"},
                        csat=2,
                        nps=3,
                        channel="phone",
                    ),
                ),
                ("bad-1", b'{"source": "survey-tool", "answer_id": '),
                ("bad-2", survey("S-3", customer_id=str(huaxin), csat=7)),
                ("bad-3", survey("S-4", csat=4)),
            ],
        )
        await publish_json(
            servers,
            Topic.MESSAGES_INBOUND,
            [
                (
                    "bad-4",
                    {
                        "source": "msg-gateway",
                        "message_id": "m-1",
                        "channel": "fax",
                        "customer_id": str(huaxin),
                        "direction": "inbound",
                        "sent_at": ago(minutes=1),
                        "text": "hello",
                    },
                )
            ],
        )
        results = await wait_for(
            client,
            "/survey-results",
            lambda body: sum(r["answers"] for r in body) == 2,
            period="day",
        )
        assert len(results) == 1
        assert results[0]["csat_average"] == 3.5
        assert results[0]["promoters"] == 1 and results[0]["detractors"] == 1
        assert results[0]["nps"] == 0.0

        # The timeline, keyword and participant search answer ---------------------------
        timeline = await wait_for(
            client,
            f"/customers/{huaxin}/timeline",
            lambda body: len(body["items"]) == 6,
        )
        kinds = [entry["entry_type"] for entry in timeline["items"]]
        assert sorted(kinds) == sorted(
            ["survey_answer", "ticket", "ticket", "interaction", "interaction", "interaction"]
        )
        assert [e["title"] for e in timeline["items"] if e["entry_type"] == "interaction"] == [
            "咨询发票开具",
            "咨询发票开具",
            "年度合同续签洽谈",
        ]
        page = (await client.get(f"/customers/{huaxin}/timeline", params={"limit": 4})).json()
        rest = (
            await client.get(
                f"/customers/{huaxin}/timeline", params={"limit": 4, "cursor": page["next_cursor"]}
            )
        ).json()
        assert [e["entry_id"] for e in page["items"] + rest["items"]] == [
            e["entry_id"] for e in timeline["items"]
        ]
        assert rest["next_cursor"] is None

        async def subjects(**params: Any) -> list[str]:
            body = (await client.get("/interactions", params=params)).json()
            return [item["subject"] for item in body["items"]]

        assert await subjects(keyword="发票") == ["咨询发票开具", "咨询发票开具"]
        assert await subjects(keyword="续签洽谈") == ["年度合同续签洽谈"]
        assert await subjects(keyword="SOUTH china") == ["年度合同续签洽谈"]
        assert await subjects(keyword="票") == ["咨询发票开具", "咨询发票开具"]
        # several words: each anywhere, in any order
        assert await subjects(keyword="开具 咨询") == ["咨询发票开具", "咨询发票开具"]
        assert await subjects(keyword="发票 续签") == []
        assert await subjects(participant="李娜", channel="meeting") == ["年度合同续签洽谈"]
        assert await subjects(keyword="发票", since=ago(days=2, minutes=30)) == ["咨询发票开具"]
        reported = (await client.get("/interactions", params={"keyword": "发票"})).json()
        assert reported["items"][0]["source"] == "callcentre"
        assert reported["items"][0]["customer_id"] == str(huaxin)
        meeting_view = (await client.get(f"/interactions/{meeting_id}")).json()
        assert meeting_view["duration_seconds"] == 5400 and meeting_view["correction_count"] == 1
        exported = await client.get("/interactions/export.csv", params={"customer_id": str(huaxin)})
        rows = csv_rows(exported)
        timeline_csv = await client.get(f"/customers/{huaxin}/timeline/export.csv")
        assert len(csv_rows(timeline_csv)) == 6
        assert [r["subject"] for r in rows] == ["咨询发票开具", "咨询发票开具", "年度合同续签洽谈"]

        # The call centre re-sends a call it sent before: still one call ------------------
        await publish_json(
            servers,
            Topic.CALL_LOGS_INBOUND,
            [
                ("86-13800138000", {**EXAMPLE_CALL_LOG, "started_at": ago(days=2)}),
                (
                    "86-13800138000",
                    {
                        **EXAMPLE_CALL_LOG,
                        "call_id": "C-2",
                        "subject": "确认发票地址",
                        "started_at": ago(days=2, hours=1),
                    },
                ),
            ],
        )
        await wait_for(
            client, "/interactions", lambda body: len(body["items"]) == 1, keyword="确认发票地址"
        )
        assert await subjects(keyword="咨询发票") == ["咨询发票开具", "咨询发票开具"]

        # Contact plans: overdue ones, with a channel the customer allows --------------
        for customer in (huaxin, quiet):
            plan = await client.put(
                f"/customers/{customer}/contact-plan",
                json={
                    "channel": "phone",
                    "every_days": 1,
                    "owner": "李娜",
                    "starts_at": ago(days=10),
                },
            )
            assert plan.status_code == 200, plan.text
        everyone = await wait_for(
            client, "/contacts-due", lambda body: len(body["items"]) == 2, include_refused="true"
        )
        assert {e["customer_id"]: e["channel_to_use"] for e in everyone["items"]} == {
            str(huaxin): "wechat",
            str(quiet): None,
        }
        (entry,) = (await client.get("/contacts-due")).json()["items"]
        assert entry["customer_id"] == str(huaxin) and entry["state"] == "overdue"
        assert entry["planned_channel_refused"] is True and entry["channel_to_use"] == "wechat"

        # Bad input gets a 4xx a person can act on ----------------------------------------
        unknown_channel = await client.post(
            "/interactions",
            json={
                "customer_id": str(huaxin),
                "channel": "fax",
                "direction": "inbound",
                "subject": "x",
            },
        )
        assert unknown_channel.status_code == 422
        future = await client.post(
            "/tickets",
            json={
                "customer_id": str(huaxin),
                "kind": "complaint",
                "channel": "phone",
                "category": "delivery",
                "severity": "high",
                "subject": "x",
                "opened_at": ago(days=-1),
            },
        )
        assert future.status_code == 422 and "future" in future.text
        bad_score = await client.post(
            "/survey-answers", json={"customer_id": str(huaxin), "survey": "x", "csat": 7}
        )
        assert bad_score.status_code == 422
        assert (await client.get("/interactions", params={"cursor": "nonsense"})).status_code == 400
        assert (await client.get(f"/tickets/{uuid.uuid4()}")).status_code == 404
        nobody = await client.post(
            "/interactions",
            json={
                "customer_id": str(uuid.uuid4()),
                "channel": "phone",
                "direction": "inbound",
                "subject": "x",
            },
        )
        assert nobody.status_code == 422 and "register the customer first" in nobody.text

    # What went out on the interaction topic, and what was dead-lettered ----------------
    published = await read_topic(servers, Topic.INTERACTION, expect=14)
    surveys = [
        orjson.loads(r.value)
        for r in published
        if orjson.loads(r.value)["event_type"] == "interaction.survey_answered"
    ]
    assert len(surveys) == 2
    stranger_id = customer_id_for_reference(stranger)
    by_stranger = next(s for s in surveys if s["customer_id"] == str(stranger_id))
    # the hint's name and the reference are personal: sealed with the customer's key
    sealed_name = by_stranger["payload"]["customer_hint"]["name"]
    sealed_reference = by_stranger["payload"]["customer_reference"]["source_customer_id"]
    assert sealed_name.startswith("sealed:v1:") and sealed_reference.startswith("sealed:v1:")
    keyring = Keyring(infra.database_url, base64.b64decode(session_master_key()))
    await asyncio.to_thread(keyring.open)
    key = (await asyncio.to_thread(keyring.opening_keys, [stranger_id]))[stranger_id]
    await asyncio.to_thread(keyring.close)
    assert open_value(sealed_name, key, stranger_id) == "陈静"
    assert open_value(sealed_reference, key, stranger_id) == stranger.source_customer_id
    calls = [
        orjson.loads(r.value)
        for r in published
        if orjson.loads(r.value)["payload"].get("source") == "callcentre"
    ]
    assert [c["customer_id"] for c in calls] == [str(huaxin)] * 2  # C-20261123-0042 once, C-2
    dead = await read_topic(servers, Topic.DEAD_LETTER, expect=4)
    reasons = {header(r, "dlq.reason") for r in dead}
    assert reasons == {
        "malformed JSON",
        "csat out of range",
        "no customer named",
        "unknown channel",
    }

    # The demo data of `crm up` is accepted as it stands ----------------------------------
    demo_customers = [str(await register_customer(servers, f"演示客户 {n}")) for n in range(4)]
    await demo_interaction.load(
        interaction_service.url, demo_customers, interaction_service.token()
    )
