"""Customer imports as an operator and another system meet them: `crm import customers`
on a messy spreadsheet (GB18030, full-width characters, phones in every format, duplicates
within the file and against the directory, bad rows), its dry run, a second import of the
same file, an import stopped with Ctrl-C and resumed, and the upload API."""

from __future__ import annotations

import csv
import json
import signal
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest

from contracts.references import CustomerReference, customer_id_for_reference
from local.launcher import ServiceProcess
from services.customer.normalisation import full_width
from tests.support.auth import bearer
from tests.support.crm import run_crm, start_crm
from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.waiting import eventually

MAPPING = """
default_region: CN
key: {source: erp, column: 客户编号}
name: 客户名称
kind: {column: 类型, values: {企业: business, 个人: consumer}, default: business}
region: 地区
tags: [{column: 标签, separators: ";"}]
importance_tier: {column: 重要性, values: {重要: important, 普通: ordinary}}
contacts:
  - {name: 联系人, title: 职务, phones: [手机, 电话], emails: [邮箱]}
addresses:
  - {label: office, line1: 地址, city: 城市, country: {value: CN}}
references:
  - {source: shop-cn, column: 网店ID}
"""
HEADER = [
    *("客户编号", "客户名称", "类型", "地区", "标签", "重要性", "联系人", "职务"),
    *("手机", "电话", "邮箱", "地址", "城市", "网店ID"),
]
MESSY_ROWS: list[list[str]] = [
    [
        *("C-001", "上海华信贸易有限公司", "企业", "华东", "key-account;展会", "重要"),
        *("张伟", "采购经理", "138 0013 8000", "(021) 6888 8888", " Zhang.Wei@HuaXin.Example "),
        *(f"浦东新区世纪大道{full_width('100')}号", "上海", "U-1"),
    ],
    [
        *("C-002", full_width("ABC  Trading"), "企业", "华南", "", "普通", "李娜", ""),
        *("+86-139-1234-5678", "", "li.na@abc.example", "", "", ""),
    ],
    # the same customer again: one more tag; the phone and e-mail it already has
    [
        *("C-001", "上海华信贸易有限公司", "", "", "vip", "", "张伟", ""),
        *("0086 138 0013 8000", "", "ZHANG.WEI@huaxin.example", "", "", ""),
    ],
    # a customer the directory has: a tag and a contact person more
    ["C-900", "", "", "", "imported", "", "王芳", "", "13911112222", "", "", "", "", ""],
    ["C-003", "坏电话公司", "企业", "", "", "", "王五", "", "12345", "", "", "", "", ""],
    ["C-004", "坏邮箱", "个人", "", "", "", "赵六", "", "", "", "not-an-email", "", "", ""],
    ["C-005", "控制\x07字符", "企业", "", "", "", "", "", "", "", "", "", "", ""],
    ["C-006", "", "企业", "华北", "", "", "", "", "", "", "", "", "", ""],
    ["C-007", "未知类型", "合伙", "", "", "", "", "", "", "", "", "", "", ""],
    ["C-009", "少了几列"],
    [
        *("C-008", "个人客户", "个人", "", "", "", "", "", full_width("137 1234 5678")),
        *("", "", "", "", ""),
    ],
]
EXPECTED_REPORT = [
    (1, "created", "erp/C-001", ["customer.registered"], None),
    (2, "created", "erp/C-002", ["customer.registered"], None),
    (3, "updated", "erp/C-001", ["customer.tagged"], None),
    (4, "updated", "erp/C-900", ["customer.tagged", "customer.contact_added"], None),
    (5, "rejected", "erp/C-003", [], "bad phone"),
    (6, "rejected", "erp/C-004", [], "bad email"),
    (7, "rejected", "erp/C-005", [], "control character"),
    (8, "rejected", "erp/C-006", [], "missing field"),
    (9, "rejected", "erp/C-007", [], "unknown value"),
    (10, "rejected", None, [], "malformed row"),
    (11, "created", "erp/C-008", ["customer.registered"], None),
]
"""Row by row: what the dry run says, and what the import then does."""


def erp(customer: str, source: str = "erp") -> str:
    """The id of the customer `source` names `customer`."""
    reference = CustomerReference(source=source, source_customer_id=customer)
    return str(customer_id_for_reference(reference))


