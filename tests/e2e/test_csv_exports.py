"""Every CSV download of every service opens safely in a spreadsheet: it starts with a
UTF-8 byte order mark, has its header line also when empty, and no cell that a
spreadsheet would evaluate as a formula (OWASP's rule), whoever typed the text: a
customer's name, tags, an owner, a subject, an agent's User-Agent or correlation id.

The routes are found in the services' OpenAPI documents (a path ending in `.csv` or a
`format` parameter offering `csv`), so a new export is checked without being listed."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from local.launcher import ServiceProcess
from services.runtime.http.csvexport import BYTE_ORDER_MARK
from tests.support.customers import when_customer_known
from tests.support.routes import DEFINITIONS, app_of, operations
from tests.support.waiting import eventually

FORMULA = '=HYPERLINK("http://x","y")'
HOSTILE = {
    "name": FORMULA,
    "kind": "business",
    "region": "+华东",
    "owner": "@owner",
    "tags": ["=tag", "+tag", "-tag", "@tag"],
    "contacts": [{"name": "=张伟", "title": "-采购经理"}],
}
AGENT = {"User-Agent": "=cmd|' /C calc'!A0", "X-Correlation-ID": "@SUM(1+1)"}


def csv_routes(service: str) -> list[tuple[str, dict[str, Any]]]:
    """(path template, operation) of every CSV download of `service`."""
    found = []
    for method, path, operation in operations(app_of(DEFINITIONS[service])):
        parameters = operation.get("parameters", [])
        offers_csv = any(
            p["name"] == "format" and "csv" in p.get("schema", {}).get("enum", [])
            for p in parameters
        )
        if method == "GET" and (path.endswith(".csv") or offers_csv):
            found.append((path, operation))
    return found


def request_of(
    path: str, operation: dict[str, Any], ids: dict[str, str]
) -> tuple[str, dict[str, str]]:
    """The route with its path and required parameters filled in: the seeded ids by name,
    an enumeration's first value, today for a date."""
    query = {"format": "csv"} if not path.endswith(".csv") else {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] not in ("path", "query") or not (
            parameter["in"] == "path" or parameter.get("required")
        ):
            continue
        schema = parameter.get("schema", {})
        name = parameter["name"]
        if name in ids:
            value = ids[name]
        elif schema.get("enum"):
            value = str(schema["enum"][0])
        elif schema.get("format") == "date":
            value = str(date.today() - timedelta(days=30 if name in ("from", "since") else 0))
        elif schema.get("format") == "date-time" or "anyOf" in schema:
            moment = datetime.now(UTC) - timedelta(days=30 if name in ("from", "since") else 0)
            value = moment.isoformat()
        elif schema.get("format") == "uuid":
            value = str(uuid.uuid4())
        else:
            value = "champions"
        if parameter["in"] == "path":
            path = path.replace("{" + name + "}", value)
        else:
            query[name] = value
    return path, query


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(BYTE_ORDER_MARK))))


def evaluated(cell: str) -> bool:
    """Would a spreadsheet read this cell as a formula? (A number may be negative.)"""
    if cell[:1] == "-":
        try:
            float(cell)
        except ValueError:
            return True
        return False
    return cell[:1] in ("=", "+", "@", "\t", "\r")


async def downloads(
    services: dict[str, ServiceProcess], ids: dict[str, str]
) -> dict[str, httpx.Response]:
    answers = {}
    for name, service in services.items():
        async with service.client(headers=AGENT, timeout=30) as client:
            for template, operation in csv_routes(name):
                path, query = request_of(template, operation, ids)
                answers[f"{name} GET {template}"] = await client.get(path, params=query)
    return answers


def check_download(route: str, response: httpx.Response) -> list[list[str]]:
    assert response.status_code in (200, 404), f"{route}: {response.status_code} {response.text}"
    if response.status_code == 404:
        assert response.headers["content-type"].startswith("application/json"), route
        return []
    assert response.headers["content-type"].startswith("text/csv"), route
    assert response.text.startswith(BYTE_ORDER_MARK), f"{route} has no byte order mark"
    rows = cells(response.text)
    assert rows and rows[0] and all(rows[0]), f"{route} has no header line: {response.text!r}"
    bad = [cell for row in rows for cell in row if evaluated(cell)]
    assert not bad, f"{route} has cells a spreadsheet evaluates: {bad}"
    return rows


async def test_every_csv_download_opens_safely_in_a_spreadsheet(
    all_services: dict[str, ServiceProcess],
) -> None:
    services = all_services
    assert {name for name in DEFINITIONS} == set(services)
    routes = [f"{name} {template}" for name in services for template, _ in csv_routes(name)]
    assert len(routes) >= 25, routes

    # Empty: each download is a header line (or, for an unknown id, a 404); the audit
    # logs already hold the downloads before them, analytics lists its built-in rows.
    for route, response in (await downloads(services, {})).items():
        rows = check_download(route, response)
        filled = "/audit/" in route or route.startswith("analytics")
        assert len(rows) <= 1 or filled, f"{route}: {rows}"

    # Hostile text typed by people and clients, in every service.
    async with services["customer"].client(headers=AGENT) as customers:
        registered = await customers.post("/customers", json=HOSTILE)
        assert registered.status_code == 201, registered.text
    customer_id = registered.json()["customer_id"]
    async with services["sales"].client(headers=AGENT) as sales:
        opened = await when_customer_known(
            sales,
            "/opportunities",
            {
                "customer_id": customer_id,
                "description": "=1+1",
                "products": [{"product": "@SUM(A1)", "quantity": 1, "unit_price": "10.00"}],
                "currency": "CNY",
                "expected_close_date": str(date.today()),
                "region": "-华东",
                "owner": "+owner",
            },
        )
        assert opened.status_code == 201, opened.text
    async with services["interaction"].client(headers=AGENT) as interaction:
        ticket = await when_customer_known(
            interaction,
            "/tickets",
            {
                "customer_id": customer_id,
                "kind": "complaint",
                "channel": "phone",
                "category": "delivery",
                "severity": "high",
                "subject": "=cmd|' /C calc'!A0",
            },
        )
        assert ticket.status_code == 201, ticket.text

    answers = await eventually(
        lambda: seen_everywhere(services, {"customer_id": customer_id}),
        timeout=60,
        describe="the hostile customer in the customer, sales and interaction exports",
    )
    for route, response in answers.items():
        check_download(route, response)


async def seen_everywhere(
    services: dict[str, ServiceProcess], ids: dict[str, str]
) -> dict[str, httpx.Response]:
    """Every download, once the seeded texts have reached the exports that show them."""
    answers = await downloads(services, ids)
    shown = {
        "customer GET /customers/export.csv": "'" + FORMULA,
        "customer GET /audit/export.csv": "'" + AGENT["User-Agent"],
        "sales GET /opportunities/export.csv": "'=1+1",
        "interaction GET /tickets/export.csv": "'=cmd|' /C calc'!A0",
    }
    for route, text in shown.items():
        found = {cell for row in cells(answers[route].text) for cell in row}
        assert text in found, f"{route} does not show {text!r} yet"
    return answers
