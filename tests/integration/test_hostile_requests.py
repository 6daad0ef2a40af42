"""No parameter or header of any route makes a service answer 5xx.

Every service runs in this process on a real database and broker (`tests/support/
serving.py`). The test walks every operation of every service's OpenAPI document and
sends, in each of its query, path and header parameters in turn, values a caller can
send and the service must refuse with a 4xx whose `error` says what is wrong:
control characters (NUL, ESC, DEL), numbers of 5,000 digits, moments and dates out of
any sensible range or given as Unix times, cursors the service never issued. Then
tokens whose header or claims are malformed, which must answer 401 without an error
logged, and `Last-Event-ID` values on the live feed.
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.support.auth import bearer, forged_token, valid_claims
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of, concrete, operations
from tests.support.serving import call, served_settings, serving

CONTROL_TEXT = ["a\x00b", "\x00", "x\x1b[2Jy", "\x7f"]
"""Text no filter, key or name holds: PostgreSQL refuses NUL in text."""

HUGE_NUMBER = "9" * 5000

MOMENTS = [
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "0.5",
    "1767225600",
    "-1e300",
]
"""Out of the range the service keeps moments in, or not ISO 8601 (a Unix time)."""

DATES = ["0001-01-01", "9999-12-31", "0", "1767225600"]


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


FORGED_CURSORS = [
    "!!!",
    _cursor({}),
    _cursor([]),
    _cursor(["2026-01-01T00:00:00+00:00", 1]),
    _cursor(["9999-12-31T23:59:59-14:00", 1]),
    _cursor([1e308, 1e308]),
    _cursor(["\ud800", str(uuid.uuid4())]),
    _cursor(["a\x00", str(uuid.uuid4())]),
    _cursor([[], {}]),
    _cursor([10**30]),
    _cursor([-(2**63) - 1]),
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
]
"""Cursors no list of any service issues (whatever the types of its sort key)."""


def _schemas(parameter: dict[str, Any]) -> list[dict[str, Any]]:
    schema = parameter.get("schema", {})
    return [schema, *schema.get("anyOf", []), schema.get("items", {})]


def hostile_values(parameter: dict[str, Any]) -> list[str]:
    """What to send in `parameter`, each to be refused."""
    schemas = _schemas(parameter)
    formats = {s.get("format") for s in schemas}
    free_text = (
        any(
            s.get("type") == "string" and not {"format", "enum"} & set(s)
            for s in schemas
        )
        and parameter["name"] != "cursor"
    )
    values = [] if free_text and parameter["in"] != "header" else [HUGE_NUMBER]
    if parameter["in"] != "header":  # no HTTP client sends a control character there
        values += CONTROL_TEXT
    if "date-time" in formats:
        values += MOMENTS
    if "date" in formats:
        values += DATES
    if parameter["name"] == "cursor":
        values += FORGED_CURSORS
    return values


def not_refused(response: httpx.Response, what: str) -> list[str]:
    """[] when `response` refuses the request with a 4xx saying why; else what it did."""
    if not 400 <= response.status_code < 500:
        body = response.text[:200] if response.is_stream_consumed else "(a stream)"
        return [f"{what}: {response.status_code} {body}"]
    try:
        message = response.json().get("error")
    except ValueError:
        message = None
    return [] if isinstance(message, str) and message else [f"{what}: {response.text[:200]}"]


ADMIN = bearer("administrator", "prober")


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_every_parameter_refuses_what_no_route_can_use(
    name: str, infra: Infrastructure
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    sent, failures = 0, []
    async with serving(app) as client:
        for method, template, operation in operations(app):
            for parameter in operation.get("parameters", []):
                for value in hostile_values(parameter):
                    what = (
                        f"{method} {template} {parameter['in']} {parameter['name']}={value!r:.40}"
                    )
                    path = concrete(template, operation)
                    headers: list[tuple[str, str | bytes]] = list(ADMIN.items())
                    params = None
                    if parameter["in"] == "query":
                        params = [(parameter["name"], value)]
                    elif parameter["in"] == "path":
                        path = concrete(
                            template.replace("{" + parameter["name"] + "}", quote(value, safe="")),
                            operation,
                        )
                    else:
                        headers.append((parameter["name"], value))
                    response = await call(client, method, path, headers, params)
                    failures += not_refused(response, what)
                    sent += 1
    assert sent > 0
    assert not failures, f"{len(failures)} of {sent} not refused:\n" + "\n".join(failures)


FORGED_HEADERS: list[Any] = [
    {"alg": "HS256", "typ": "JWT", "kid": 5},
    {"alg": "HS256", "kid": ["a"]},
    {"alg": "HS256", "kid": {"a": 1}},
    {"alg": "HS256", "kid": None},
    {"alg": "HS256", "crit": ["exp"]},
    {"alg": "HS256", "crit": "exp"},
    {"alg": 5},
    {"alg": ["HS256"]},
    {"alg": "none"},
    {"alg": "HS256", "typ": 5},
    [1, 2],
    "HS256",
]

FORGED_CLAIMS: list[dict[str, Any]] = [
    {"exp": "9999999999"},
    {"exp": True},
    {"exp": None},
    {"exp": [1]},
    {"exp": float("inf")},
    {"exp": float("nan")},
    {"exp": 1e300},
    {"nbf": "0"},
    {"iat": "now"},
    {"iat": float("inf")},
    {"sub": 5},
    {"sub": "a\x00b"},
    {"roles": [{"a": 1}]},
    {"roles": {"administrator": True}},
    {"aud": [5]},
    {"iss": ["crm"]},
]


def forged_tokens() -> list[tuple[str, str]]:
    tokens = [(f"header {h!r}", forged_token(h, valid_claims())) for h in FORGED_HEADERS]
    for change in FORGED_CLAIMS:
        claims = {**valid_claims(), **change}
        tokens.append((f"claims {change!r}", forged_token({"alg": "HS256"}, claims)))
    return tokens


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_malformed_tokens_answer_401_without_an_error_logged(
    name: str, infra: Infrastructure, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    async with serving(app) as client:
        failures = []
        with caplog.at_level(logging.ERROR):
            for what, token in forged_tokens():
                headers = {"Authorization": f"Bearer {token}"}
                response = await client.get("/audit", headers=headers)
                if response.status_code != 401 or not response.json().get("error"):
                    failures.append(f"{what}: {response.status_code} {response.text[:200]}")
        assert not failures, "\n".join(failures)
        errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert not errors, [r.getMessage() for r in errors]


async def test_the_feed_refuses_a_last_event_id_that_is_not_a_position(
    infra: Infrastructure,
) -> None:
    app = app_of(DEFINITIONS["analytics"], served_settings("analytics", infra))
    failures = []
    async with serving(app) as client:
        for value in [HUGE_NUMBER, b"\xb2", b"\xd9\xa3", "-1", "1.5", "", "1 2"]:
            headers = [*ADMIN.items(), ("Last-Event-ID", value)]
            response = await call(client, "GET", "/feed", headers)
            failures += not_refused(response, f"Last-Event-ID {value!r:.40}")
    assert not failures, "\n".join(failures)
