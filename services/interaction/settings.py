"""Configuration of the interaction service (see `ServiceSettings` for the shared part).

Service-level targets per severity, in minutes, as JSON objects, e.g.
`CRM_INTERACTION_SLA_RESPONSE_MINUTES='{"critical": 10, "high": 30}'`; severities left
out keep their defaults (`services.interaction.domain`).
"""

from pydantic import Field, PositiveInt, ValidationInfo, field_validator

from contracts.interaction_values import Severity
from services.interaction.domain import SlaPolicy, policy
from services.runtime.settings import ServiceSettings, port_setting


class InteractionSettings(ServiceSettings):
    http_port: int = port_setting("interaction", 8003)
    interaction_sla_response_minutes: dict[Severity, PositiveInt] = Field(
        default_factory=dict,
        validation_alias="CRM_INTERACTION_SLA_RESPONSE_MINUTES",
        description="First-response target per severity, in minutes.",
    )
    interaction_sla_resolution_minutes: dict[Severity, PositiveInt] = Field(
        default_factory=dict,
        validation_alias="CRM_INTERACTION_SLA_RESOLUTION_MINUTES",
        description="Resolution target per severity, in minutes.",
    )

    @field_validator("interaction_sla_resolution_minutes")
    @classmethod
    def _targets_make_sense(
        cls, value: dict[Severity, int], info: ValidationInfo
    ) -> dict[Severity, int]:
        response = info.data.get("interaction_sla_response_minutes") or {}
        policy({k.value: v for k, v in response.items()}, {k.value: v for k, v in value.items()})
        return value

    def sla_policy(self) -> SlaPolicy:
        return policy(
            {k.value: v for k, v in self.interaction_sla_response_minutes.items()},
            {k.value: v for k, v in self.interaction_sla_resolution_minutes.items()},
        )
