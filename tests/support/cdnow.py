"""The CDNOW sample (`tests/data/cdnow_customers_summary.csv`) as purchases: for each
summary row, a first purchase and `x` repeat purchases whose times and amounts give back
that row, relative to the end of a calibration period.

The summary keeps what the models read, not the purchases themselves, so the purchases
are one history consistent with it: the first `T` weeks before the end, the repeats
evenly spaced after it, the latest `t_x` weeks after the first, each repeat costing
`zbar` dollars (so that they average `zbar`). The first purchase's amount is not in the
summary (the models leave it out); it is a fixed `FIRST_SPEND`.
"""

from __future__ import annotations

import csv
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from services.analytics.domain.bg_nbd import BgNbdFit, fit_bg_nbd
from services.analytics.domain.gamma_gamma import GammaGammaFit, fit_gamma_gamma
from services.analytics.domain.lifetime_value import CustomerScore, score
from services.analytics.domain.purchase_history import PurchaseHistory

CDNOW = Path(__file__).parents[1] / "data" / "cdnow_customers_summary.csv"
FIRST_SPEND = Decimal("25.00")
NAMESPACE = uuid.UUID("6f3c9a52-1d0e-4b7a-9e42-cd70c0000000")
"""Customer ids are derived from the sample's ids in this namespace."""


@dataclass(frozen=True)
class Purchase:
    customer_id: uuid.UUID
    order_id: str
    occurred_at: datetime
    amount: Decimal


@dataclass(frozen=True)
class Row:
    customer: int
    repeats: int
    latest_week: float
    weeks: float
    repeat_spend: Decimal

    @property
    def customer_id(self) -> uuid.UUID:
        return uuid.uuid5(NAMESPACE, str(self.customer))


def rows(limit: int | None = None) -> list[Row]:
    with CDNOW.open(newline="") as file:
        found = [
            Row(int(r["ID"]), int(r["x"]), float(r["t_x"]), float(r["T"]), Decimal(r["zbar"]))
            for r in csv.DictReader(file)
        ]
    return found[:limit]


def purchases(row: Row, end: datetime) -> list[Purchase]:
    """The purchases of one summary row, the calibration period ending at `end`."""
    first = end - timedelta(weeks=row.weeks)
    found = [Purchase(row.customer_id, f"CD-{row.customer}-0", first, FIRST_SPEND)]
    for k in range(1, row.repeats + 1):
        moment = first + timedelta(weeks=row.latest_week * k / row.repeats)
        found.append(Purchase(row.customer_id, f"CD-{row.customer}-{k}", moment, row.repeat_spend))
    return found


def all_purchases(end: datetime, limit: int | None = None) -> list[Purchase]:
    return [p for row in rows(limit) for p in purchases(row, end)]


def histories(purchases: list[Purchase], now: datetime) -> dict[uuid.UUID, PurchaseHistory]:
    """Each customer's history straight from the purchases, in weeks, as of `now` (what
    the analytics service should arrive at through its profiles)."""
    by_customer: dict[uuid.UUID, list[Purchase]] = {}
    for p in purchases:
        by_customer.setdefault(p.customer_id, []).append(p)
    week = timedelta(weeks=1)
    found = {}
    for customer, bought in by_customer.items():
        bought.sort(key=lambda p: p.occurred_at)
        repeats = bought[1:]
        spend = sum((p.amount for p in repeats), Decimal(0))
        found[customer] = PurchaseHistory(
            frequency=len(repeats),
            recency=(bought[-1].occurred_at - bought[0].occurred_at) / week if repeats else 0.0,
            age=(now - bought[0].occurred_at) / week,
            average_repeat_spend=float(spend) / len(repeats) if spend else None,
        )
    return found


@dataclass(frozen=True)
class DirectFit:
    """Both models fitted by the domain functions on the histories of the purchases."""

    histories: dict[uuid.UUID, PurchaseHistory]
    bg: BgNbdFit
    gg: GammaGammaFit

    def scores(self) -> dict[uuid.UUID, CustomerScore]:
        people = list(self.histories.values())
        return dict(zip(self.histories, score(self.bg, self.gg, people), strict=True))

    def assert_same_parameters(
        self, bg: Mapping[str, float], gg: Mapping[str, float], relative: float
    ) -> None:
        """The parameters of a stored or served fit are those of this one."""
        for name in ("r", "alpha", "a", "b"):
            assert math.isclose(bg[name], getattr(self.bg, name), rel_tol=relative), name
        for name in ("p", "q", "gamma"):
            assert math.isclose(gg[name], getattr(self.gg, name), rel_tol=relative), name


def direct_fit(purchases: list[Purchase], now: datetime) -> DirectFit:
    found = histories(purchases, now)
    people = list(found.values())
    bg, gg = fit_bg_nbd(people), fit_gamma_gamma(people)
    assert isinstance(bg, BgNbdFit) and isinstance(gg, GammaGammaFit)
    return DirectFit(found, bg, gg)
