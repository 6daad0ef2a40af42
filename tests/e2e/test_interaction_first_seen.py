"""A caller the CRM has never seen becomes a customer, and their calls stay with them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from contracts.inbound.interactions import EXAMPLE_CALL_LOG
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


async def test_later_hints_fill_what_is_still_unknown_and_never_what_a_person_entered(
    infra: Infrastructure, interaction_service: ServiceProcess, sales_service: ServiceProcess
) -> None:
    """A call without a name makes the customer; a purchase three seconds later tells the
    name and phone; a person corrects the name; a later call's hint changes none of it and
    fills only the email, still unknown. Every hint field (name, phone, email) is filled
    when unknown and kept when known."""
    customers = infra.service("customer")
    await asyncio.to_thread(customers.start)
    try:
        shopper = CustomerReference(source="shop-cn", source_customer_id="U-SA-99")
        path = "/customers/by-reference/shop-cn/U-SA-99"
        started = datetime.now(UTC) - timedelta(hours=1)
        call = {
            **{k: v for k, v in EXAMPLE_CALL_LOG.items() if k != "customer_hint"},
            "call_id": "SA-1",
            "customer_reference": shopper.model_dump(),
            "started_at": started.isoformat(),
        }
        await publish_json(infra.bootstrap_servers, Topic.CALL_LOGS_INBOUND, [("U-SA-99", call)])
        async with customers.client(timeout=10) as crm:
            first = await wait_for(crm, path, lambda body: True)
            assert first["first_seen_in"] == "shop-cn" and first["contacts"] == []
            purchase = {
                "source": "shop-cn",
                "order_id": "SO-SA-99-1",
                "customer_reference": shopper.model_dump(),
                "customer_hint": {"name": "孙安", "phone": "+86 137 0013 7099"},
                "amount": "88.00",
                "currency": "CNY",
                "occurred_at": (started + timedelta(seconds=3)).isoformat(),
            }
            await publish_json(
                infra.bootstrap_servers, Topic.PURCHASES_INBOUND, [("U-SA-99", purchase)]
            )
            filled = await wait_for(crm, path, lambda body: body["name"] == "孙安")
            assert [c["phones"] for c in filled["contacts"]] == [["+86 137 0013 7099"]]
            assert [c["emails"] for c in filled["contacts"]] == [[]]
            history = (await crm.get(f"/customers/{first['customer_id']}/history")).json()
            assert [h["event_type"] for h in history] == [
                "customer.registered",
                "customer.profile_changed",
                "customer.contact_added",
            ]
            assert {h["actor"] for h in history[1:]} == {"crm.sales"}

            edited = await crm.patch(
                f"/customers/{first['customer_id']}/profile", json={"name": "孙安 会员"}
            )
            assert edited.status_code == 200, edited.text
            later = {
                **call,
                "call_id": "SA-2",
                "customer_hint": {
                    "name": "孙先生",
                    "phone": "+86 137 0000 0000",
                    "email": "sun.an@example.cn",
                },
                "started_at": (started + timedelta(minutes=5)).isoformat(),
            }
            await publish_json(
                infra.bootstrap_servers, Topic.CALL_LOGS_INBOUND, [("U-SA-99", later)]
            )
            final = await wait_for(
                crm, path, lambda body: any(c["emails"] for c in body["contacts"])
            )
            assert final["name"] == "孙安 会员", "a person's entry is never overwritten"
            assert [(c["phones"], c["emails"]) for c in final["contacts"]] == [
                (["+86 137 0013 7099"], ["sun.an@example.cn"])
            ]
            history = (await crm.get(f"/customers/{first['customer_id']}/history")).json()
            assert [h["event_type"] for h in history][3:] == [
                "customer.profile_changed",
                "customer.contact_changed",
            ]
            assert history[-1]["actor"] == "crm.interaction"
    finally:
        await asyncio.to_thread(customers.stop)
