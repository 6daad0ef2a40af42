"""Who may change which customer, role by role, on the running customer service.

Support agents correct contact persons, addresses and channel consent of any customer
(what they hear on the phone), and nothing else; a sales rep changes the customers they
own, contact details included, and no one else's; managers change none; administrators
and integration accounts change anyone's and alone register customers. A handover of a
customer takes effect at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from local.launcher import ServiceProcess
from services.runtime.http.roles import ROLES
from tests.support.http import wait_for

Change = Callable[[httpx.AsyncClient, str, str], Awaitable[httpx.Response]]


async def add_contact(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    body = {"name": "王五", "phones": ["+86 139 0000 0001"]}
    return await client.post(f"/customers/{customer_id}/contacts", json=body)


async def fix_a_number(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    body = {"phones": ["+86 138 0013 8001"]}
    return await client.patch(f"/customers/{customer_id}/contacts/{contact_id}", json=body)


async def set_consent(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    body = {"preferred": ["email"], "opted_out": ["sms"]}
    return await client.put(f"/customers/{customer_id}/channel-preferences", json=body)


async def set_address(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    body = {"line1": "天河路 385 号", "city": "广州", "country": "CN"}
    return await client.put(f"/customers/{customer_id}/addresses/office", json=body)


async def change_region(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    return await client.patch(f"/customers/{customer_id}/profile", json={"region": "华南"})


async def tag(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    return await client.post(f"/customers/{customer_id}/tags", json={"tag": "vip-2026"})


async def classify(client: httpx.AsyncClient, customer_id: str, contact_id: str) -> Any:
    body = {"importance_tier": "vip"}
    return await client.patch(f"/customers/{customer_id}/classification", json=body)


CONTACT_DETAILS: list[Change] = [add_contact, fix_a_number, set_consent, set_address]
OTHER_CHANGES: list[Change] = [change_region, tag, classify]
EVERY_CHANGE = {*CONTACT_DETAILS, *OTHER_CHANGES}

ALLOWED: dict[str, dict[str, set[Change]]] = {
    # role: {whose customer: the changes allowed}
    "support_agent": {"own": set(CONTACT_DETAILS), "other": set(CONTACT_DETAILS)},
    "sales_rep": {"own": EVERY_CHANGE, "other": set()},
    "manager": {"own": set(), "other": set()},
    "administrator": {"own": EVERY_CHANGE, "other": EVERY_CHANGE},
    "integration": {"own": EVERY_CHANGE, "other": EVERY_CHANGE},
}
REGISTERS = {"administrator", "integration"}


async def register(admin: httpx.AsyncClient, owner: str) -> tuple[str, str]:
    body = {
        "name": f"{owner} 的客户",
        "kind": "business",
        "owner": owner,
        "contacts": [{"name": "张伟", "phones": ["+86 138 0013 8000"]}],
    }
    response = await admin.post("/customers", json=body)
    assert response.status_code == 201, response.text
    customer_id: str = response.json()["customer_id"]
    customer = await wait_for(admin, f"/customers/{customer_id}", lambda c: c["contacts"])
    return customer_id, customer["contacts"][0]["contact_id"]


async def test_each_role_changes_the_customers_the_permission_table_gives_it(
    customer_service: ServiceProcess,
) -> None:
    assert set(ALLOWED) == set(ROLES)
    async with customer_service.client("administrator", "admin", timeout=10) as admin:
        for role in ROLES:
            subject = f"{role}.person"
            own = await register(admin, subject)
            other = await register(admin, "someone.else")
            async with customer_service.client(role, subject, timeout=10) as client:
                for whose, (customer_id, contact_id) in (("own", own), ("other", other)):
                    for change in [*CONTACT_DETAILS, *OTHER_CHANGES]:
                        response = await change(client, customer_id, contact_id)
                        what = f"{role} {change.__name__} of a customer of {whose}"
                        if change in ALLOWED[role][whose]:
                            assert response.status_code in (200, 201), (what, response.text)
                        else:
                            assert response.status_code == 403, (what, response.text)
                registered = await client.post(
                    "/customers", json={"name": "新", "kind": "consumer"}
                )
                assert (registered.status_code == 201) == (role in REGISTERS), (
                    role,
                    registered.text,
                )


async def test_a_rep_is_told_whose_customer_it_is_and_a_handover_counts_at_once(
    customer_service: ServiceProcess,
) -> None:
    async with (
        customer_service.client("administrator", "admin", timeout=10) as admin,
        customer_service.client("sales_rep", "li.na", timeout=10) as li_na,
    ):
        customer_id, contact_id = await register(admin, "wang.fang")
        refused = await fix_a_number(li_na, customer_id, contact_id)
        assert refused.status_code == 403
        assert "owned by 'wang.fang'" in refused.json()["error"]
        assert "customers:write-contact-any" in refused.json()["error"]
        handed = await admin.patch(f"/customers/{customer_id}/profile", json={"owner": "li.na"})
        assert handed.status_code == 200, handed.text
        assert (await fix_a_number(li_na, customer_id, contact_id)).status_code == 200
        # and the rep may hand it on, after which it is no longer theirs
        onward = await li_na.patch(f"/customers/{customer_id}/profile", json={"owner": "zhao.lei"})
        assert onward.status_code == 200, onward.text
        assert (await change_region(li_na, customer_id, contact_id)).status_code == 403
