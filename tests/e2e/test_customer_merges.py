"""Merging customers and undoing the merge, across the four services: the survivor shows
the absorbed customer's records everywhere, a read of the absorbed id answers where it
went, inbound facts naming it land on the survivor, and undoing the merge leaves every
service's projection tables as they were before it."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from contracts.envelope import payload_example
from contracts.inbound.interactions import CallLog
from contracts.topics import Topic
from local.launcher import ServiceProcess
from tests.support.auth import bearer
from tests.support.customers import when_customer_known
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json
from tests.support.metrics import scrape, total
from tests.support.purchases import shop_purchase as purchase
from tests.support.waiting import eventually

SCHEMAS = ("customer", "sales", "interaction", "analytics")
BOOKKEEPING = re.compile(
    r"consumed_events|consumer_positions|audit_log|projection_versions|dead_letter|"
    r"idempot|stored_events|_events$|notification|tracking|outbox|positions|migrations|"
    r"writer|lock"
)
"""Tables that record what was consumed, published, asked or audited, not what is known."""
CHANGE_COUNTERS = {"customer_directory": {"version", "change_count", "updated_at"}}
"""Columns counting a customer's own changes: a merge and its undoing are two of them."""
ALIASES = "customer_aliases"
HISTORY = "analytics.segment_history"
"""Compared by the rule of docs/analytics.md "Merged customers": the segment history rows
the merge and its undoing recorded (the absorbed customer's exits and re-entries, the
survivor's changes to and from its group's memberships) are new; every row before them is
as it was, and the current memberships are as before."""
REPEAT_BUYERS = {
    "segment": "repeat_buyers",
    "name": "回头客",
    "rule": {"field": "purchase_count", "op": "ge", "value": 2},
}


