"""A ticket read as it was at a past moment, from the event store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from local.launcher import ServiceProcess
from tests.support.customers import register_customer, when_customer_known
from tests.support.infrastructure import Infrastructure


async def test_a_ticket_as_it_was_at_a_past_moment(
    infra: Infrastructure, interaction_service: ServiceProcess
) -> None:
    customer = await register_customer(infra.bootstrap_servers, "杭州回溯科技")
    async with interaction_service.client(timeout=10) as client:
        before = datetime.now(UTC)
        opened = await when_customer_known(
            client,
            "/tickets",
            {
                "customer_id": str(customer),
                "kind": "complaint",
                "channel": "email",
                "category": "billing",
                "severity": "medium",
                "subject": "发票金额有误",
            },
        )
        assert opened.status_code == 201, opened.text
        path = f"/tickets/{opened.json()['id']}"
        just_opened = datetime.now(UTC)
        for command, body in (
            ("assignment", {"assignee": "王芳"}),
            ("escalations", {"severity": "high", "reason": "客户再次来电"}),
            ("responses", {"responder": "王芳", "message": "已核对"}),
            ("resolution", {"resolution": "已重开发票"}),
        ):
            answer = await client.post(f"{path}/{command}", json=body)
            assert answer.status_code == 200, answer.text
        resolved = datetime.now(UTC)
        assert (await client.post(f"{path}/closure")).status_code == 200

        def as_of(moment: datetime) -> dict[str, str]:
            return {"as_of": moment.isoformat()}

        first = await client.get(path, params=as_of(just_opened))
        assert first.status_code == 200, first.text
        then = first.json()
        assert (then["status"], then["assignee"], then["severity"], then["level"]) == (
            "open",
            None,
            "medium",
            0,
        )
        assert (then["version"], then["sla_state"], then["customer_name"]) == (
            1,
            "on_track",
            "杭州回溯科技",
        )
        assert then["first_responded_at"] is None and then["resolution"] is None

        later = (await client.get(path, params=as_of(resolved))).json()
        assert (later["status"], later["assignee"], later["severity"], later["level"]) == (
            "resolved",
            "王芳",
            "high",
            1,
        )
        assert (later["version"], later["resolution"], later["closed_at"]) == (
            5,
            "已重开发票",
            None,
        )
        assert later["sla_state"] == "met"

        now = await client.get(path, params=as_of(datetime.now(UTC) + timedelta(seconds=1)))
        assert (now.json()["status"], now.json()["version"]) == ("closed", 6)

        too_early = await client.get(path, params=as_of(before - timedelta(minutes=1)))
        assert too_early.status_code == 404 and "not opened yet" in too_early.text
        unknown = await client.get(f"/tickets/{uuid.uuid4()}", params=as_of(resolved))
        assert unknown.status_code == 404
        naive = await client.get(path, params={"as_of": "2026-01-01T00:00:00"})
        assert naive.status_code == 422