def write_csv(path: Path, rows: list[list[str]], encoding: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as file:
        csv.writer(file).writerows([HEADER, *rows])
    return path


def report_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def brief(report: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(r["row"], r["outcome"], r["key"], r["changes"], r["reason"]) for r in report]


async def stored_events(infra: Infrastructure) -> int:
    connection = await asyncpg.connect(infra.database_url)
    try:
        return int(await connection.fetchval("SELECT count(*) FROM customer.customers_events"))
    finally:
        await connection.close()


async def import_state(infra: Infrastructure, import_id: str) -> asyncpg.Record | None:
    connection = await asyncpg.connect(infra.database_url)
    try:
        return await connection.fetchrow(
            "SELECT state, committed_row FROM customer.customer_imports WHERE import_id = $1",
            import_id,
        )
    finally:
        await connection.close()


@pytest.fixture
async def client(customer_service: ServiceProcess) -> Any:
    async with customer_service.client(timeout=30) as http:
        yield http


@pytest.mark.parametrize("workers", [1, 3], ids=["one process", "three workers"])
async def test_a_messy_gb18030_file_is_reported_then_imported_then_changes_nothing(
    client: httpx.AsyncClient, infra: Infrastructure, tmp_path: Path, workers: int
) -> None:
    existing = await client.post(
        "/customers",
        json={"name": "北京老客户有限公司", "kind": "business", "tags": ["old"]},
    )
    assert existing.status_code == 201, existing.text
    existing_id = existing.json()["customer_id"]
    added = await client.post(
        f"/customers/{existing_id}/references",
        json={"source": "erp", "source_customer_id": "C-900"},
    )
    assert added.status_code == 200, added.text
    await wait_for(client, f"/customers/{existing_id}", lambda c: len(c["references"]) == 1)
    messy = write_csv(tmp_path / "客户.csv", MESSY_ROWS, "gb18030")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING, "utf-8")
    command = (
        *("import", "customers", str(messy), "--mapping", str(mapping)),
        *("--workers", str(workers)),
    )

    before = await stored_events(infra)
    code, out, err = await run_crm(
        *command, "--dry-run", "--report", str(tmp_path / "dry.jsonl"), infra=infra
    )
    assert code == 0, out + err
    assert brief(report_of(tmp_path / "dry.jsonl")) == EXPECTED_REPORT
    dry = json.loads(out.splitlines()[-1])
    assert (dry["dry_run"], dry["created"], dry["updated"], dry["rejected"]) == (True, 3, 2, 6)
    assert await stored_events(infra) == before  # a dry run changes nothing
    # a dry run in batches of two rows: row 3 names the customer row 1 (another batch)
    # would create
    code, out, err = await run_crm(
        *command, "--dry-run", "--batch-size", "2", "--report", "-", infra=infra
    )
    assert code == 0, out + err
    [*lines, _] = out.splitlines()
    batched = [json.loads(line) for line in lines]
    assert [(r["row"], r["outcome"], r["customer_id"]) for r in batched][:3] == [
        (1, "created", erp("C-001")),
        (2, "created", erp("C-002")),
        (3, "updated", erp("C-001")),
    ]
    assert "row 1 creates" in batched[2]["detail"]
    assert [r["outcome"] for r in batched] == [r[1] for r in EXPECTED_REPORT]
    assert await stored_events(infra) == before

    code, out, err = await run_crm(*command, "--report", str(tmp_path / "first.jsonl"), infra=infra)
    assert code == 0, out + err
    first = report_of(tmp_path / "first.jsonl")
    assert brief(first) == EXPECTED_REPORT
    summary = json.loads(out.splitlines()[-1])
    assert summary["rejected_by_reason"] == {
        "bad email": 1,
        "bad phone": 1,
        "control character": 1,
        "malformed row": 1,
        "missing field": 1,
        "unknown value": 1,
    }
    details = {r["row"]: r["detail"] for r in first}
    assert "手机" in details[5] and "12345" in details[5]
    assert "客户名称" in details[7] and "U+0007" in details[7]
    assert "合伙" in details[9]
    ids = {r["key"]: r["customer_id"] for r in first if r["customer_id"]}
    assert ids["erp/C-001"] == erp("C-001")  # named by its key, as purchases will name it
    assert ids["erp/C-900"] == existing_id  # the directory's customer, not a new one

    huaxin = await wait_for(client, f"/customers/{erp('C-001')}", lambda c: "vip" in c["tags"])
    assert huaxin["name"] == "上海华信贸易有限公司"
    assert huaxin["kind"] == "business" and huaxin["region"] == "华东"
    assert huaxin["tags"] == ["key-account", "展会", "vip"]
    assert huaxin["classification"]["importance_tier"] == "important"
    [zhang] = huaxin["contacts"]
    assert (zhang["name"], zhang["title"]) == ("张伟", "采购经理")
    assert zhang["phones"] == ["+8613800138000", "+862168888888"]
    assert zhang["emails"] == ["zhang.wei@huaxin.example"]
    [office] = huaxin["addresses"]
    assert (office["line1"], office["city"], office["country"]) == (
        "浦东新区世纪大道100号",
        "上海",
        "CN",
    )
    assert {(r["source"], r["source_customer_id"]) for r in huaxin["references"]} == {
        ("erp", "C-001"),
        ("shop-cn", "U-1"),
    }
    abc = await wait_for(client, f"/customers/{erp('C-002')}", lambda c: True)
    assert abc["name"] == "ABC Trading"
    assert abc["contacts"][0]["phones"] == ["+8613912345678"]
    person = await wait_for(client, f"/customers/{erp('C-008')}", lambda c: True)
    assert person["kind"] == "consumer"
    assert person["contacts"][0]["name"] == "个人客户"
    assert person["contacts"][0]["phones"] == ["+8613712345678"]
    old = await wait_for(client, f"/customers/{existing_id}", lambda c: "imported" in c["tags"])
    assert old["name"] == "北京老客户有限公司"
    assert old["tags"] == ["old", "imported"]
    assert [(c["name"], c["phones"]) for c in old["contacts"]] == [("王芳", ["+8613911112222"])]
    for customer_id in (erp("C-007"), erp("C-003")):
        assert (await client.get(f"/customers/{customer_id}")).status_code == 404

    # every event of the import names it
    import_id = summary["import_id"]
    history = (await client.get(f"/customers/{erp('C-001')}/history")).json()
    assert [h["correlation_id"] for h in history] == [f"import:{import_id}"] * 2
    assert (await client.get(f"/customers/{existing_id}/history")).json()[-1][
        "correlation_id"
    ] == f"import:{import_id}"

    # the operator's imports are in the service's audit log (a dry run is not)
    audit = (await client.get("/audit", params={"limit": 200})).json()["items"]
    imports = [e for e in audit if e["route"] == "crm import customers"]
    assert [(e["method"], e["status"], e["path_params"]["import_id"]) for e in imports] == [
        ("CLI", 200, import_id)
    ]
    assert imports[0]["actor"].endswith("@crm-cli")

    # the same file again changes nothing
    after_first = await stored_events(infra)
    code, out, err = await run_crm(*command, "--report", str(tmp_path / "again.csv"), infra=infra)
    assert code == 0, out + err
    again = json.loads(out.splitlines()[-1])
    assert (again["import_id"], again["created"], again["updated"]) == (import_id, 0, 0)
    assert again["unchanged"] == 5 and again["rejected"] == 6
    with (tmp_path / "again.csv").open(encoding="utf-8") as file:
        outcomes = [(int(r["row"]), r["outcome"]) for r in csv.DictReader(file)]
    assert outcomes == [
        (row, "unchanged" if outcome != "rejected" else "rejected")
        for row, outcome, *_ in EXPECTED_REPORT
    ]
    assert await stored_events(infra) == after_first


