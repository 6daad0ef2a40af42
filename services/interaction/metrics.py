"""The interaction service's own Prometheus metrics: gauges computed from its read models,
and the consent breaches its inbound topics reported."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
from prometheus_client import Counter, Gauge

from contracts.interaction_values import Severity
from services.interaction.queries import ticket_summary

SLA_STATES = ("on_track", "at_risk", "breached")

OPEN_TICKETS = Gauge(
    "crm_tickets_open",
    "Open tickets by severity and service-level state (on_track, at_risk, breached).",
    ["severity", "sla_state"],
)

CONSENT_BREACHES = Counter(
    "crm_interaction_consent_breaches",
    "Outbound contacts other systems reported on a channel the customer had opted out of, "
    "with no reason stated (recorded, flagged consent_breach), by channel and source.",
    ["channel", "source"],
)


async def refresh_open_tickets(pool: asyncpg.Pool) -> None:
    counts = {(s.value, state): 0 for s in Severity for state in SLA_STATES}
    for row in await ticket_summary(pool, now=datetime.now(UTC)):
        key = (row["severity"], row["sla_state"])
        if key in counts:
            counts[key] += row["tickets"]
    for (severity, state), count in counts.items():
        OPEN_TICKETS.labels(severity=severity, sla_state=state).set(count)
