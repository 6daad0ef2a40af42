"""Dependencies shared by the interaction routes: the application, the pool, the
service-level policy, the caller's idempotency key, and the clock."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import Depends, Header

from services.interaction.application import InteractionApplication
from services.interaction.domain import SlaPolicy, policy
from services.interaction.settings import InteractionSettings
from services.runtime.http.commands import ExpectedVersion
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime


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
    """The moment a request is answered: the service-level clocks and defaults read it."""
    return datetime.now(UTC)
