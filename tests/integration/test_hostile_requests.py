"""No parameter, header or token makes a service answer 5xx.

Every service runs in this process on a real database and broker (`tests/support/
serving.py`). Every operation of every service's OpenAPI document gets, in each of its
query, path and header parameters in turn, the values of `tests/support/hostile.py`:
control characters, numbers of 5,000 digits, moments and dates out of range or given as
Unix times, cursors no list issued. Each must be refused with a 4xx whose `error` says
what is wrong. Malformed tokens must answer 401 without an error logged, and the live
feed must refuse a `Last-Event-ID` that is no position.
"""

from __future__ import annotations

import logging

import pytest

from tests.support.auth import bearer
from tests.support.hostile import probe_last_event_id, probe_parameters, probe_tokens
from tests.support.infrastructure import Infrastructure
from tests.support.routes import DEFINITIONS, app_of
from tests.support.serving import served_settings, serving

ADMIN = bearer("administrator", "prober")


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_every_parameter_refuses_what_no_route_can_use(
    name: str, infra: Infrastructure
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    async with serving(app) as client:
        probe = await probe_parameters(client, app.openapi(), ADMIN)
    assert probe.sent > 100
    assert not probe.failures, f"{len(probe.failures)} of {probe.sent} not refused:\n" + "\n".join(
        probe.failures
    )


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
async def test_malformed_tokens_answer_401_without_an_error_logged(
    name: str, infra: Infrastructure, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_of(DEFINITIONS[name], served_settings(name, infra))
    async with serving(app) as client:
        with caplog.at_level(logging.ERROR):
            probe = await probe_tokens(client)
    assert probe.sent > 20
    assert not probe.failures, "\n".join(probe.failures)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def test_the_feed_refuses_a_last_event_id_that_is_not_a_position(
    infra: Infrastructure,
) -> None:
    app = app_of(DEFINITIONS["analytics"], served_settings("analytics", infra))
    async with serving(app) as client:
        probe = await probe_last_event_id(client, ADMIN)
    assert not probe.failures, "\n".join(probe.failures)
