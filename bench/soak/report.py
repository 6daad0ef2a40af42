"""The table a soak prints: what was accepted and acknowledged, the faults and the time
each took to recover from, what was lost or doubled, the comparisons, and the HTTP
latency during faults and outside them."""

from __future__ import annotations

import statistics
from collections import Counter
from typing import TYPE_CHECKING

from bench.soak import faults
from bench.soak.load import Call

if TYPE_CHECKING:
    from bench.soak.run import SoakResult


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of sorted `values`."""
    index = max(0, min(len(values) - 1, round(share * len(values) + 0.5) - 1))
    return values[index]


def _during(call: Call, windows: list[tuple[float, float]]) -> bool:
    return any(start <= call.started <= end for start, end in windows)


def _latency_row(label: str, calls: list[Call]) -> str:
    answered = sorted(c.seconds * 1000 for c in calls if c.status is not None)
    unanswered = sum(1 for c in calls if c.status is None)
    unavailable = sum(1 for c in calls if c.status == 503)
    if not answered:
        return f"  {label:<16} {'-':>8} {'-':>8} {'-':>8} {len(calls):>9,} {unanswered:>9,} {0:>6}"
    p50, p95, p99 = (percentile(answered, q) for q in (0.50, 0.95, 0.99))
    return (
        f"  {label:<16} {p50:>8.0f} {p95:>8.0f} {p99:>8.0f} {len(calls):>9,} "
        f"{unanswered:>9,} {unavailable:>6,}"
    )


def _seconds(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return (
        f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f}"
        f"  (min / median / max)"
    )


def table(result: SoakResult) -> str:
    load, a = result.load, result.accounting
    minutes = (result.load_ended - result.load_started) / 60
    commands = Counter(c.outcome for c in load.commands)
    kafka = [p for p in load.inbound if p.channel == "kafka" and p.acknowledged_at is not None]
    http = [p for p in load.inbound if p.channel == "http" and p.acknowledged_at is not None]
    rejected = [p for p in load.inbound if p.channel == "http" and p.outcome == "rejected"]
    in_doubt = Counter(c.detail for c in load.commands if c.outcome == "in doubt")

    def parts(**kinds: int) -> str:
        return ", ".join(f"{name.replace('_', ' ')} {count:,}" for name, count in kinds.items())

    lines = [
        f"soak of {minutes:.1f} min on {result.cluster} (seed {result.seed})",
        "",
        f"{'commands accepted (2xx)':<44} {sum(a.accepted.values()):>7,}   "
        + parts(**{k: a.accepted[k] for k in ("register", "interaction", "opportunity")}),
        f"{'  of them answered carried out (answer lost)':<44} "
        f"{sum(1 for c in load.commands if c.detail == 'carried out, answer lost'):>7,}",
        f"{'  in doubt (no answer in time)':<44} {commands['in doubt']:>7,}"
        + (
            f"   recorded {a.in_doubt_recorded:,}, not recorded "
            f"{a.in_doubt - a.in_doubt_recorded:,}; "
            + ", ".join(f"{detail} {n:,}" for detail, n in sorted(in_doubt.items()))
            if in_doubt
            else ""
        ),
        f"{'  customer not known yet (422, not recorded)':<44} {commands['not known yet']:>7,}",
        f"{'inbound acknowledged: Kafka':<44} {len(kafka):>7,}   "
        + parts(
            new=sum(1 for p in kafka if p.reason is None and not p.repeat),
            repeats=sum(1 for p in kafka if p.repeat),
            malformed=sum(1 for p in kafka if p.reason is not None),
        ),
        f"{'inbound acknowledged: HTTP':<44} {len(http):>7,}   "
        + parts(
            recorded=sum(1 for p in http if p.outcome == "recorded"),
            duplicate=sum(1 for p in http if p.outcome == "duplicate"),
        )
        + f"; rejected {len(rejected):,} (malformed)",
        "",
        f"{'faults injected':<44} {len(result.faults):>7,}   "
        "time to recover, s (every replica it hit ready again)",
    ]
    for kind in faults.KINDS:
        mine = [f for f in result.faults if f.kind == kind]
        if not mine:
            continue
        recovered = [s for f in mine if (s := f.recovery_seconds) is not None]
        never = len(mine) - len(recovered)
        targets = Counter(f.target.split()[0] for f in mine) if kind == faults.KILL else None
        label = f"  {kind}"
        if kind == faults.PAUSE:
            label += f" {result.plan.pause_seconds:g} s"
        lines.append(
            f"{label:<44} {len(mine):>7,}   {_seconds(recovered)}"
            + (f"; {never} never" if never else "")
        )
        if targets:
            lines.append("    " + ", ".join(f"{name} {n}" for name, n in sorted(targets.items())))
    dead_letters = sum(1 for p in kafka if p.reason is not None)
    lines += [
        "",
        f"{'lost':<44} {len(a.lost):>7,}",
        f"{'doubled':<44} {len(a.doubled):>7,}",
        f"{'acknowledged only in the broker when killed':<44} {len(a.only_in_broker):>7,}",
        f"{'malformed on Kafka: dead letters with reason':<44} "
        f"{a.dead_letters:>7,} of {dead_letters:,}",
        f"{'unexplained (refusals, wrong reasons)':<44} {len(a.unexplained):>7,}",
        f"{'server errors (5xx other than 503)':<44} {len(load.server_errors):>7,}",
        f"{'settled after the load, s':<44} "
        + (f"{result.settled_seconds:>7.1f}" if result.settled_seconds is not None else "  never"),
        "projections equal to a rebuild                 "
        + ", ".join(
            f"{service} {'yes' if not d else f'NO ({len(d)} rows)'}"
            for service, d in result.rebuilds.items()
        ),
        "analytic profiles = independent computation   "
        + ("yes" if not result.analytics else f"NO ({len(result.analytics)} differences)"),
        "",
        f"  {'HTTP latency, ms':<16} {'p50':>8} {'p95':>8} {'p99':>8} {'requests':>9} "
        f"{'no answer':>9} {'503':>6}",
    ]
    windows = [(f.started, f.recovered or result.load_ended) for f in result.faults]
    lines.append(_latency_row("during faults", [c for c in load.calls if _during(c, windows)]))
    lines.append(_latency_row("outside faults", [c for c in load.calls if not _during(c, windows)]))
    return "\n".join(lines)
