"""CPU of the stack at rest: `crm bench idle --seconds 60`.

Starts what `crm up` starts (an embedded PostgreSQL, the broker and the four services, on
free ports), registers a few customers so that every relay and consumer has had work,
waits until the services have settled, and measures the CPU seconds each process uses
over `--seconds` with nothing to do. Then, on the same stack, the command-to-projection
latency (`bench/projection_latency.py`) over `--latency-count` registrations.

It does this twice, once with the services' own settings (relays woken by PostgreSQL
notifications, `services/runtime/messaging/wakeup.py`) and once with `POLLING`, the
settings that make the relays poll every 20 ms instead, and prints both side by side.
`--set NAME=VALUE` gives both configurations a setting more (such as
`CRM_CONSUMER_FETCH_MAX_WAIT_MS=500`, Kafka's fetch wait); `--attach PID` measures the
processes of a running `crm up` (PID: its process) instead.

CPU is counted from the kernel's accounting per process (user and system time). For
PostgreSQL, the time of backends that ended during the window is counted too (the
postmaster's reaped children).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.projection_latency import measure_projection_latency, own_services

POLLING = {
    "CRM_RELAY_LISTEN": "false",
    "CRM_RELAY_POLL_INTERVAL_SECONDS": "0.02",
    "CRM_CONSUMER_IDLE_WAIT_MS": "50",
}
"""Settings that restore polling: each relay reads its source every 20 ms, and each
consumer with nothing to do looks at its lag every 50 ms."""

SERVICES = ("customer", "sales", "interaction", "analytics")
SETTLE_SECONDS = 15.0
"""Pause between the last registration and the measurement (first sweeps, re-scoring)."""


@dataclass(frozen=True)
class Configuration:
    name: str
    env: Mapping[str, str]


CONFIGURATIONS = (Configuration("polling", POLLING), Configuration("notified", {}))


def process_group(process: psutil.Process) -> str | None:
    """Which part of the stack a process is: a service's name, postgres or broker."""
    try:
        command = process.cmdline()
        name = process.name()
    except psutil.Error:
        return None
    for service in SERVICES:
        if f"services.{service}" in command:
            return service
    if name.startswith("postgres") or any("postgres" in Path(c).name for c in command[:1]):
        return "postgres"
    if "tansu" in " ".join(command[:1]) or name.startswith("tansu"):
        return "broker"
    return None


def cpu_seconds(root: psutil.Process) -> dict[str, float]:
    """CPU seconds used so far by each part of the stack below `root`."""
    used: dict[str, float] = {}
    for process in root.children(recursive=True):
        group = process_group(process)
        if group is None:
            continue
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        seconds = times.user + times.system
        if group == "postgres":
            # backends that ended were reaped by the postmaster (or they are alive still)
            seconds += times.children_user + times.children_system
        used[group] = used.get(group, 0.0) + seconds
    return used


def measure_idle(root: psutil.Process, seconds: float) -> dict[str, float]:
    """CPU seconds each part used over the next `seconds`."""
    before = cpu_seconds(root)
    time.sleep(seconds)
    after = cpu_seconds(root)
    return {group: after[group] - before.get(group, 0.0) for group in after}


def _cores(used: float, seconds: float) -> str:
    return f"{used / seconds:6.3f}"


def print_table(results: Mapping[str, Mapping[str, float]], seconds: float) -> None:
    """Cores used per part (CPU seconds / wall seconds), one column per configuration."""
    names = list(results)
    groups = [*SERVICES, "postgres", "broker"]
    print(f"CPU at rest over {seconds:.0f} s, in cores (CPU seconds per second)")
    print(f"  {'':24}" + "".join(f"{n:>12}" for n in names))
    for group in groups:
        row = [results[n].get(group, 0.0) for n in names]
        print(f"  {group:24}" + "".join(f"{_cores(v, seconds):>12}" for v in row))
    for label, members in (("four services", SERVICES), ("whole stack", groups)):
        totals = [sum(results[n].get(g, 0.0) for g in members) for n in names]
        line = f"  {label:24}" + "".join(f"{_cores(v, seconds):>12}" for v in totals)
        if len(totals) == 2 and totals[1] > 0:
            line += f"   {totals[0] / totals[1]:5.1f} times less"
        print(line)


def print_latency(figures: Mapping[str, Mapping[str, float]]) -> None:
    if not figures:
        return
    count = next(iter(figures.values()))["count"]
    print(f"command → projection latency over {count:.0f} registrations, on the same stack")
    for name, f in figures.items():
        print(
            f"  {name:10} median {f['projection_median_ms']:6.1f} ms"
            f"   p90 {f['projection_p90_ms']:6.1f} ms   p99 {f['projection_p99_ms']:6.1f} ms"
            f"   max {f['projection_max_ms']:6.1f} ms"
        )


def run_idle(args: argparse.Namespace) -> int:
    if args.seconds <= 0:
        raise SystemExit("--seconds must be positive")
    if args.attach is not None:
        try:
            root = psutil.Process(args.attach)
        except psutil.Error as error:
            raise SystemExit(f"crm bench: error: no process {args.attach}: {error}") from None
        print_table({"attached": measure_idle(root, args.seconds)}, args.seconds)
        return 0
    chosen = [c for c in CONFIGURATIONS if args.only in (None, c.name)]
    given = dict(setting.split("=", 1) for setting in args.set)
    results: dict[str, dict[str, float]] = {}
    latency: dict[str, dict[str, float]] = {}
    for configuration in chosen:
        print(f"measuring {configuration.name} ...", flush=True)
        results[configuration.name], figures = _with_own_stack(
            {**configuration.env, **given}, args.seconds, args.latency_count
        )
        if figures:
            latency[configuration.name] = figures
    print_table(results, args.seconds)
    print_latency(latency)
    return 0


def _with_own_stack(
    env: Mapping[str, str], seconds: float, latency_count: int
) -> tuple[dict[str, float], dict[str, float]]:
    """CPU at rest of a stack of its own with settings `env`, then its latency."""
    with own_services(SERVICES, env) as services:
        customer = services[0]
        # every relay and consumer has had work, and what that work started is done
        asyncio.run(measure_projection_latency(customer.url, 20, customer.token()))
        for service in services:
            service.wait_ready(120)
        time.sleep(SETTLE_SECONDS)
        idle = measure_idle(psutil.Process(os.getpid()), seconds)
        figures: dict[str, float] = {}
        if latency_count > 0:
            figures = asyncio.run(
                measure_projection_latency(customer.url, latency_count, customer.token())
            )
        return idle, figures
