"""The analytic profiles computed from the raw events without the analytics service's
code: the independent computation the fold is checked against, by
`tests/e2e/test_analytics_fold.py` on a generated history and by `crm soak` on what the
services published under load and faults.

`expected(events, now)` gives each customer's figures, RFM scores and segments (the
segment `big_happy` of `RULE` included: define it in the service, as both callers do);
`mismatches(connection, want, now)` lists where the service's tables differ.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import asyncpg
import orjson

from local.synthetic_history import Event

RATES_CNY = {"CNY": Decimal("1"), "USD": Decimal("7.20"), "EUR": Decimal("7.80"),
             "HKD": Decimal("0.92")}  # fmt: skip
"""The fixed rates the README documents, for the currencies the generator uses."""

# R (rows 5..1) x FM (columns 1..5), FM = ceil((F + M) / 2): the README's table.
GRID = {
    5: ("new", "potential_loyalist", "loyal", "champions", "champions"),
    4: ("promising", "potential_loyalist", "loyal", "champions", "champions"),
    3: ("about_to_sleep", "need_attention", "loyal", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose"),
    1: ("lost", "lost", "at_risk", "at_risk", "cannot_lose"),
}

RULE = {
    "all": [
        {"field": "total_spend", "op": "ge", "value": 5000},
        {"any": [
            {"field": "region", "op": "in", "value": ["华东", "华南"]},
            {"field": "tags", "op": "contains", "value": "key-account"},
        ]},
        {"not": {"field": "csat_average", "op": "lt", "value": 3}},
    ]
}  # fmt: skip
"""The rule of the segment `big_happy` (大客户且满意) the computation includes: big
spenders in 华东 or 华南 or key accounts, not unhappy."""


def contact_horizon(now: datetime) -> datetime:
    """Contacts counted as "in the last 90 days": an hour inside the window, so that the
    fold, whose window ends when it folds, has them all whatever the test's timing."""
    return now - timedelta(days=90) + timedelta(hours=1)


def expected(events: list[Event], now: datetime) -> dict[str, dict[str, Any]]:
    """Each customer's figures, computed from the raw events without the service's code."""
    today, horizon = now.date(), contact_horizon(now)
    people: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"buys": [], "csat": [], "nps": [], "tickets": {}, "contacts": {}}
    )
    for event in events:
        doc, p = event.document, event.document["payload"]
        c = people[doc["customer_id"]]
        kind = doc["event_type"]
        if kind == "customer.registered":
            c.update(region=p["region"], tags=set(p["tags"]), owner=p["owner"])
        elif kind in ("sales.purchase_recorded", "sales.contract_signed"):
            amount = (Decimal(p["amount"]) * RATES_CNY[p["currency"]]).quantize(
                Decimal("0.01"), ROUND_HALF_UP
            )
            when = (
                date.fromisoformat(p["signed_on"])
                if kind == "sales.contract_signed"
                else datetime.fromisoformat(doc["occurred_at"]).astimezone(UTC).date()
            )
            c["buys"].append((when, amount))
        elif kind == "interaction.survey_answered":
            if "csat" in p:
                c["csat"].append(p["csat"])
            if "nps" in p:
                c["nps"].append((p["answered_at"], p["nps"]))
        elif kind in ("interaction.logged", "interaction.corrected"):
            version, moment = doc["aggregate_version"], datetime.fromisoformat(p["started_at"])
            contact = c["contacts"].get(doc["aggregate_id"])
            if contact is None or version > contact[0]:
                c["contacts"][doc["aggregate_id"]] = (version, moment)
        elif kind == "interaction.ticket_opened":
            c["tickets"].setdefault(doc["aggregate_id"], {})["kind"] = p["kind"]
        elif kind == "interaction.ticket_resolved":
            c["tickets"].setdefault(doc["aggregate_id"], {})["resolved"] = True
    result = {}
    for customer, c in people.items():
        buys = c["buys"]
        total = sum((a for _, a in buys), Decimal("0"))
        csat = round(sum(c["csat"]) / len(c["csat"]), 2) if c["csat"] else None
        complaints = [t for t in c["tickets"].values() if t.get("kind") == "complaint"]
        contacts = [moment for _, moment in c["contacts"].values()]
        result[customer] = {
            "last_contact": max(contacts) if contacts else None,
            "contacts_90d": sum(1 for m in contacts if m >= horizon),
            "purchase_count": len(buys),
            "total_spend": total,
            "first": min(d for d, _ in buys) if buys else None,
            "last": max(d for d, _ in buys) if buys else None,
            "dates": sorted(d for d, _ in buys),
            "csat_average": csat,
            "nps_latest": max(c["nps"])[1] if c["nps"] else None,
            "complaints_total": len(complaints),
            "complaints_open": sum(1 for t in complaints if not t.get("resolved")),
            "region": c.get("region"),
            "tags": c.get("tags", set()),
        }
    buyers = [r for r in result.values() if r["purchase_count"]]

    def cuts(values: list[Any]) -> list[Any]:
        ordered = sorted(values)
        return [ordered[math.ceil(q * len(ordered)) - 1] for q in (0.2, 0.4, 0.6, 0.8)]

    r_cut = cuts([b["last"] for b in buyers])
    f_cut = cuts([b["purchase_count"] for b in buyers])
    m_cut = cuts([b["total_spend"] for b in buyers])
    for r in result.values():
        segments = set()
        if r["purchase_count"]:
            r["scores"] = (
                1 + sum(r["last"] > x for x in r_cut),
                1 + sum(r["purchase_count"] > x for x in f_cut),
                1 + sum(r["total_spend"] > x for x in m_cut),
            )
            recency, frequency, monetary = r["scores"]
            segments.add("rfm." + GRID[recency][math.ceil((frequency + monetary) / 2) - 1])
            tier = {5: "top", 4: "high", 3: "medium"}.get(monetary, "low")
            segments.add(f"tier.{tier}")
        else:
            r["scores"] = (None, None, None)
        segments.add(f"lifecycle.{stage(r, today)}")
        if (
            r["total_spend"] >= 5000
            and (r["region"] in ("华东", "华南") or "key-account" in r["tags"])
            and not (r["csat_average"] is not None and r["csat_average"] < 3)
        ):
            segments.add("big_happy")
        r["segments"] = segments
    return result


