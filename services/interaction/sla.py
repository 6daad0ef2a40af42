"""Service-level targets: how soon a ticket of each severity must be answered and resolved.

The targets in force when a ticket is opened (or escalated, or reopened) are turned into
due times and recorded in the ticket's events, so a later change of targets never
rewrites the history of earlier tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.interaction import Severity

DEFAULT_RESPONSE_MINUTES = {"critical": 15, "high": 60, "medium": 240, "low": 1440}
DEFAULT_RESOLUTION_MINUTES = {"critical": 240, "high": 1440, "medium": 4320, "low": 10080}
AT_RISK_SHARE = 0.2
"""A running clock is "at risk" once less than this share of its target is left."""


@dataclass(frozen=True)
class SlaPolicy:
    response_minutes: dict[str, int]
    resolution_minutes: dict[str, int]

    def due(self, severity: str, since: datetime) -> tuple[datetime, datetime]:
        return (
            since + timedelta(minutes=self.response_minutes[severity]),
            since + timedelta(minutes=self.resolution_minutes[severity]),
        )

    def resolution_minutes_for(self, severity: str) -> int:
        return self.resolution_minutes[severity]

    def targets(self) -> dict[str, tuple[int, int]]:
        return {
            s.value: (self.response_minutes[s.value], self.resolution_minutes[s.value])
            for s in Severity
        }


def policy(response: dict[str, int], resolution: dict[str, int]) -> SlaPolicy:
    """The policy with the given targets over the defaults, checked for sense."""
    merged_response = {**DEFAULT_RESPONSE_MINUTES, **response}
    merged_resolution = {**DEFAULT_RESOLUTION_MINUTES, **resolution}
    for severity in Severity:
        if merged_response[severity] > merged_resolution[severity]:
            raise ValueError(
                f"the {severity} response target ({merged_response[severity]} min) is longer "
                f"than its resolution target ({merged_resolution[severity]} min)"
            )
    return SlaPolicy(merged_response, merged_resolution)