async def memberships(database_url: str, customer_id: str) -> set[str]:
    """The customer's current segments as analytics recorded them."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            """SELECT segment FROM analytics.segment_history
               WHERE customer_id = $1 AND left_at IS NULL""",
            customer_id,
        )
    finally:
        await connection.close()
    return {r["segment"] for r in rows}


async def history_rows(database_url: str) -> dict[int, dict[str, Any]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(f"SELECT * FROM {HISTORY}")
    finally:
        await connection.close()
    return {r["id"]: dict(r) for r in rows}


async def history_as_before(
    database_url: str, before: dict[int, dict[str, Any]], since: datetime
) -> None:
    """Every history row as before, except rows left `since` (an exit the merge caused);
    every new row entered `since` (by the merge or its undoing)."""
    after = await history_rows(database_url)
    for row_id, row in before.items():
        kept = after[row_id]
        if row["left_at"] is None and kept["left_at"] is not None:
            assert kept["left_at"] >= since, kept
            kept = {**kept, "left_at": None, "left_values": None}
        assert kept == row, (row, kept)
    new = [r for i, r in after.items() if i not in before]
    assert new, "the merge recorded the absorbed customer's exits"
    assert all(r["entered_at"] >= since for r in new), new


async def projection_tables(database_url: str) -> dict[str, list[str]]:
    """Every projection table of the four services (schema.table) with its rows, each row
    as text, sorted; change counters of the directory left out."""
    connection = await asyncpg.connect(database_url)
    try:
        tables = await connection.fetch(
            """SELECT table_schema, table_name FROM information_schema.tables
               WHERE table_schema = ANY($1::text[]) AND table_type = 'BASE TABLE'""",
            list(SCHEMAS),
        )
        dump: dict[str, list[str]] = {}
        for table in tables:
            name = table["table_name"]
            if BOOKKEEPING.search(name):
                continue
            records = await connection.fetch(f'SELECT * FROM {table["table_schema"]}."{name}"')
            left_out = CHANGE_COUNTERS.get(name, set())
            dump[f"{table['table_schema']}.{name}"] = sorted(
                repr(sorted((k, v) for k, v in dict(r).items() if k not in left_out))
                for r in records
            )
        return dump
    finally:
        await connection.close()


async def settled_tables(database_url: str) -> dict[str, list[str]]:
    """The projection tables once a second passes without a change to them."""
    first = await projection_tables(database_url)
    await asyncio.sleep(1.0)
    assert await projection_tables(database_url) == first, "still changing"
    return first


async def redirected(client: httpx.AsyncClient, path: str, survivor: str) -> dict[str, Any]:
    async def answer() -> dict[str, Any]:
        response = await client.get(path)
        assert response.status_code == 307, (path, response.status_code, response.text)
        assert survivor in response.headers["Location"]
        body: dict[str, Any] = response.json()
        assert body["merged_into"] == survivor
        return body

    return await eventually(answer, describe=f"{path} redirected to the survivor")


async def answered(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    async def answer() -> dict[str, Any]:
        response = await client.get(path)
        assert response.status_code == 200, (path, response.status_code, response.text)
        body: dict[str, Any] = response.json()
        return body

    return await eventually(answer, describe=f"{path} answered")


async def test_a_merge_undone_leaves_every_service_as_before(
    infra: Infrastructure, all_services: dict[str, ServiceProcess]
) -> None:
    customer, sales, interaction, analytics = (
        all_services[n].client(timeout=10)
        for n in ("customer", "sales", "interaction", "analytics")
    )
    async with customer, sales, interaction, analytics:
        defined = await analytics.post("/segments", json=REPEAT_BUYERS)
        assert defined.status_code == 201, defined.text
        survivor_body = {
            "name": "上海华信贸易有限公司",
            "kind": "business",
            "region": "华东",
            "tags": ["key-account"],
            "contacts": [{"name": "张伟", "phones": ["+86 138 0013 8000"]}],
        }
        absorbed_body = {
            "name": "华信贸易",
            "kind": "business",
            "industry": "贸易",
            "tags": ["shop"],
            "contacts": [{"name": "刘洋", "emails": ["liu.yang@huaxin.example"]}],
            "channel_preferences": {"preferred": [], "opted_out": ["sms"]},
        }
        survivor = (await customer.post("/customers", json=survivor_body)).json()["customer_id"]
        absorbed = (await customer.post("/customers", json=absorbed_body)).json()["customer_id"]
        added = await customer.post(
            f"/customers/{absorbed}/references",
            json={"source": "shop-cn", "source_customer_id": "U-1029"},
        )
        assert added.status_code == 200, added.text

        # The absorbed customer's records in sales and interaction ----------------------
        deal = await when_customer_known(
            sales,
            "/opportunities",
            {
                "customer_id": absorbed,
                "description": "年度许可",
                "products": [{"product": "许可", "quantity": 1, "unit_price": "1000.00"}],
                "currency": "CNY",
                "expected_close_date": str(datetime.now(UTC).date() + timedelta(days=30)),
                "owner": "li.na",
            },
            headers=bearer("administrator", "li.na"),
        )
        assert deal.status_code == 201, deal.text
        await publish_json(
            infra.bootstrap_servers,
            Topic.PURCHASES_INBOUND,
            [
                ("U-1029", purchase("SO-1", "88.50", customer_reference=_shop("U-1029"))),
                (survivor, purchase("SO-2", "1299.00", customer_id=survivor)),
            ],
        )
        call = await when_customer_known(
            interaction,
            "/interactions",
            {
                "customer_id": absorbed,
                "channel": "phone",
                "direction": "inbound",
                "started_at": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                "duration_seconds": 120,
                "participants": [{"role": "staff", "name": "王芳"}],
                "subject": "咨询发票",
            },
        )
        assert call.status_code == 201, call.text
        ticket = await interaction.post(
            "/tickets",
            json={
                "customer_id": absorbed,
                "kind": "complaint",
                "channel": "phone",
                "severity": "high",
                "category": "delivery",
                "subject": "货物延迟",
            },
        )
        assert ticket.status_code == 201, ticket.text
        answer = await interaction.post(
            "/survey-answers", json={"customer_id": absorbed, "survey": "post-ticket", "csat": 4}
        )
        assert answer.status_code == 201, answer.text
        plan = await interaction.put(
            f"/customers/{absorbed}/contact-plan", json={"channel": "phone", "every_days": 30}
        )
        assert plan.status_code == 200, plan.text

        async def everything_arrived() -> bool:
            bought = (await sales.get(f"/customers/{absorbed}/purchases")).json()["items"]
            assert [p["order_id"] for p in bought] == ["SO-1"]
            timeline = (await interaction.get(f"/customers/{absorbed}/timeline")).json()
            assert len(timeline["items"]) == 3
            for customer_id in (absorbed, survivor):
                profile = await analytics.get(f"/profiles/{customer_id}")
                assert profile.status_code == 200, profile.text
                assert profile.json()["purchase_count"] == 1, profile.text
            return True

        await eventually(everything_arrived, describe="every service knows both customers")
        before = await eventually(
            lambda: settled_tables(infra.database_url),
            describe="the projections settled (analytics re-scores in the background)",
        )
        # the memberships once settled: the background re-scoring adds the RFM ones
        own = {c: await memberships(infra.database_url, c) for c in (survivor, absorbed)}
        assert own[survivor] and own[absorbed]
        assert "repeat_buyers" not in own[survivor] | own[absorbed]  # one purchase each
        before_history = await history_rows(infra.database_url)
        compared_at = datetime.now(UTC)
        for table in (
            "customer.customer_directory",
            "sales.opportunities",
            "sales.purchases",
            "interaction.interactions",
            "interaction.tickets",
            "interaction.survey_answers",
            "analytics.profiles",
        ):
            assert before.get(table), f"{table} should be compared and have rows"

        # Merging needs the permission ----------------------------------------------------
        merge_body = {"survivor_id": survivor, "absorbed": [absorbed]}
        refused = await customer.post(
            "/customer-merges", json=merge_body, headers=bearer("sales_rep", "li.na")
        )
        assert refused.status_code == 403, refused.text
        assert "customers:merge" in refused.text

        merged = await customer.post("/customer-merges", json=merge_body)
        assert merged.status_code == 201, merged.text
        merge_id = merged.json()["merge_id"]

        # Reading the absorbed id answers where it went, in every service ---------------
        await redirected(customer, f"/customers/{absorbed}", survivor)
        await redirected(sales, f"/customers/{absorbed}/purchases", survivor)
        await redirected(sales, f"/opportunities?customer_id={absorbed}", survivor)
        await redirected(interaction, f"/customers/{absorbed}/timeline", survivor)
        await redirected(analytics, f"/profiles/{absorbed}", survivor)

        # The survivor shows the absorbed customer's records -----------------------------
        shown = await answered(customer, f"/customers/{survivor}")
        assert {c["name"] for c in shown["contacts"]} == {"张伟", "刘洋"}
        assert shown["tags"] == ["key-account", "shop"]
        assert shown["industry"] == "贸易"  # empty on the survivor, taken from the absorbed
        assert shown["channel_preferences"]["opted_out"] == ["sms"]
        assert {"source": "shop-cn", "source_customer_id": "U-1029"} in shown["references"]
        listed = (await customer.get("/customers", params={"name": "华信"})).json()["items"]
        assert [c["customer_id"] for c in listed] == [survivor]
        found = await answered(customer, "/customers/by-reference/shop-cn/U-1029")
        assert found["customer_id"] == survivor
        bought = (await sales.get(f"/customers/{survivor}/purchases")).json()["items"]
        assert sorted(p["order_id"] for p in bought) == ["SO-1", "SO-2"]
        deals = (await sales.get(f"/customers/{survivor}/opportunities")).json()["items"]
        assert [d["opportunity_id"] for d in deals] == [deal.json()["opportunity_id"]]
        timeline = (await interaction.get(f"/customers/{survivor}/timeline")).json()
        assert len(timeline["items"]) == 3
        tickets = (await interaction.get("/tickets", params={"customer_id": survivor})).json()
        assert len(tickets["items"]) == 1
        contact_plan = await answered(interaction, f"/customers/{survivor}/contact-plan")
        assert contact_plan["customer_id"] == absorbed

        combined = await answered(analytics, f"/profiles/{survivor}")
        assert combined["purchase_count"] == 2 and combined["total_spend"] == "1387.50"
        assert combined["complaints_open"] == 1 and combined["csat_count"] == 1
        everything = await answered(analytics, f"/customers/{survivor}/360")
        assert len(everything["recent_purchases"]) == 2
        assert len(everything["last_interactions"]) == 1
        assert {c["name"] for c in everything["contact_persons"]} == {"张伟", "刘洋"}

        # Analytics concludes on the combined profile: a repeat buyer, the absorbed
        # customer in no segment; /profiles lists the survivor combined, not the absorbed
        async def concluded_combined() -> bool:
            assert "repeat_buyers" in await memberships(infra.database_url, survivor)
            assert not await memberships(infra.database_url, absorbed)
            segments = await answered(analytics, f"/customers/{survivor}/segments")
            assert "repeat_buyers" in {s["segment"] for s in segments["segments"]}, segments
            listed = (await analytics.get("/profiles", params={"limit": 100})).json()["items"]
            counts = {p["customer_id"]: p["purchase_count"] for p in listed}
            assert counts.get(survivor) == 2 and absorbed not in counts, counts
            return True

        await eventually(concluded_combined, describe="the group concluded on its combined profile")

        # A merged customer is not changed on its own ------------------------------------
        tagged = await customer.post(f"/customers/{absorbed}/tags", json={"tag": "x"})
        assert tagged.status_code == 409 and survivor in tagged.text

        # Undo: every service as before ------------------------------------------------
        undone = await customer.post(f"/customer-merges/{merge_id}/undo")
        assert undone.status_code == 200, undone.text
        assert undone.json()["undone"] is True
        again = await customer.post(f"/customer-merges/{merge_id}/undo")
        assert again.status_code == 409, again.text
        for client, path in (
            (customer, f"/customers/{absorbed}"),
            (sales, f"/customers/{absorbed}/purchases"),
            (interaction, f"/customers/{absorbed}/timeline"),
            (analytics, f"/profiles/{absorbed}"),
        ):
            await answered(client, path)

        async def as_before() -> bool:
            after = await projection_tables(infra.database_url)
            changed = {
                table: (
                    sorted(set(rows) - set(after.get(table, []))),
                    sorted(set(after.get(table, [])) - set(rows)),
                )
                for table, rows in before.items()
                if after.get(table) != rows and table != HISTORY
            }
            assert not changed, changed
            assert set(after) == set(before)
            for customer_id in (survivor, absorbed):
                assert await memberships(infra.database_url, customer_id) == own[customer_id]
            await history_as_before(infra.database_url, before_history, compared_at)
            return True

        await eventually(as_before, describe="every projection table as before the merge")

        async def audited() -> bool:
            page = (await customer.get("/audit", params={"customer_id": survivor})).json()
            entries = {(e["method"], e["route"], e["status"]) for e in page["items"]}
            refused = (await customer.get("/audit", params={"actor": "li.na"})).json()
            assert ("/customer-merges", 403) in {
                (e["route"], e["status"]) for e in refused["items"]
            }
            assert {
                ("POST", "/customer-merges", 201),
                ("POST", "/customer-merges/{merge_id}/undo", 200),
            } <= entries, entries
            return True

        await eventually(audited, describe="the merge and its undoing in the audit log")

        # Inbound facts naming a merged customer land on the survivor, and stay ----------
        merged = await customer.post("/customer-merges", json=merge_body)
        assert merged.status_code == 201, merged.text
        # each service lands a fact on the survivor once it has read the merge
        await redirected(sales, f"/customers/{absorbed}/purchases", survivor)
        await redirected(interaction, f"/customers/{absorbed}/timeline", survivor)
        await publish_json(
            infra.bootstrap_servers,
            Topic.PURCHASES_INBOUND,
            [
                ("U-1029", purchase("SO-3", "59.90", customer_reference=_shop("U-1029"))),
                (absorbed, purchase("SO-4", "19.90", customer_id=absorbed)),
            ],
        )

        call_log = {
            **payload_example(CallLog),
            "call_id": "C-1",
            "customer_reference": _shop("U-1029"),
            "customer_hint": None,
            "source": "shop-cn",
        }
        await publish_json(infra.bootstrap_servers, Topic.CALL_LOGS_INBOUND, [("U-1029", call_log)])

        async def landed_on_survivor() -> bool:
            rows = (await sales.get("/purchases")).json()["items"]
            owners = {p["order_id"]: p["customer_id"] for p in rows}
            assert owners.get("SO-3") == survivor and owners.get("SO-4") == survivor, owners
            calls = await interaction.get("/interactions", params={"customer_id": survivor})
            assert "咨询发票开具" in calls.text, calls.text
            return True

        await eventually(landed_on_survivor, describe="inbound purchases on the survivor")
        undone = await customer.post(f"/customer-merges/{merged.json()['merge_id']}/undo")
        assert undone.status_code == 200, undone.text
        mine = await answered(sales, f"/customers/{absorbed}/purchases")
        assert [p["order_id"] for p in mine["items"]] == ["SO-1"]
        theirs = (await sales.get(f"/customers/{survivor}/purchases")).json()["items"]
        assert sorted(p["order_id"] for p in theirs) == ["SO-2", "SO-3", "SO-4"]
        kept = (await interaction.get("/interactions", params={"customer_id": survivor})).json()
        assert [i["subject"] for i in kept["items"]] == ["咨询发票开具"]  # recorded on it

        samples = await scrape(customer)
        assert total(samples, "crm_customer_merges_total", rule="survivor") == 2
        assert total(samples, "crm_customer_merges_absorbed_total") == 2
        assert total(samples, "crm_customer_unmerges_total") == 2


def _shop(source_customer_id: str) -> dict[str, str]:
    return {"source": "shop-cn", "source_customer_id": source_customer_id}
