"""Readiness allows a bounded lag: a consumer a few messages behind is ready, one beyond
the bound or stalled is not, and one that was beyond is ready again only at half the
bound, so that a lag hovering around the bound does not make readiness flip."""

from __future__ import annotations

import pytest

from services.runtime.http.app import Readiness
from services.runtime.messaging.readiness import ConsumerPosition, LagBound, LagGate

BOUND = LagBound(max_events=100, max_stall_seconds=30)


def at(behind: int, *, stalled: float = 0.0, measured: bool = True) -> ConsumerPosition:
    return ConsumerPosition("customer_directory", measured, behind, stalled)


def judged(gate: LagGate, *positions: ConsumerPosition) -> list[list[str]]:
    """The problems the gate finds at each successive position of one consumer; each is
    not within the bound exactly when it has a problem."""
    verdicts = [gate.judge([position]) for position in positions]
    assert all(v.within == (not v.problems) for v in verdicts), verdicts
    return [verdict.problems for verdict in verdicts]


def test_a_consumer_that_has_not_measured_its_lag_is_not_within_and_needs_nothing() -> None:
    gate = LagGate(BOUND)
    starting = gate.judge([at(0, measured=False)])
    assert starting.within is False and starting.problems == []
    assert judged(gate, at(10)) == [[]]


def test_a_consumer_whose_group_never_completes_is_a_problem() -> None:
    """Found by `crm soak`: after a kill, the local broker left the fold's consumer group
    incomplete; the consumer waited for its partitions for good, unmeasured, and readiness
    said nothing of why."""
    gate = LagGate(BOUND)
    assert gate.judge([at(0, stalled=29, measured=False)]).problems == []
    waiting = gate.judge([at(0, stalled=31, measured=False)])
    assert waiting.within is False
    assert waiting.problems == [
        "consumer customer_directory has waited 31 s for the broker to give it its "
        "partitions (its consumer group does not complete; readiness allows 30 s, "
        "CRM_READINESS_MAX_STALL_SECONDS)"
    ]


@pytest.mark.parametrize(
    ("position", "problem"),
    [
        (at(101), "101 messages behind (readiness allows 100, CRM_READINESS_MAX_LAG_EVENTS)"),
        (at(3, stalled=31), "has handled nothing for 31 s"),
        (at(60), "catching up: 60 messages behind, ready again at 50 or fewer"),
    ],
)
def test_a_first_look_beyond_half_the_bound_is_not_ready(
    position: ConsumerPosition, problem: str
) -> None:
    (problems,) = judged(LagGate(BOUND), position)
    assert len(problems) == 1 and problem in problems[0], problems
    assert problems[0].startswith("consumer customer_directory ")


def test_a_consumer_a_few_messages_behind_stays_ready() -> None:
    gate = LagGate(BOUND)
    assert judged(gate, at(0), at(7), at(99), at(100), at(40), at(0)) == [[]] * 6


def test_beyond_the_bound_it_is_ready_again_only_at_half_of_it() -> None:
    gate = LagGate(BOUND)
    outcomes = judged(gate, at(0), at(150), at(90), at(51), at(50), at(90))
    assert [bool(problems) for problems in outcomes] == [False, True, True, True, False, False]


def test_a_stalled_consumer_is_not_ready_however_small_its_lag() -> None:
    gate = LagGate(BOUND)
    outcomes = judged(gate, at(0), at(2, stalled=29), at(2, stalled=31), at(60), at(2))
    assert [bool(problems) for problems in outcomes] == [False, False, True, True, False]


def test_each_consumer_is_judged_on_its_own() -> None:
    gate = LagGate(BOUND)
    fold = ConsumerPosition("analytics_fold", True, 500, 0.0)
    replica = ConsumerPosition("analytics_customers", True, 3, 0.0)
    verdict = gate.judge([fold, replica])
    assert not verdict.within
    assert len(verdict.problems) == 1
    assert verdict.problems[0].startswith("consumer analytics_fold is 500")


def test_a_bound_of_zero_means_ready_only_when_caught_up() -> None:
    gate = LagGate(LagBound(max_events=0, max_stall_seconds=30))
    assert [bool(p) for p in judged(gate, at(0), at(1), at(0))] == [False, True, False]


def test_informational_checks_are_reported_without_deciding() -> None:
    exact = frozenset({"projections_caught_up"})
    behind = {"database": True, "projections_within_lag": True, "projections_caught_up": False}
    assert Readiness(behind, informational=exact).ready
    beyond = {**behind, "projections_within_lag": False}
    assert not Readiness(beyond, informational=exact).ready
