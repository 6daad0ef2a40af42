"""Security on the running services: the audit log of commands and personal-data reads,
its append-only table and `GET /audit`, and sales reps working only their own
opportunities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from local.launcher import ServiceProcess
from tests.support.customers import register_customer, when_customer_known
from tests.support.http import csv_rows, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually


async def audit_entries(
    admin: httpx.AsyncClient,
    count: int,
    timeout: float = 30.0,
    including: frozenset[tuple[str, str, int]] = frozenset(),
    **params: Any,
) -> list[dict[str, Any]]:
    """The audit entries matching `params` once there are `count` of them and they
    include `including` (method, route, status) (written in batches, a moment after the
    request)."""

    async def entries() -> list[dict[str, Any]]:
        response = await admin.get("/audit", params={"limit": 500, **params})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        assert len(items) >= count, f"{len(items)} entries: {items}"
        found = {(e["method"], e["route"], e["status"]) for e in items}
        assert including <= found, f"{sorted(including - found)} not yet among {items}"
        return items

    return await eventually(entries, timeout=timeout, describe=f"{count} audit entries {params}")


async def test_commands_and_personal_data_reads_are_audited(
    customer_service: ServiceProcess, infra: Infrastructure
) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    async with (
        customer_service.client("integration", "erp-sync", timeout=10) as erp,
        customer_service.client("support_agent", "zhou.min", timeout=10) as agent,
        customer_service.client("administrator", "auditor", timeout=10) as admin,
    ):
        registered = await erp.post(
            "/customers",
            json={"name": "审计客户", "kind": "consumer"},
            headers={"X-Correlation-ID": "audit-4711", "User-Agent": "erp-sync/2.1"},
        )
        assert registered.status_code == 201
        customer_id = registered.json()["customer_id"]
        await wait_for(agent, f"/customers/{customer_id}", lambda customer: True)
        assert (await agent.get("/customers", params={"name": "审计"})).status_code == 200
        refused = await agent.post(f"/customers/{customer_id}/tags", json={"tag": "vip"})
        assert refused.status_code == 403
        assert (await agent.get("/health/live")).status_code == 200

        mine = await audit_entries(admin, 1, actor="erp-sync")
        assert len(mine) == 1
        command = mine[0]
        assert command["method"] == "POST" and command["route"] == "/customers"
        assert command["customer_id"] == customer_id  # from the Location of the answer
        assert command["roles"] == ["integration"]
        assert command["status"] == 201
        assert command["correlation_id"] == "audit-4711"
        assert command["user_agent"] == "erp-sync/2.1"
        assert command["client"] == "127.0.0.1"
        assert datetime.fromisoformat(command["at"]) >= started

        # (waiting for the customer may have read it as 404 first: those are audited too)
        wanted = frozenset(
            {
                ("GET", "/customers/{customer_id}", 200),
                ("GET", "/customers", 200),
                ("POST", "/customers/{customer_id}/tags", 403),
            }
        )
        reads = await audit_entries(admin, 3, including=wanted, actor="zhou.min")
        read = next(e for e in reads if e["route"] == "/customers/{customer_id}")
        assert read["path_params"] == {"customer_id": customer_id}

        about = await audit_entries(admin, 3, customer_id=customer_id)
        assert {e["actor"] for e in about} == {"erp-sync", "zhou.min"}

        first = (await admin.get("/audit", params={"limit": 1})).json()
        second = (
            await admin.get("/audit", params={"limit": 1, "cursor": first["next_cursor"]})
        ).json()
        assert first["items"][0]["entry_id"] != second["items"][0]["entry_id"]
        assert first["items"][0]["at"] >= second["items"][0]["at"]
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        assert (await admin.get("/audit", params={"since": later})).json()["items"] == []

        export = await admin.get("/audit/export.csv", params={"actor": "zhou.min"})
        assert export.headers["content-type"].startswith("text/csv")
        rows = csv_rows(export)
        assert {r["actor"] for r in rows} == {"zhou.min"} and len(rows) == len(reads)

        assert (await agent.get("/audit")).status_code == 403

    connection = await asyncpg.connect(infra.database_url)
    try:
        for statement in (
            "UPDATE customer.audit_log SET actor = 'nobody'",
            "DELETE FROM customer.audit_log",
            "TRUNCATE customer.audit_log",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await connection.execute(statement)
        assert await connection.fetchval("SELECT count(*) FROM customer.audit_log") >= 4
    finally:
        await connection.close()


def opportunity(customer_id: object, owner: str) -> dict[str, Any]:
    return {
        "customer_id": str(customer_id),
        "description": "年度许可续约",
        "products": [{"product": "企业版年度许可", "quantity": 10, "unit_price": "1200.00"}],
        "currency": "CNY",
        "expected_close_date": str(datetime.now(UTC).date() + timedelta(days=30)),
        "owner": owner,
    }


async def test_sales_reps_work_only_their_own_opportunities(
    sales_service: ServiceProcess, infra: Infrastructure
) -> None:
    customer_id = await register_customer(infra.bootstrap_servers, "华信贸易")
    async with (
        sales_service.client("sales_rep", "li.na", timeout=10) as li_na,
        sales_service.client("sales_rep", "wang.fang", timeout=10) as wang_fang,
        sales_service.client("manager", "chen.jie", timeout=10) as manager,
        sales_service.client("support_agent", "zhou.min", timeout=10) as agent,
    ):
        opened = await when_customer_known(
            li_na, "/opportunities", opportunity(customer_id, "li.na")
        )
        assert opened.status_code == 201, opened.text
        path = f"/opportunities/{opened.json()['opportunity_id']}"

        for_someone_else = await li_na.post(
            "/opportunities", json=opportunity(customer_id, "wang.fang")
        )
        assert for_someone_else.status_code == 403
        assert "opportunities:write-any" in for_someone_else.json()["error"]

        taken = await wang_fang.post(f"{path}/stage", json={"stage": "qualified"})
        assert taken.status_code == 403
        assert "belongs to 'li.na'" in taken.json()["error"]

        assert (await li_na.post(f"{path}/stage", json={"stage": "qualified"})).status_code == 200
        assert (await manager.post(f"{path}/stage", json={"stage": "proposal"})).status_code == 200
        handed_over = await manager.patch(path, json={"owner": "wang.fang"})
        assert handed_over.status_code == 200
        # the new owner may now work it, the old one no longer
        assert (
            await wang_fang.post(f"{path}/stage", json={"stage": "negotiation"})
        ).status_code == 200
        assert (await li_na.patch(path, json={"probability": 0.5})).status_code == 403

        assert (await agent.get("/opportunities")).status_code == 403
        assert (await wang_fang.get("/opportunities")).status_code == 200
