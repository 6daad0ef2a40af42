"""What every benchmark prints its figures with."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

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


async def quiet(
    servers_cpu: Callable[[], tuple[float, ...]], *, below: float = 0.05, timeout: float = 60.0
) -> float:
    """Wait until the servers (`servers_cpu`: their CPU seconds so far) use less than
    `below` of a core over half a second, at most `timeout` seconds; the seconds waited.

    A run leaves PostgreSQL work behind it (autovacuum and analysis of the tables it
    filled, a checkpoint); measured during the next run, that work would count as the next
    run's and take its cores."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        before = sum(servers_cpu())
        await asyncio.sleep(0.5)
        if sum(servers_cpu()) - before < below * 0.5:
            break
    return time.perf_counter() - started
