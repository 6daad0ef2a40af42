"""Moments relative to now, as the services' clocks see it when a request is made.

Taken when called, not when the test module was imported: a module imported when the
run starts may run its tests many minutes later, and a duration the service measures
from such a moment to its own now would include the wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def ago(**delta: float) -> str:
    """Now less `delta` (`timedelta`'s arguments), in ISO 8601."""
    return (datetime.now(UTC) - timedelta(**delta)).isoformat()
