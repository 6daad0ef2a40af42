"""Every command of every service accepts an `Idempotency-Key`: sent again, it is
answered with the first answer and does nothing twice; the same key on another request
is refused; two at once do the command once."""

from __future__ import annotations

import asyncio
import re
import uuid

import pytest

from services.runtime.http.authorization import PUBLIC_PATHS
from services.runtime.http.idempotency import COMMAND_METHODS, REPLAYED
from services.runtime.http.security import is_upload
from tests.support.auth import bearer
from tests.support.hostile import concrete
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of, operations
from tests.support.serving import served_settings, serving
from tests.support.waiting import eventually


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_every_command_answers_a_repeat_with_its_first_answer(
    name: str, infra: Infrastructure
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    admin = bearer("administrator", "someone")
    checked = 0
    async with serving(app) as client:
        for method, template, operation in operations(app):
            if method not in COMMAND_METHODS or template in PUBLIC_PATHS:
                continue
            path = concrete(template, operation)
            if is_upload({"method": method, "path": path}):
                continue  # streams its body, reads no key: uploading again is harmless itself
            headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}
            first = await client.request(method, path, json={}, headers=headers)
            again = await client.request(method, path, json={}, headers=headers)
            route = f"{method} {template}"
            assert first.status_code < 500, f"{route}: {first.status_code} {first.text}"
            assert (again.status_code, again.content) == (first.status_code, first.content), route
            assert again.headers.get(REPLAYED) == "true", route
            assert first.headers.get(REPLAYED) is None, route
            other = await client.request(method, path, json={"other": 1}, headers=headers)
            assert other.status_code == 422, f"{route}: {other.status_code} {other.text}"
            assert "used for another request" in other.json()["error"], route
            checked += 1
    assert checked > 0


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_a_method_a_path_does_not_take_is_refused_whatever_key_it_carries(
    name: str, infra: Infrastructure
) -> None:
    """The key belongs to commands: an undeclared method on any path answers 405 (a path
    nothing serves 404), never a complaint about the key reused."""
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    admin = bearer("administrator", "someone")
    routes = operations(app)
    declared: dict[str, set[str]] = {}  # a path, and the methods of every route it matches
    for _, template, operation in routes:
        path = concrete(template, operation)
        declared[path] = {
            method
            for method, other, _ in routes
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", other), path)
        }
    checked = 0
    async with serving(app) as client:
        for path, methods in declared.items():
            for method in sorted(COMMAND_METHODS - methods):
                headers = {**admin, "Idempotency-Key": str(uuid.uuid4())}
                for body in ({}, {"other": 1}):
                    answer = await client.request(method, path, json=body, headers=headers)
                    assert answer.status_code == 405, f"{method} {path}: {answer.text}"
                checked += 1
        unknown = await client.post("/no-such-route", json={}, headers=headers)
        assert unknown.status_code == 404, unknown.text
    assert checked > 0


async def test_a_registration_sent_again_or_twice_at_once_registers_one_customer(
    infra: Infrastructure,
) -> None:
    app = app_of(DEFINITIONS["customer"], served_settings("customer", infra))
    admin = bearer("administrator", "li.na")
    body = {"name": "重试客户", "kind": "business"}
    async with serving(app) as client:
        once = {**admin, "Idempotency-Key": "register-重试客户".encode().hex()}
        answers = await asyncio.gather(
            *(client.post("/customers", json=body, headers=once) for _ in range(3))
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
        created = {a.json()["customer_id"] for a in answers if a.status_code == 201}
        assert len(created) == 1, "every 201 names the same customer"
        retried = await client.post("/customers", json=body, headers=once)
        assert retried.status_code == 201 and retried.json()["customer_id"] in created
        assert retried.headers["ETag"] == answers[0].headers.get("ETag", retried.headers["ETag"])
        other_caller = await client.post(
            "/customers",
            json=body,
            headers={
                **bearer("administrator", "wang.fang"),
                "Idempotency-Key": once["Idempotency-Key"],
            },
        )
        assert other_caller.status_code == 201, "keys are the caller's own"
        assert other_caller.json()["customer_id"] not in created

        # published in the order they were stored: once the other caller's customer is in
        # the directory, so is every registration before it
        async def listed() -> set[str]:
            page = (await client.get("/customers", headers=admin)).json()
            ids = {item["customer_id"] for item in page["items"]}
            assert other_caller.json()["customer_id"] in ids
            return ids

        directory = await eventually(listed, describe="the registrations in the directory")
    assert directory == created | {other_caller.json()["customer_id"]}
