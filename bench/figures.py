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


def allowed_rate(cpu: dict[str, float], events: float, cores: int) -> float:
    """Events per second that CPU time allows on `cores`, with the processes perfectly
    overlapped (none of them faster than its own CPU time)."""
    return events / max(sum(cpu.values()) / cores, max(cpu.values()))


PARTITIONS = 6
"""Partitions of the topics a benchmark makes, as `crm topics` makes them (the compose
deployment's): with the default 3, two processes of one group split them two to one."""
