"""Bearer tokens, keys, limits and the actor of commands, on an app built in-process; and
the permission every route of every service declares, and the matrix of roles to
permissions (`services.runtime.http`: `security`, `authentication`, `authorization`,
`rate_limit`). That every route answers each role by the matrix, on a running service,
is `tests/integration/test_route_permissions.py`."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, Request

from services.customer.service import DEFINITION
from services.runtime.http.authentication import (
    SecurityConfigError,
    TokenVerifier,
    Unauthenticated,
    mint_token,
)
from services.runtime.http.authorization import PUBLIC_PATHS, requires
from services.runtime.http.rate_limit import RateLimiter
from services.runtime.http.roles import ROLE_PERMISSIONS, ROLES
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings
from services.runtime.storage.eventstore import current_context
from tests.support.auth import TEST_SECRET, app_keys, bearer, token
from tests.support.http import in_process_client
from tests.support.routes import DEFINITIONS, app_of, operations, requirement_of

router = APIRouter()


@router.post("/echo", dependencies=[requires("customers:write")])
async def echo(request: Request) -> dict[str, Any]:
    body = await request.body()
    return {"actor": current_context().actor, "bytes": len(body)}


def probe(*routers: APIRouter) -> ServiceDefinition:
    """A service of `routers` only (the customer service's event store, no projections)."""
    return ServiceDefinition(
        name="probe",
        title="probe",
        description="",
        topic=DEFINITION.topic,
        application_class=DEFINITION.application_class,
        translate=DEFINITION.translate,
        projections=list,
        routers=list(routers),
    )


def probe_app(**settings: Any) -> httpx.AsyncClient:
    options = {**app_keys(), **settings}
    return in_process_client(build_app(probe(router), ServiceSettings(**options)))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with probe_app() as probe:
        yield probe


async def test_the_subject_of_the_token_is_the_actor_and_x_actor_is_ignored(
    client: httpx.AsyncClient,
) -> None:
    headers = {**bearer("integration", "erp-sync"), "X-Actor": "somebody-else"}
    response = await client.post("/echo", json={}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["actor"] == "erp-sync"


@pytest.mark.parametrize(
    ("headers", "says"),
    [
        ({}, "needs a bearer token"),
        ({"Authorization": "Basic dXNlcjpwdw=="}, "must be `Bearer <token>`"),
        ({"Authorization": "Bearer not-a-jwt"}, "not a JWT"),
        (
            {"Authorization": f"Bearer {token(lifetime=timedelta(minutes=-5))}"},
            "has expired",
        ),
        (
            {
                "Authorization": "Bearer "
                + mint_token(TEST_SECRET, "x", ["administrator"], issuer="other")
            },
            "not issued by 'crm'",
        ),
        (
            {
                "Authorization": "Bearer "
                + mint_token(TEST_SECRET, "x", ["administrator"], audience="other")
            },
            "not for audience 'crm'",
        ),
        (
            {
                "Authorization": "Bearer "
                + mint_token("another-secret-" * 3, "x", ["administrator"])
            },
            "signature does not verify",
        ),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode({"sub": "x", "iss": "crm", "aud": "crm"}, TEST_SECRET, "HS256")
            },
            "lacks the 'exp' claim",
        ),
        (
            {
                "Authorization": "Bearer "
                + jwt.encode({"sub": "x", "iss": "crm", "aud": "crm", "exp": 9e9}, "", "none")
            },
            "must be signed with HS256",
        ),
    ],
)
async def test_a_missing_or_bad_token_answers_401_saying_what_is_wrong(
    client: httpx.AsyncClient, headers: dict[str, str], says: str
) -> None:
    response = await client.post("/echo", json={}, headers=headers)
    assert response.status_code == 401
    assert says in response.json()["error"], response.json()
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="crm"')


