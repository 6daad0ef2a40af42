"""The interaction service's settings: service level targets from the environment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from services.interaction.settings import InteractionSettings

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_sla_targets_come_from_the_environment_and_nonsense_stops_the_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_INTERACTION_SLA_RESPONSE_MINUTES", '{"high": 5}')
    assert InteractionSettings().sla_policy().due("high", T0)[0] == T0 + timedelta(minutes=5)
    monkeypatch.setenv("CRM_INTERACTION_SLA_RESPONSE_MINUTES", '{"urgent": 5}')
    with pytest.raises(ValidationError, match="CRM_INTERACTION_SLA_RESPONSE_MINUTES"):
        InteractionSettings()
