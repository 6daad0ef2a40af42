"""What every benchmark prints its figures with."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import psutil


def percentile(values: Sequence[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def cpu_seconds(process: psutil.Process) -> float:
    """The CPU seconds (user and system) `process` used so far; 0 once it is gone."""
    with contextlib.suppress(psutil.Error):
        times = process.cpu_times()
        return float(times.user + times.system)
    return 0.0
