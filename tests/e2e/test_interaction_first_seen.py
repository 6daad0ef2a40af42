"""A caller the CRM has never seen becomes a customer, and their calls stay with them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts.interaction import EXAMPLE_CALL_LOG
from contracts.references import CustomerReference, customer_id_for_reference
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json


async def test_an_unknown_caller_becomes_a_customer_named_by_the_call_centre(
    infra: Infrastructure, interaction_service: ServiceProcess
) -> None:
    customers = infra.service("customer")
    await asyncio.to_thread(customers.start)
    try:
        caller = CustomerReference(source="callcentre", source_customer_id="86-13900139000")
        started = datetime.now(UTC) - timedelta(hours=1)
        first_call = {
            **EXAMPLE_CALL_LOG,
            "call_id": "C-1",
            "customer_reference": caller.model_dump(),
            "customer_hint": {"name": "陈静", "phone": "+86 139 0013 9000"},
            "started_at": started.isoformat(),
        }
        await publish_json(infra.bootstrap_servers, Topic.CALL_LOGS_INBOUND, [("c", first_call)])
        async with (
            customers.client(timeout=10) as crm,
            interaction_service.client(timeout=10) as interactions,
        ):
            customer = await wait_for(
                crm, "/customers/by-reference/callcentre/86-13900139000", lambda body: True
            )
            assert customer["customer_id"] == str(customer_id_for_reference(caller))
            assert (customer["name"], customer["first_seen_in"]) == ("陈静", "callcentre")

            second_call = {
                **first_call,
                "call_id": "C-2",
                "subject": "确认退款进度",
                "started_at": (started + timedelta(minutes=30)).isoformat(),
            }
            await publish_json(
                infra.bootstrap_servers, Topic.CALL_LOGS_INBOUND, [("c", second_call)]
            )
            found = await wait_for(
                interactions,
                "/interactions",
                lambda body: (
                    len(body["items"]) == 2
                    and all(i["customer_name"] == "陈静" for i in body["items"])
                ),
                customer_id=customer["customer_id"],
            )
            assert [i["subject"] for i in found["items"]] == ["确认退款进度", "咨询发票开具"]
            history = (await crm.get(f"/customers/{customer['customer_id']}/history")).json()
            assert len(history) == 1  # registered once, however many calls name them
    finally:
        await asyncio.to_thread(customers.stop)
