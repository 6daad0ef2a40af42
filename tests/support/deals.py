"""Generated deals whose chance of winning truly depends on their region, as sales events:
opened as leads in one region or the other, moved to the proposal stage, with a few
activities, and closed from there, won at their region's rate. The win model has
something real to learn, and the stage's default (50 % at proposal) does not know it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from contracts import sales
from contracts.envelope import EventEnvelope, payload_example
from tests.support.events import envelope

WIN_RATE = {"华东": 0.8, "华北": 0.15}
"""The true chance of winning a deal at the proposal stage, by region."""
OPENED = payload_example(sales.OpportunityOpened)
MOVED = payload_example(sales.OpportunityStageChanged)
PLANNED = payload_example(sales.ActivityPlanned)


class Deals:
    """Events of generated deals, as of `now`; `open` and `region` say where each is."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.rng = random.Random(seed)
        self.now = now
        self.open: dict[uuid.UUID, tuple[uuid.UUID, str]] = {}
        self.region: dict[uuid.UUID, str] = {}
        self.won: dict[uuid.UUID, bool] = {}

    def event(
        self, customer: uuid.UUID, deal: uuid.UUID, version: int, payload: Any, at: datetime
    ) -> EventEnvelope[Any]:
        return envelope(
            customer, version, payload, aggregate_id=deal, event_id=uuid.uuid4(), occurred_at=at
        )

    def opened(self, count: int) -> list[EventEnvelope[Any]]:
        """`count` deals opened 40 to 120 days ago and moved to proposal ten days later."""
        events = []
        for n in range(count):
            customer, deal = uuid.uuid4(), uuid.uuid4()
            region = self.rng.choice(list(WIN_RATE))
            at = self.now - timedelta(days=self.rng.randint(40, 120))
            opened = sales.OpportunityOpened.model_validate(
                {**OPENED, "opportunity_id": str(deal), "region": region, "owner": f"销售{n % 3}"}
            )
            moved = sales.OpportunityStageChanged.model_validate(
                {**MOVED, "opportunity_id": str(deal), "from_stage": "lead", "to_stage": "proposal"}
            )
            events += [
                self.event(customer, deal, 1, opened, at),
                self.event(customer, deal, 2, moved, at + timedelta(days=10)),
            ]
            for a in range(self.rng.randint(0, 3)):
                activity = sales.ActivityPlanned.model_validate(
                    {**PLANNED, "opportunity_id": str(deal), "activity_id": f"A-{a}"}
                )
                events.append(self.event(customer, deal, 3 + a, activity, at))
            self.open[deal] = (customer, region)
            self.region[deal] = region
        return events

    def closed(self, deals: Sequence[uuid.UUID]) -> tuple[list[EventEnvelope[Any]], list[bool]]:
        """The deals closed from proposal a day before `now`, won at their region's rate."""
        events, outcomes = [], []
        for deal in deals:
            customer, region = self.open.pop(deal)
            won = self.rng.random() < WIN_RATE[region]
            moved = sales.OpportunityStageChanged.model_validate(
                {
                    **MOVED,
                    "opportunity_id": str(deal),
                    "from_stage": "proposal",
                    "to_stage": "won" if won else "lost",
                    "probability": 100 if won else 0,
                    "lost_reason": None if won else "价格",
                }
            )
            events.append(self.event(customer, deal, 10, moved, self.now - timedelta(days=1)))
            outcomes.append(won)
            self.won[deal] = won
        return events, outcomes
