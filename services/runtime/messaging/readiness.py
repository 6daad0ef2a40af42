"""Whether a service's consumers are close enough to the end of their topics to be ready.

Readiness allows a bounded lag rather than none. Under a steady load a consumer is nearly
always a batch behind (what it fetched and has not applied yet counts), so a readiness
that demanded a lag of exactly zero flipped between 200 and 503 with every batch and took
healthy replicas out of their load balancer. A consumer counts as within its bound while
its lag is at most `CRM_READINESS_MAX_LAG_EVENTS` and it is not stalled (behind without
handling a batch for `CRM_READINESS_MAX_STALL_SECONDS`).

With hysteresis: a consumer that is beyond the bound, stalled, or not yet measured (the
service just started) counts as within it again only once its lag is down to half the
bound, so that a lag hovering around the bound does not make readiness flip either.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class LagBound:
    max_events: int
    """Most messages a consumer may be behind (over all its partitions) while ready."""
    max_stall_seconds: float
    """Longest a consumer may be behind without handling a batch while ready."""

    @property
    def resume_events(self) -> int:
        """The lag at or under which a consumer beyond the bound is within it again."""
        return self.max_events // 2


@dataclass(frozen=True)
class ConsumerPosition:
    """What a consumer last measured of itself."""

    name: str
    measured: bool
    """Whether it has measured its lag at all since the process started."""
    behind: int
    """Messages on its partitions not handled yet."""
    stalled_seconds: float
    """Seconds behind without handling a batch (0 while progressing or caught up)."""


@dataclass(frozen=True)
class LagVerdict:
    within: bool
    """Whether every consumer is within the bound."""
    problems: list[str]
    """A sentence for each consumer beyond it, stalled or catching up (none for one that
    has not measured its lag yet: it is starting, and nothing needs doing)."""


class LagGate:
    """Decides, consumer by consumer, whether each is within the lag bound; remembers
    which are beyond it, for the hysteresis."""

    def __init__(self, bound: LagBound) -> None:
        self.bound = bound
        self._within: set[str] = set()

    def judge(self, positions: Iterable[ConsumerPosition]) -> LagVerdict:
        within, problems = True, []
        for position in positions:
            if position.measured:
                problem = self._problem(position)
                ok = problem is None
            else:  # starting: not within the bound yet, and nothing needs doing, unless
                # it waits far longer than a start takes (its group never completes)
                problem, ok = self._not_started(position), False
            if ok:
                self._within.add(position.name)
            else:
                self._within.discard(position.name)
                within = False
            if problem is not None:
                problems.append(problem)
        return LagVerdict(within, problems)

    def _not_started(self, position: ConsumerPosition) -> str | None:
        if position.stalled_seconds <= self.bound.max_stall_seconds:
            return None
        return (
            f"consumer {position.name} has waited {position.stalled_seconds:.0f} s for the "
            "broker to give it its partitions (its consumer group does not complete; "
            f"readiness allows {self.bound.max_stall_seconds:g} s, "
            "CRM_READINESS_MAX_STALL_SECONDS)"
        )

    def _problem(self, position: ConsumerPosition) -> str | None:
        bound = self.bound
        name = position.name
        if position.stalled_seconds > bound.max_stall_seconds:
            return (
                f"consumer {name} is {position.behind} messages behind and has handled "
                f"nothing for {position.stalled_seconds:.0f} s (readiness allows "
                f"{bound.max_stall_seconds:g} s, CRM_READINESS_MAX_STALL_SECONDS)"
            )
        if position.behind > bound.max_events:
            return (
                f"consumer {name} is {position.behind} messages behind (readiness allows "
                f"{bound.max_events}, CRM_READINESS_MAX_LAG_EVENTS)"
            )
        if name not in self._within and position.behind > bound.resume_events:
            return (
                f"consumer {name} is catching up: {position.behind} messages behind, "
                f"ready again at {bound.resume_events} or fewer"
            )
        return None
