"""Every route of every service, for every role: allowed, 403 or (without a token) 401.

Services are discovered from `services/*/service.py` (each with a `DEFINITION`), routes
from each app's OpenAPI document, and the expectation from the permission each route
declares (`requires(...)`) and `ROLE_PERMISSIONS`. A route that declares no permission
fails the test (and is refused to everyone at run time). The apps are built in-process
without their runtime: a request that passes authorization then fails for want of a
database, which is fine here: only 401 and 403 are about who may call.
"""

from __future__ import annotations

import importlib
import uuid
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

import services
from services.runtime.http.security import (
    PUBLIC_PATHS,
    ROLE_PERMISSIONS,
    ROLES,
    Requirement,
    api_routes,
    requires,
)
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings
from tests.support.auth import TEST_MASTER_KEY, TEST_SECRET, bearer

SERVICES_DIR = Path(services.__file__).parent


def service_definitions() -> dict[str, ServiceDefinition]:
    found = {}
    for path in sorted(SERVICES_DIR.glob("*/service.py")):
        module = importlib.import_module(f"services.{path.parent.name}.service")
        definition = getattr(module, "DEFINITION", None)
        if isinstance(definition, ServiceDefinition):
            found[definition.name] = definition
    return found


DEFINITIONS = service_definitions()
SETTINGS = ServiceSettings(
    auth_secret=TEST_SECRET, keyring_master_key=TEST_MASTER_KEY, rate_limit_per_minute=0
)


def app_of(definition: ServiceDefinition) -> FastAPI:
    return build_app(definition, SETTINGS)


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every route in the OpenAPI document."""
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def concrete(path: str, operation: dict[str, Any]) -> str:
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter.get("schema", {})
            value = str(uuid.uuid4()) if schema.get("format") == "uuid" else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


def requirement_of(app: FastAPI, method: str, path: str) -> Requirement | None:
    for route in api_routes(app):
        if (route.method, route.path) == (method, path):
            return route.requirement
    raise AssertionError(f"{method} {path} is in the OpenAPI document but not a route")


def call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    body: dict[str, Any] | None = None if method in ("GET", "HEAD", "DELETE") else {}
    return client.request(method, path, json=body, headers=headers)


def test_services_are_discovered() -> None:
    assert {"customer", "sales", "interaction"} <= set(DEFINITIONS)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_every_route_declares_a_permission(name: str) -> None:
    app = app_of(DEFINITIONS[name])
    undeclared = [
        f"{method} {path}"
        for method, path, _ in operations(app)
        if path not in PUBLIC_PATHS and requirement_of(app, method, path) is None
    ]
    assert not undeclared, (
        f"routes of the {name} service without a permission (add "
        f"dependencies=[requires(...)]): {undeclared}"
    )


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_every_route_answers_each_role_by_the_matrix(name: str) -> None:
    app = app_of(DEFINITIONS[name])
    client = TestClient(app, raise_server_exceptions=False)
    tokens = {role: bearer(role, f"someone-{role}") for role in ROLES}
    checked = 0
    for method, template, operation in operations(app):
        path = concrete(template, operation)
        if template in PUBLIC_PATHS:
            assert call(client, method, path, {}).status_code not in (401, 403), template
            continue
        requirement = requirement_of(app, method, template)
        assert requirement is not None, f"{method} {template} declares no permission"
        assert operation["x-required-permission"] == requirement.permission
        assert f"`{requirement.permission}`" in operation["description"]
        anonymous = call(client, method, path, {})
        assert anonymous.status_code == 401, f"{method} {template} without a token"
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        for role, headers in tokens.items():
            response = call(client, method, path, headers)
            if requirement.permission in ROLE_PERMISSIONS[role]:
                assert response.status_code not in (401, 403), (
                    f"{role} may {requirement.permission}, yet {method} {template} answered "
                    f"{response.status_code} {response.text}"
                )
            else:
                assert response.status_code == 403, (
                    f"{role} lacks {requirement.permission}, yet {method} {template} "
                    f"answered {response.status_code}"
                )
                assert requirement.permission in response.json()["error"]
        stranger = call(client, method, path, bearer("visitor"))
        assert stranger.status_code == 403, f"{method} {template} for an unknown role"
        checked += 1
    assert checked > 0


# The matrix itself, pinned where the issue states it -----------------------------------

EXPECTED = {
    # (service, method, path): roles allowed
    ("customer", "GET", "/customers/{customer_id}"): {
        "support_agent",
        "sales_rep",
        "manager",
        "administrator",
        "integration",
    },
    ("customer", "POST", "/customers"): {"administrator", "integration"},
    ("interaction", "POST", "/tickets/{ticket_id}/resolution"): {
        "support_agent",
        "sales_rep",
        "administrator",
        "integration",
    },
    ("interaction", "POST", "/interactions"): {
        "support_agent",
        "sales_rep",
        "administrator",
        "integration",
    },
    ("interaction", "GET", "/customers/{customer_id}/timeline"): {
        "support_agent",
        "sales_rep",
        "manager",
        "administrator",
    },
    ("sales", "GET", "/opportunities"): {"sales_rep", "manager", "administrator"},
    ("sales", "POST", "/opportunities/{opportunity_id}/stage"): {
        "sales_rep",
        "manager",
        "administrator",
    },
    ("customer", "GET", "/audit"): {"administrator"},
    ("sales", "GET", "/audit"): {"administrator"},
}


@pytest.mark.parametrize(("service", "method", "path"), sorted(EXPECTED))
def test_the_matrix_gives_each_role_what_the_issue_says(
    service: str, method: str, path: str
) -> None:
    requirement = requirement_of(app_of(DEFINITIONS[service]), method, path)
    assert requirement is not None
    allowed = {r for r in ROLES if requirement.permission in ROLE_PERMISSIONS[r]}
    assert allowed == EXPECTED[(service, method, path)]


def test_a_route_without_a_permission_is_refused_to_everyone() -> None:
    router = APIRouter()

    @router.get("/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    @router.get("/declared", dependencies=[requires("customers:read")])
    async def declared() -> dict[str, str]:
        return {"ok": "yes"}

    definition = DEFINITIONS["customer"]
    app = app_of(
        ServiceDefinition(
            name="probe",
            title="probe",
            description="",
            topic=definition.topic,
            application_class=definition.application_class,
            translate=definition.translate,
            projections=list,
            routers=[router],
        )
    )
    client = TestClient(app)
    refused = client.get("/forgotten", headers=bearer("administrator"))
    assert refused.status_code == 403
    assert "declares no permission" in refused.json()["error"]
    assert client.get("/declared", headers=bearer("administrator")).json() == {"ok": "yes"}
    assert requirement_of(app, "GET", "/forgotten") is None
