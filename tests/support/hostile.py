"""Requests no service may answer with a 5xx, generated from a service's OpenAPI document:
in each query, path and header parameter of each operation in turn, control characters
(NUL, ESC, DEL), numbers of 5,000 digits, moments and dates out of range or given as
Unix times, cursors no list issued; tokens whose header or claims are malformed; and
`Last-Event-ID` values that are no position. Each must be refused with a 4xx whose
`error` says what is wrong.

The integration tests send them to apps served in-process; `make fuzz` sends them to
a running CRM: `python -m tests.support.hostile --token T URL...`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from tests.support.auth import forged_token, valid_claims

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
"""Out of the range the services keep moments in, or not ISO 8601 (a Unix time)."""

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
"""Cursors no list of any service issues (whatever the types of its sort key); that a
cursor holding a moment out of range is refused is a unit test of `paging`."""

LAST_EVENT_IDS: list[str | bytes] = [HUGE_NUMBER, b"\xb2", b"\xd9\xa3", "-1", "1.5", "", "1 2"]
"""No position: `\\xb2` is `²` in Latin-1, which Python's `str.isdigit` takes for one."""

FORGED_HEADERS: list[Any] = [
    {"alg": "HS256", "typ": "JWT", "kid": 5},
    {"alg": "HS256", "kid": ["a"]},
    {"alg": "HS256", "kid": {"a": 1}},
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


def forged_tokens(secret: str | None = None) -> list[tuple[str, str]]:
    """(what is wrong, token) for each malformed token, signed with `secret` (the test
    secret by default) so that only its form is wrong."""
    sign: dict[str, Any] = {} if secret is None else {"secret": secret}
    tokens = [(f"header {h!r}", forged_token(h, valid_claims(), **sign)) for h in FORGED_HEADERS]
    for change in FORGED_CLAIMS:
        claims = {**valid_claims(), **change}
        tokens.append((f"claims {change!r}", forged_token({"alg": "HS256"}, claims, **sign)))
    return tokens


def _schemas(parameter: dict[str, Any]) -> list[dict[str, Any]]:
    schema = parameter.get("schema", {})
    return [schema, *schema.get("anyOf", []), schema.get("items", {})]


def hostile_values(parameter: dict[str, Any]) -> list[str]:
    """What to send in `parameter`, each to be refused."""
    schemas = _schemas(parameter)
    formats = {s.get("format") for s in schemas}
    free_text = parameter["name"] != "cursor" and any(
        s.get("type") == "string" and not {"format", "enum"} & set(s) for s in schemas
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


def concrete(path: str, operation: dict[str, Any]) -> str:
    """`path` with a value in each parameter: a new UUID where one goes, else `x`."""
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            schema = parameter.get("schema", {})
            value = str(uuid.uuid4()) if schema.get("format") == "uuid" else "x"
            path = path.replace("{" + parameter["name"] + "}", value)
    return path


async def call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: dict[str, str] | list[tuple[str, str | bytes]],
    params: list[tuple[str, str]] | None = None,
) -> httpx.Response:
    """The answer to a request with an empty JSON body where a body goes. A stream of
    server-sent events (it does not end) is answered by its headers."""
    body: dict[str, Any] | None = None if method in ("GET", "HEAD", "DELETE") else {}
    pairs = headers.items() if isinstance(headers, dict) else headers
    raw = [(k.encode(), v if isinstance(v, bytes) else v.encode()) for k, v in pairs]
    query = httpx.QueryParams(tuple(params or ()))
    async with client.stream(method, path, json=body, headers=raw, params=query) as answer:
        if not answer.headers.get("content-type", "").startswith("text/event-stream"):
            await answer.aread()
    return answer


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


@dataclass
class Probe:
    """What was sent and what was not refused as it should be."""

    sent: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, failures: list[str]) -> None:
        self.sent += 1
        self.failures += failures


async def probe_parameters(
    client: httpx.AsyncClient, document: dict[str, Any], authorization: dict[str, str]
) -> Probe:
    """Send every hostile value in every parameter of every operation of `document`."""
    probe = Probe()
    for template, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                for value in hostile_values(parameter):
                    name, where = parameter["name"], parameter["in"]
                    what = f"{method.upper()} {template} {where} {name}={value!r:.40}"
                    path = concrete(template, operation)
                    headers: list[tuple[str, str | bytes]] = list(authorization.items())
                    params = None
                    if where == "query":
                        params = [(name, value)]
                    elif where == "path":
                        filled = template.replace("{" + name + "}", quote(value, safe=""))
                        path = concrete(filled, operation)
                    else:
                        headers.append((name, value))
                    answer = await call(client, method.upper(), path, headers, params)
                    probe.add(not_refused(answer, what))
    return probe


async def probe_tokens(client: httpx.AsyncClient, secret: str | None = None) -> Probe:
    """Send every malformed token: each must answer 401 saying what is wrong."""
    probe = Probe()
    for what, token in forged_tokens(secret):
        answer = await client.get("/audit", headers={"Authorization": f"Bearer {token}"})
        failed = answer.status_code != 401 or not answer.json().get("error")
        probe.add([f"{what}: {answer.status_code} {answer.text[:200]}"] if failed else [])
    return probe


async def probe_last_event_id(client: httpx.AsyncClient, authorization: dict[str, str]) -> Probe:
    """Send each `Last-Event-ID` that is no position to the live feed."""
    probe = Probe()
    for value in LAST_EVENT_IDS:
        headers = [*authorization.items(), ("Last-Event-ID", value)]
        answer = await call(client, "GET", "/feed", headers)
        probe.add(not_refused(answer, f"Last-Event-ID {value!r:.40}"))
    return probe


async def probe_service(url: str, token: str, secret: str | None) -> Probe:
    authorization = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        document = (await client.get("/openapi.json")).json()
        probes = [await probe_parameters(client, document, authorization)]
        if secret is not None:
            probes.append(await probe_tokens(client, secret))
        if "/feed" in document["paths"]:
            probes.append(await probe_last_event_id(client, authorization))
    return Probe(sum(p.sent for p in probes), [f for p in probes for f in p.failures])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("urls", nargs="+", metavar="URL", help="a running service")
    parser.add_argument("--token", required=True, help="an administrator's bearer token")
    parser.add_argument("--secret-file", help="the HS256 secret, to sign malformed tokens")
    args = parser.parse_args(argv)
    secret = None
    if args.secret_file:
        with open(args.secret_file) as file:
            secret = file.read().strip()
    failed = 0
    for url in args.urls:
        probe = asyncio.run(probe_service(url, args.token, secret))
        print(f"{url}: {probe.sent} hostile requests, {len(probe.failures)} not refused")
        for failure in probe.failures:
            print(f"  {failure}")
        failed += len(probe.failures)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