def stage(r: dict[str, Any], today: date) -> str:
    if not r["purchase_count"]:
        return "prospect"
    since_last = (today - r["last"]).days
    if since_last > 365:
        return "lapsed"
    if since_last > 180:
        return "at_risk"
    dates = r["dates"]
    if len(dates) >= 2 and (dates[-1] - dates[-2]).days > 180:
        return "reactivated"
    since_first = (today - r["first"]).days
    return "new" if since_first <= 90 else "growing" if since_first <= 365 else "retained"


async def mismatches(
    connection: asyncpg.Connection, want: dict[str, dict[str, Any]], now: datetime
) -> list[str]:
    rows = await connection.fetch(
        """SELECT customer_id::text AS id, purchase_count, total_spend, first_purchase_at,
                  last_purchase_at, csat_average, nps_latest, complaints_open,
                  complaints_total, recency_score, frequency_score, monetary_score,
                  last_contact_at, state::jsonb->>'recent_contacts' AS recent
           FROM analytics.profiles"""
    )
    horizon = contact_horizon(now)
    current: dict[str, set[str]] = defaultdict(set)
    for row in await connection.fetch(
        "SELECT customer_id::text AS id, segment FROM analytics.segment_history "
        "WHERE left_at IS NULL"
    ):
        current[row["id"]].add(row["segment"])
    problems = []
    if len(rows) != len(want):
        problems.append(f"{len(rows)} profiles, expected {len(want)}")
    for row in rows:
        w = want.get(row["id"])
        if w is None:
            problems.append(f"unexpected profile {row['id']}")
            continue
        got = {
            "purchase_count": row["purchase_count"],
            "total_spend": row["total_spend"],
            "first": row["first_purchase_at"].astimezone(UTC).date()
            if row["first_purchase_at"]
            else None,
            "last": row["last_purchase_at"].astimezone(UTC).date()
            if row["last_purchase_at"]
            else None,
            "last_contact": row["last_contact_at"],
            "contacts_90d": sum(
                1 for m in orjson.loads(row["recent"]) if datetime.fromisoformat(m) >= horizon
            ),
            "csat_average": row["csat_average"],
            "nps_latest": row["nps_latest"],
            "complaints_total": row["complaints_total"],
            "complaints_open": row["complaints_open"],
            "scores": (row["recency_score"], row["frequency_score"], row["monetary_score"]),
            "segments": current.get(row["id"], set()),
        }
        for key, value in got.items():
            if value != w[key]:
                problems.append(f"{row['id']} {key}: got {value!r}, expected {w[key]!r}")
    return problems


def distinct_events(events: Iterable[Event]) -> list[Event]:
    """Each event once (by event id), in the order first seen: a topic may carry an event
    twice (at-least-once delivery, a republished history), the computation counts it once."""
    seen: set[str] = set()
    kept = []
    for event in events:
        event_id = event.document["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            kept.append(event)
    return kept