async def test_public_paths_need_no_token(client: httpx.AsyncClient) -> None:
    for path in ("/health/live", "/metrics", "/asyncapi.json", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path


async def test_a_token_without_the_permission_answers_403_naming_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/echo", json={}, headers=bearer("support_agent"))
    assert response.status_code == 403
    assert "customers:write" in response.json()["error"]


async def test_a_body_over_the_limit_answers_413() -> None:
    async with probe_app(max_body_bytes=2048) as client:
        headers = bearer("administrator")
        exact = await client.post("/echo", content=b"x" * 2048, headers=headers)
        assert exact.json()["bytes"] == 2048
        declared = await client.post("/echo", content=b"x" * 4096, headers=headers)
        assert declared.status_code == 413
        assert "2048 bytes" in declared.json()["error"]

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
            for _ in range(4):
                yield b"x" * 1024

        streamed = await client.post("/echo", content=chunks(), headers=headers)
        assert streamed.status_code == 413


async def test_each_token_is_rate_limited_with_retry_after() -> None:
    async with probe_app(rate_limit_per_minute=60, rate_limit_burst=3) as client:
        first, second = bearer("administrator", "a"), bearer("administrator", "b")
        answers = [
            (await client.post("/echo", json={}, headers=first)).status_code for _ in range(4)
        ]
        assert answers == [200, 200, 200, 429]
        limited = await client.post("/echo", json={}, headers=first)
        assert limited.headers["Retry-After"] == "1"
        assert "too many requests" in limited.json()["error"]
        assert (await client.post("/echo", json={}, headers=second)).status_code == 200


async def test_the_bucket_is_the_subjects_however_its_tokens_are_spelled() -> None:
    async with probe_app(rate_limit_per_minute=60, rate_limit_burst=3) as client:
        spellings = [token("administrator", "a"), token("administrator", "a")]
        spellings.append(spellings[0] + "=")  # still verifies: base64 padding is ignored
        answers = []
        for spelling in [*spellings, token("administrator", "a")]:
            headers = {"Authorization": f"Bearer {spelling}"}
            answers.append((await client.post("/echo", json={}, headers=headers)).status_code)
        assert answers == [200, 200, 200, 429]


async def test_requests_without_a_valid_token_are_limited_per_client_address() -> None:
    async with probe_app(rate_limit_anonymous_per_minute=8) as client:  # 2 at once
        bad = [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Bearer x.y.z"}]
        answers = [(await client.post("/echo", json={}, headers=h)).status_code for h in bad]
        assert answers == [401, 401, 429]
        limited = await client.post("/echo", json={}, headers=bad[0])
        assert limited.headers["Retry-After"] and "without a valid token" in limited.json()["error"]
        assert (await client.post("/echo", json={}, headers=bearer())).status_code == 200


def test_the_bucket_refills_at_the_configured_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(per_minute=60, burst=2, clock=lambda: now[0])
    assert [limiter.take("t"), limiter.take("t")] == [0.0, 0.0]
    assert limiter.take("t") == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.take("t") == 0.0
    assert RateLimiter(per_minute=0, burst=1).take("t") == 0.0


# Keys -----------------------------------------------------------------------------------


def settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(**values)


def pem(private_key: Any) -> str:
    return (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_rs256_and_es256_public_keys_verify_their_tokens(tmp_path: Path) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    key_file = tmp_path / "ec.pem"
    key_file.write_text(pem(ec_key))
    for verifier, key, algorithm in (
        (TokenVerifier.from_settings(settings(auth_public_key=pem(rsa_key))), rsa_key, "RS256"),
        (TokenVerifier.from_settings(settings(auth_public_key_file=key_file)), ec_key, "ES256"),
    ):
        signed = mint_token(key, "li.na", ["sales_rep"], algorithm=algorithm)
        principal = verifier.verify(signed)
        assert principal.subject == "li.na"
        assert "opportunities:write" in principal.permissions
        with pytest.raises(Unauthenticated, match="must be signed with"):
            verifier.verify(mint_token(TEST_SECRET, "li.na", ["sales_rep"]))


def test_a_jwks_file_verifies_tokens_by_key_id(tmp_path: Path) -> None:
    keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048) for kid in "ab"}
    jwks = {
        "keys": [
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid}
            for kid, k in keys.items()
        ]
    }
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks))
    verifier = TokenVerifier.from_settings(settings(auth_jwks_file=path))
    for kid, key in keys.items():
        signed = mint_token(key, f"user-{kid}", ["manager"], algorithm="RS256", key_id=kid)
        assert verifier.verify(signed).subject == f"user-{kid}"
    unknown = mint_token(keys["a"], "x", ["manager"], algorithm="RS256", key_id="c")
    with pytest.raises(Unauthenticated, match="unknown key 'c'"):
        verifier.verify(unknown)


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({}, "none is set"),
        ({"auth_secret": TEST_SECRET, "auth_jwks_file": Path("x")}, "set: CRM_AUTH_SECRET, "),
        ({"auth_secret": "short"}, "at least 32 characters"),
        ({"auth_public_key": "not a key"}, "not a PEM public key"),
        ({"auth_secret_file": Path("/nonexistent/secret")}, "cannot read"),
    ],
)
def test_a_service_without_one_usable_key_does_not_start(values: dict[str, Any], says: str) -> None:
    with pytest.raises(SecurityConfigError, match=says) as caught:
        TokenVerifier.from_settings(settings(**values))
    assert TEST_SECRET not in str(caught.value)


def test_the_secret_is_never_in_the_settings_repr() -> None:
    assert TEST_SECRET not in repr(settings(auth_secret=TEST_SECRET))


# Every route declares a permission; the matrix of roles to permissions -----------------


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
    # support agents correct contact details and consent (of anyone); reps (of their own)
    ("customer", "PATCH", "/customers/{customer_id}/contacts/{contact_id}"): {
        "support_agent",
        "sales_rep",
        "administrator",
        "integration",
    },
    ("customer", "PUT", "/customers/{customer_id}/channel-preferences"): {
        "support_agent",
        "sales_rep",
        "administrator",
        "integration",
    },
    ("customer", "PATCH", "/customers/{customer_id}/profile"): {
        "sales_rep",
        "administrator",
        "integration",
    },
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


async def test_a_route_without_a_permission_is_refused_to_everyone() -> None:
    routes = APIRouter()

    @routes.get("/forgotten")
    async def forgotten() -> dict[str, str]:
        return {"secret": "x"}

    @routes.get("/declared", dependencies=[requires("customers:read")])
    async def declared() -> dict[str, str]:
        return {"ok": "yes"}

    app = app_of(probe(routes))
    async with in_process_client(app) as client:
        refused = await client.get("/forgotten", headers=bearer("administrator"))
        assert refused.status_code == 403
        assert "declares no permission" in refused.json()["error"]
        declared_answer = await client.get("/declared", headers=bearer("administrator"))
        assert declared_answer.json() == {"ok": "yes"}
    assert requirement_of(app, "GET", "/forgotten") is None
