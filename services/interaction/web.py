"""Dependencies and times shared by the interaction routes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import Depends, Header

from services.interaction.application import InteractionApplication
from services.interaction.settings import InteractionSettings
from services.interaction.sla import SlaPolicy, policy
from services.runtime.errors import RuleViolation
from services.runtime.http.commands import ExpectedVersion
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime

CLOCK_SKEW = timedelta(minutes=5)
"""How far in the future a reported time may lie (clocks of other machines differ)."""


def interaction_application(
    rt: Annotated[ServiceRuntime, Depends(current_runtime)],
) -> InteractionApplication:
    assert isinstance(rt.application, InteractionApplication)
    return rt.application


def sla_policy(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> SlaPolicy:
    settings = rt.settings
    if isinstance(settings, InteractionSettings):
        return settings.sla_policy()
    return policy({}, {})


def idempotency_key(
    idempotency_key: Annotated[
        str | None,
        Header(
            max_length=200,
            description="Your id for this request: repeating it (e.g. after a timeout) "
            "returns what the first one recorded instead of recording it twice.",
        ),
    ] = None,
) -> str | None:
    return idempotency_key.strip() if idempotency_key and idempotency_key.strip() else None


App = Annotated[InteractionApplication, Depends(interaction_application)]
Pool = DatabasePool
Policy = Annotated[SlaPolicy, Depends(sla_policy)]
Version = ExpectedVersion
IdempotencyKey = Annotated[str | None, Depends(idempotency_key)]


def now() -> datetime:
    return datetime.now(UTC)


def not_in_future(moment: datetime | None, name: str) -> datetime:
    """`moment`, or now when absent; a moment in the future is refused."""
    current = now()
    if moment is None:
        return current
    if moment > current + CLOCK_SKEW:
        raise RuleViolation(f"{name} lies in the future ({moment.isoformat()}); give a past time")
    return moment