async def test_an_import_stopped_with_ctrl_c_resumes_after_its_checkpoint(
    client: httpx.AsyncClient, infra: Infrastructure, tmp_path: Path
) -> None:
    count = 300
    rows = [
        [f"K-{i:04d}", f"客户 {i}", "个人", "", "", "", "", "", f"139{i:08d}", "", "", "", "", ""]
        for i in range(1, count + 1)
    ]
    path = write_csv(tmp_path / "customers.csv", rows, "utf-8-sig")  # with a byte order mark
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING, "utf-8")
    command = (
        *("import", "customers", str(path)),
        *("--mapping", str(mapping), "--import-id", "stop-and-go"),
    )

    # one row per transaction, so that Ctrl-C lands long before the end
    process = await start_crm(*command, "--batch-size", "1", infra=infra)

    async def started() -> int:
        state = await import_state(infra, "stop-and-go")
        assert state is not None and state["committed_row"] >= 5, state
        return int(state["committed_row"])

    await eventually(started, describe="the import's checkpoint past row 5")
    process.send_signal(signal.SIGINT)
    printed, complained = (b.decode() for b in await process.communicate())
    assert process.returncode == 130, printed + complained
    assert "run the same command again to resume" in complained
    stopped = json.loads(printed.splitlines()[-1])
    state = await import_state(infra, "stop-and-go")
    assert state is not None
    assert (state["state"], state["committed_row"]) == ("stopped", stopped["last_row"])
    assert 5 <= stopped["last_row"] < count
    assert stopped["created"] == stopped["last_row"]

    code, out, err = await run_crm(*command, "--report", str(tmp_path / "rest.jsonl"), infra=infra)
    assert code == 0, out + err
    resumed = json.loads(out.splitlines()[-1])
    assert resumed["resumed_after_row"] == stopped["last_row"]
    assert (resumed["created"], resumed["rows"], resumed["state"]) == (count, count, "completed")
    assert [r["row"] for r in report_of(tmp_path / "rest.jsonl")] == list(
        range(stopped["last_row"] + 1, count + 1)
    )
    assert await import_state(infra, "stop-and-go") == ("completed", count)
    assert await stored_events(infra) == count  # each customer registered once
    last = await wait_for(client, f"/customers/{erp(f'K-{count:04d}')}", lambda c: True)
    assert last["contacts"][0]["phones"] == [f"+86139{count:08d}"]


