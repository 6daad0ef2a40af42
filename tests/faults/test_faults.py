"""The short form of `crm soak`: the whole CRM on an embedded PostgreSQL and broker of its
own (it is paused and killed, so not the session's) under a steady mixed load, while
every service is killed at random moments, PostgreSQL is paused and its connections are
terminated, a second replica comes and goes and the broker is killed and the stack
started again around a new one. Afterwards nothing accepted or acknowledged may be lost
or doubled (except what only the killed in-memory broker held, counted apart), every
malformed purchase is a dead letter or a rejection with its reason, no request was
answered 500, every projection equals its rebuild and the analytic profiles equal an
independent computation (`bench.soak`)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.soak import faults
from bench.soak.load import Rates
from bench.soak.run import embedded_cluster, soak
from services import SERVICE_NAMES

SHORT = faults.Plan(
    seconds=120,
    kills=2,
    pause_seconds=8,
    terminations=1,
    broker=True,
    quiet=15,
    replica_seconds=40,
)
RATES = Rates(commands=4, kafka_purchases=5, http_batches=0.5, give_up_seconds=60)


@pytest.mark.timeout(1200)  # the plan's two minutes, then settling, comparing, rebuilding
async def test_nothing_accepted_is_lost_or_doubled_while_processes_fail(tmp_path: Path) -> None:
    async with embedded_cluster(tmp_path) as cluster:
        result = await soak(cluster, SHORT, rates=RATES, seed=16)
    print(result.table())
    problems = result.problems()
    assert not problems, result.table() + "\n\n" + "\n".join(problems)

    kinds = Counter(f.kind for f in result.faults)
    assert kinds == {
        faults.KILL: SHORT.kills * len(SERVICE_NAMES),
        faults.PAUSE: 1,
        faults.TERMINATE: 1,
        faults.REPLICA_ADDED: 1,
        faults.REPLICA_REMOVED: 1,
        faults.BROKER: 1,
    }
    killed = Counter(f.target.split()[0] for f in result.faults if f.kind == faults.KILL)
    assert killed == dict.fromkeys(SERVICE_NAMES, SHORT.kills)
    accepted = result.accounting.accepted
    assert all(accepted[kind] > 0 for kind in ("register", "interaction", "opportunity"))
    acknowledged = result.accounting.acknowledged
    assert acknowledged["kafka"] > 0 and acknowledged["http"] > 0
    spoilt = [p for p in result.load.inbound if p.reason and p.acknowledged_at is not None]
    assert spoilt, "some malformed purchases were acknowledged by the broker"
