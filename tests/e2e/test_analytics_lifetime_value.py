"""Lifetime value end to end: the purchases of the CDNOW sample (2,357 customers) published
on the inbound purchases topic as a shop would, through the real broker, the sales
service and the analytics fold; after a fit on request, the parameters and every
customer's scores the analytics API serves equal a direct fit of the domain functions on
the same purchases, and the scores are read by segment rules and churn warnings."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from contracts.topics import Topic
from local.demo import analytics as demo_analytics
from local.demo import history as demo_history
from local.launcher import ServiceProcess
from tests.support import cdnow
from tests.support.http import csv_rows, every_page, wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import publish_json
from tests.support.waiting import eventually

END = datetime(2026, 9, 30, tzinfo=UTC)
"""The end of the sample's calibration period, on the CRM's calendar."""
RELATIVE = 1e-4
"""How close the served parameters and scores are to the direct fit."""


def message(purchase: cdnow.Purchase) -> dict[str, Any]:
    amount = str(purchase.amount)
    return {
        "source": "cdnow",
        "order_id": purchase.order_id,
        "customer_id": str(purchase.customer_id),
        "amount": amount,
        "currency": "CNY",
        "items": [{"sku": "CD", "name": "CD", "quantity": 1, "unit_price": amount}],
        "channel": "online",
        "occurred_at": purchase.occurred_at.isoformat(),
    }


def close(served: str | float | None, direct: float) -> bool:
    return served is not None and math.isclose(
        float(served), direct, rel_tol=RELATIVE, abs_tol=0.01
    )


async def test_the_scores_served_equal_a_direct_fit_on_the_same_purchases(
    infra: Infrastructure, sales_service: ServiceProcess, analytics_service: ServiceProcess
) -> None:
    purchases = cdnow.all_purchases(END)
    async with analytics_service.client(role="manager") as analytics:
        # Started on an empty population: the scheduled fit said so.
        first = await wait_for(analytics, "/models", lambda b: len(b["models"]) == 3)
        for model in first["models"]:
            assert model["in_use"] is None
            assert model["latest"]["outcome"] == "not_enough_data"
            assert model["latest"]["parameters"] is None
            assert model["latest"]["shortfall"]["count"] == 0

        await publish_json(
            infra.bootstrap_servers,
            Topic.PURCHASES_INBOUND,
            [(str(p.customer_id), message(p)) for p in purchases],
            pipelined=True,
        )

        async def all_folded() -> bool:
            profiles = await every_page(analytics, "/profiles")
            assert sum(p["purchase_count"] for p in profiles) == len(purchases), len(profiles)
            return True

        await eventually(all_folded, timeout=180, interval=1.0, describe="every purchase folded")

        response = await analytics.post("/models/fit")
        assert response.status_code == 200, response.text
        answer = response.json()
        fits = {f["model"]: f for f in answer["fits"]}
        bg, gg = fits["bg_nbd"], fits["gamma_gamma"]
        assert (bg["outcome"], bg["in_use"], bg["population"], bg["trigger"]) == (
            "fitted",
            True,
            2357,
            "request",
        )
        assert gg["outcome"] == "fitted" and answer["scored"] == 2357
        fitted_at = datetime.fromisoformat(bg["fitted_at"])

        # The same purchases, fitted directly.
        direct = cdnow.direct_fit(purchases, fitted_at)
        direct.assert_same_parameters(bg["parameters"], gg["parameters"], RELATIVE)
        assert math.isclose(bg["log_likelihood"], direct.bg.log_likelihood, rel_tol=1e-6)

        # Every customer's scores, as the list serves them.
        served = {
            uuid.UUID(item["customer_id"]): item
            for item in await every_page(analytics, "/predictions/lifetime-value")
        }
        expected = direct.scores()
        assert served.keys() == expected.keys()
        for customer, score in expected.items():
            item = served[customer]
            assert item["scored_at"] == bg["fitted_at"]
            assert (item["bg_nbd_version"], item["gamma_gamma_version"]) == (2, 2)
            assert item["repeat_purchases"] == direct.histories[customer].frequency
            for days in (30, 90, 365):
                assert close(item[f"expected_purchases_{days}d"], score.expected_purchases[days])
            assert close(item["probability_active"], score.probability_active), customer
            assert score.expected_spend is not None and score.lifetime_value is not None
            assert close(item["expected_spend"], score.expected_spend), customer
            assert close(item["lifetime_value"], score.lifetime_value), customer
        values = [Decimal(item["lifetime_value"]) for item in served.values()]
        assert values == sorted(values, reverse=True)  # highest first

        # The same in one customer's profile, and in the CSV download.
        customer = next(iter(expected))
        profile = (await analytics.get(f"/profiles/{customer}")).json()
        assert profile["lifetime_value"] == served[customer]["lifetime_value"]
        assert profile["probability_active"] == served[customer]["probability_active"]
        listed = await analytics.get(
            "/predictions/lifetime-value", params={"format": "csv", "limit": 1000}
        )
        rows = csv_rows(listed)
        assert (
            len(rows) == 1000
            and rows[0]["lifetime_value"] == next(iter(served.values()))["lifetime_value"]
        )

        # The fits are versions: the first said "not enough data", the second is in use.
        models = (await analytics.get("/models")).json()["models"]
        in_use = [(m["model"], m["versions"], (m["in_use"] or {}).get("version")) for m in models]
        assert in_use == [("bg_nbd", 2, 2), ("gamma_gamma", 2, 2), ("win_probability", 2, None)]
        earlier = (await analytics.get("/models/bg_nbd/versions/1")).json()
        assert earlier["outcome"] == "not_enough_data" and not earlier["in_use"]
        assert (await analytics.get("/models/bg_nbd/versions/3")).status_code == 404
        assert (await analytics.get("/models/pareto_nbd")).status_code == 404

        # Segment rules and churn warnings read the scores.
        likely_gone = {c for c, s in expected.items() if s.probability_active < 0.2}
        response = await analytics.post(
            "/segments",
            json={
                "segment": "likely_gone",
                "name": "多半已流失",
                "rule": {"field": "probability_active", "op": "lt", "value": 0.2},
            },
        )
        assert response.status_code == 201, response.text

        async def members() -> bool:
            found = await every_page(analytics, "/segments/likely_gone/members")
            assert {uuid.UUID(m["customer_id"]) for m in found} == likely_gone
            return True

        await eventually(members, timeout=60, interval=0.5, describe="segment by score")

        async def warnings_follow_the_scores() -> bool:
            profiles = await every_page(analytics, "/profiles")
            unlikely = {
                p["customer_id"]
                for p in profiles
                if p["value_tier"] in ("top", "high") and p["probability_active"] < 0.5
            }
            warned = await every_page(analytics, "/churn-warnings", reason="probably_inactive")
            assert unlikely and {w["customer_id"] for w in warned} == unlikely
            return True

        await eventually(warnings_follow_the_scores, timeout=60, interval=0.5)


async def test_the_demo_shows_lifetime_values(
    infra: Infrastructure, sales_service: ServiceProcess, analytics_service: ServiceProcess
) -> None:
    """The demo's purchase history, published as `crm up` does, then the models fitted as
    it does: lifetime values for the buyers, and the big buyers who stopped coming
    half a year ago judged less likely active than those who still buy."""
    customers = [str(uuid.uuid4()) for _ in range(60)]
    await demo_history.publish(infra.bootstrap_servers, customers)
    said = await demo_analytics.fit_models(analytics_service.url, analytics_service.token())
    assert "bg_nbd version 2 fitted" in said and "gamma_gamma version 2 fitted" in said, said
    async with analytics_service.client(role="manager") as analytics:
        listed = await every_page(analytics, "/predictions/lifetime-value")
    by_pattern: dict[str, list[float]] = {}
    for item in listed:
        pattern = demo_history.PATTERNS[customers.index(item["customer_id"]) % 8].name
        by_pattern.setdefault(pattern, []).append(item["probability_active"])
        assert Decimal(item["lifetime_value"]) >= 0
    buyers = sum(1 for n in range(60) if demo_history.PATTERNS[n % 8].amount != (0, 0))
    assert len(listed) == buyers
    assert max(by_pattern["big buyer who stopped"]) < 0.5
    assert min(by_pattern["frequent big buyer"]) > 0.9