SHOP_MAPPING = {
    "key": {"source": "shop-cn", "column": "id"},
    "name": "name",
    "kind": {"value": "consumer"},
    "tags": [{"column": "tags"}],
    "contacts": [{"phones": ["phone"], "emails": ["contact.email"]}],
}
SHOP_LINES = [
    {"id": "U-7", "name": "刘洋", "tags": ["app", "vip"], "phone": "+86 138 0000 1111"},
    {"id": "U-8", "name": "陈静", "contact": {"email": "Chen.Jing@Example.COM"}},
    {"id": "U-9", "name": "坏号码", "phone": "000"},
]


async def test_another_system_uploads_json_lines_with_its_own_permission(
    client: httpx.AsyncClient, customer_service: ServiceProcess
) -> None:
    refused = await client.put(
        "/customer-imports/shop-feed",
        json={"mapping": SHOP_MAPPING},
        headers=bearer("sales_rep", "wang.fang"),
    )
    assert refused.status_code == 403, refused.text
    defined = await client.put("/customer-imports/shop-feed", json={"mapping": SHOP_MAPPING})
    assert defined.status_code == 200, defined.text
    assert (defined.json()["state"], defined.json()["committed_row"]) == ("new", 0)
    body = b"".join(orjson.dumps(line) + b"\n" for line in SHOP_LINES)

    async def upload(**params: str) -> list[dict[str, Any]]:
        response = await client.post(
            "/customer-imports/shop-feed/upload",
            content=body,
            params=params,
            headers={"Content-Type": "application/x-ndjson"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/x-ndjson")
        return [json.loads(line) for line in response.text.splitlines()]

    dry = await upload(dry_run="true")
    assert [(r["row"], r["outcome"], r["reason"]) for r in dry[:-1]] == [
        (1, "created", None),
        (2, "created", None),
        (3, "rejected", "bad phone"),
    ]
    assert (await client.get("/customer-imports/shop-feed")).json()["state"] == "new"
    imported = await upload(report="rejected")
    assert [(r["row"], r["reason"]) for r in imported[:-1]] == [(3, "bad phone")]
    summary = imported[-1]["summary"]
    assert (summary["created"], summary["rejected"], summary["state"]) == (2, 1, "completed")
    state = (await client.get("/customer-imports/shop-feed")).json()
    assert (state["state"], state["committed_row"], state["actor"]) == (
        "completed",
        3,
        "administrator",
    )
    chen = await wait_for(client, f"/customers/{erp('U-8', 'shop-cn')}", lambda c: True)
    assert chen["contacts"][0]["emails"] == ["chen.jing@example.com"]

    metrics = (await client.get("/metrics")).text
    assert 'crm_customer_import_rows_total{outcome="created",reason=""} 2.0' in metrics
    assert 'crm_customer_import_rows_total{outcome="rejected",reason="bad phone"} 1.0' in metrics

    async def audited() -> list[dict[str, Any]]:
        entries = (await client.get("/audit", params={"actor": "administrator"})).json()["items"]
        uploads = [e for e in entries if e["route"] == "/customer-imports/{import_id}/upload"]
        assert len(uploads) == 2, entries
        return uploads

    entries = await eventually(audited, describe="both uploads in the audit log")
    # a name, not an id: it may name a person, so the audit log withholds it
    assert {e["path_params"]["import_id"] for e in entries} == {"[withheld]"}

    # an upload is not bound by the body limit of other requests (256 KiB)
    many = b"".join(
        orjson.dumps({"id": f"M-{i}", "name": f"会员 {i}", "note": "x" * 200}) + b"\n"
        for i in range(2000)
    )
    assert len(many) > 262_144
    big = await client.post(
        "/customer-imports/shop-feed/upload",
        content=many,
        params={"dry_run": "true", "report": "none"},
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert big.status_code == 200, big.text
    [line] = big.text.splitlines()
    assert json.loads(line)["summary"]["created"] == 2000

    unknown = await client.post(
        "/customer-imports/nobody/upload",
        content=body,
        headers={"Content-Type": "application/x-ndjson"},
    )
    assert unknown.status_code == 404, unknown.text
    assert "PUT /customer-imports/nobody" in unknown.json()["error"]
