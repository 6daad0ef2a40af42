"""Which requests the audit log records, and what it takes from them (no database)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from services.customer.service import DEFINITION as CUSTOMER
from services.interaction.service import DEFINITION as INTERACTION
from services.runtime.http.audit import COLUMNS
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings
from tests.support.auth import app_keys, bearer
from tests.support.http import in_process_client


async def recorded(
    definition: ServiceDefinition, requests: list[tuple[str, str, Any]]
) -> list[dict[str, Any]]:
    settings = ServiceSettings(**app_keys())
    app = build_app(definition, settings)
    audit = app.state.runtime.audit
    audit.accepting = True
    async with in_process_client(app, raise_app_exceptions=False) as client:
        for method, path, body in requests:
            await client.request(
                method,
                path,
                json=body,
                headers={**bearer("support_agent", "zhou.min"), "X-Correlation-ID": "c-1"},
            )
    return [dict(zip(COLUMNS, entry, strict=True)) for entry in audit.queued()]


async def test_commands_and_personal_reads_are_recorded_other_reads_not() -> None:
    customer = str(uuid.uuid4())
    entries = await recorded(
        CUSTOMER,
        [
            ("GET", f"/customers/{customer}", None),  # personal data
            ("GET", "/customers?name=x", None),  # the directory: personal data
            ("POST", f"/customers/{customer}/tags", {"tag": "vip"}),  # refused: still a command
            ("GET", "/health/live", None),  # public
            ("GET", "/audit", None),  # not personal data
        ],
    )
    assert [(e["method"], e["route"], e["status"]) for e in entries] == [
        ("GET", "/customers/{customer_id}", 500),  # no database here
        ("GET", "/customers", 500),
        ("POST", "/customers/{customer_id}/tags", 403),
    ]
    first = entries[0]
    assert first["actor"] == "zhou.min" and first["roles"] == ["support_agent"]
    assert first["customer_id"] == uuid.UUID(customer)
    assert json.loads(first["path_params"]) == {"customer_id": customer}
    assert first["correlation_id"] == "c-1"
    assert first["client"] == "testclient"


async def test_the_customer_is_found_in_the_query_or_the_command_body() -> None:
    customer = uuid.uuid4()
    entries = await recorded(
        INTERACTION,
        [
            ("GET", f"/interactions?customer_id={customer}", None),
            ("POST", "/tickets", {"customer_id": str(customer), "subject": "x"}),
            ("GET", "/tickets/summary", None),  # not personal data
        ],
    )
    assert [(e["route"], e["customer_id"]) for e in entries] == [
        ("/interactions", customer),
        ("/tickets", customer),
    ]
