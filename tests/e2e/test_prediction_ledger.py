"""The ledger of predictions end to end, on generated deals whose chance of winning truly
depends on their region: their sales events go through the real broker to a running
analytics service; once 220 have closed, the win model is fitted on request and every
open deal's learned probability enters the ledger beside its stage's default; when the
open deals close, the ledger settles each by the deal's outcome, and its calibration
view, its accuracy view, a deal's own ledger and the metrics all say that the learned
probabilities held better than the stage's default (a lower Brier score), in figures
equal to those computed here from the served probabilities and the outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from contracts.envelope import EventEnvelope
from contracts.topics import Topic
from local.demo import analytics as demo_analytics
from local.demo import history as demo_history
from local.demo import pipeline
from local.demo.customers import load_demo
from local.launcher import ServiceProcess
from services.analytics.domain.accuracy import brier_score
from tests.support.deals import Deals
from tests.support.events import as_message
from tests.support.http import csv_rows, every_page, wait_for
from tests.support.infrastructure import Infrastructure, running
from tests.support.kafka import publish_raw
from tests.support.metrics import scrape, total
from tests.support.waiting import eventually

NOW = datetime.now(UTC).replace(microsecond=0)


async def publish(infra: Infrastructure, events: Sequence[EventEnvelope[Any]]) -> None:
    """As the sales service publishes them (signed with its key)."""
    await publish_raw(
        infra.bootstrap_servers, Topic.SALES, [as_message(e) for e in events], pipelined=True
    )


async def test_the_ledger_settles_the_deals_and_the_learned_probabilities_beat_the_default(
    infra: Infrastructure,
) -> None:
    service = infra.service(
        "analytics",
        CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS="0.3",
        CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS="0.3",
        CRM_GAUGE_REFRESH_SECONDS="0.3",
    )
    deals = Deals(seed=7, now=NOW)
    async for analytics_service in running(service):
        async with analytics_service.client(role="manager", timeout=30) as client:
            await publish(infra, deals.opened(400))
            events, _ = deals.closed(list(deals.open)[:220])
            await publish(infra, events)

            async def fitted_on_every_closed_deal() -> dict[str, Any]:
                open_deals = await every_page(client, "/predictions/win-probability")
                assert len(open_deals) == 180, len(open_deals)
                response = await client.post("/models/fit")
                assert response.status_code == 200, response.text
                (win,) = [f for f in response.json()["fits"] if f["model"] == "win_probability"]
                assert (win["outcome"], win["population"]) == ("fitted", 220), win
                return win

            win = await eventually(fitted_on_every_closed_deal, timeout=90, interval=0.5)
            served = {
                uuid.UUID(d["opportunity_id"]): d
                for d in await every_page(client, "/predictions/win-probability")
            }
            assert {d["win_model_version"] for d in served.values()} == {win["version"]}
            assert {d["stage_probability"] for d in served.values()} == {50}

            # Each open deal entered the ledger twice: its learned probability, its default.
            ledger = await every_page(client, "/predictions/ledger", kind="win", status="open")
            assert len(ledger) == 360
            said: dict[str, dict[uuid.UUID, float]] = {}
            for item in ledger:
                said.setdefault(item["model"], {})[uuid.UUID(item["opportunity_id"])] = item[
                    "probability"
                ]
            assert said["win_probability"] == {
                deal: pytest.approx(d["win_probability"]) for deal, d in served.items()
            }
            assert set(said["stage_default"].values()) == {0.5}

            # The open deals close; the ledger settles every prediction by the outcome.
            events, _ = deals.closed(list(served))
            await publish(infra, events)
            page = await wait_for(
                client,
                "/predictions/ledger",
                lambda page: page["summary"]["open"] == 0,
                timeout=60,
                kind="win",
            )
            summary = page["summary"]
            settled = await every_page(client, "/predictions/ledger", kind="win")
            for item in settled:
                won = deals.won[uuid.UUID(item["opportunity_id"])]
                assert (item["happened"], item["settled_by"]) == (won, "won" if won else "lost")
                assert item["status"] == (
                    "held" if (item["probability"] >= 0.5) == won else "missed"
                )
            assert summary["held"] + summary["missed"] == summary["predictions"] == 360

            # The learned probabilities held better than the stage's default.
            outcomes = [deals.won[deal] for deal in served]
            learned = brier_score([(served[d]["win_probability"], deals.won[d]) for d in served])
            default = brier_score([(0.5, won) for won in outcomes])
            assert learned is not None and default is not None
            assert learned < default - 0.05, (learned, default)
            tables = {
                t["model"]: t
                for t in (
                    await client.get("/predictions/calibration", params={"kind": "win"})
                ).json()["items"]
            }
            assert tables["win_probability"]["brier_score"] == pytest.approx(learned)
            assert tables["stage_default"]["brier_score"] == pytest.approx(default)
            assert tables["stage_default"]["buckets"][5]["count"] == 180  # all at 50 %
            assert sum(b["count"] for b in tables["win_probability"]["buckets"]) == 180
            accuracy = (
                await client.get("/predictions/accuracy", params={"kind": "win", "period": "week"})
            ).json()["items"]
            by_model = {a["model"]: a for a in accuracy}
            assert by_model["win_probability"]["model_version"] == win["version"]
            assert by_model["win_probability"]["settled"] == 180
            assert by_model["win_probability"]["brier_score"] == pytest.approx(learned)
            assert by_model["stage_default"]["brier_score"] == pytest.approx(default)

            # One deal's own ledger: which predictions held, also as CSV.
            deal = next(iter(served))
            mine = (
                await client.get("/predictions/ledger", params={"opportunity_id": str(deal)})
            ).json()
            assert {i["model"] for i in mine["items"]} == {"win_probability", "stage_default"}
            assert mine["summary"]["predictions"] == 2
            rows = csv_rows(
                await client.get(
                    "/predictions/ledger", params={"opportunity_id": str(deal), "format": "csv"}
                )
            )
            assert [r["prediction_id"] for r in rows] == [i["prediction_id"] for i in mine["items"]]

            # The live feed streams the settlements when asked for them by type.
            async with client.stream(
                "GET", "/feed", params={"after": 0, "types": "analytics.prediction_settled"}
            ) as response:
                streamed = []
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        streamed.append(orjson.loads(line.removeprefix("data:")))
                    if len(streamed) == 3:
                        break
            assert {e["event_type"] for e in streamed} == {"analytics.prediction_settled"}
            assert {e["payload"]["kind"] for e in streamed} == {"win"}

            # The metrics say the same.
            async def measured(learned: float = learned, default: float = default) -> bool:
                samples = await scrape(client)
                gauge = "crm_prediction_brier_score"
                assert total(samples, gauge, model="win_probability", kind="win") == (
                    pytest.approx(learned)
                )
                assert total(samples, gauge, model="stage_default", kind="win") == (
                    pytest.approx(default)
                )
                assert (
                    total(samples, "crm_predictions_settled_total", model="win_probability") == 180
                )
                return True

            await eventually(measured, timeout=30, interval=0.3)


async def test_the_demo_shows_learned_win_probabilities_and_settled_predictions(
    infra: Infrastructure, customer_service: ServiceProcess, sales_service: ServiceProcess
) -> None:
    """The demo's customers, deals and purchases loaded as `crm up` loads them, the
    models fitted and deals closed afterwards as it does: the win model learned from the
    closed deals that the product matters, and the ledger settled the deals closed after
    the fit and the owners' predictions on the demo's activities."""
    service = infra.service("analytics", CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS="0.5")
    token = customer_service.token()
    customers = await load_demo(customer_service.url, 24, token=token)
    deals = await pipeline.load(sales_service.url, customers, token)
    assert (deals.closed, len(deals.open)) == (pipeline.CLOSED, pipeline.OPEN)
    await demo_history.publish(infra.bootstrap_servers, customers)
    async for analytics_service in running(service):
        said = await demo_analytics.fit_models(
            analytics_service.url, token, closed_deals=deals.closed
        )
        assert f"win_probability version 2 fitted ({pipeline.CLOSED} closed deals)" in said
        async with analytics_service.client(role="manager", timeout=30) as client:
            served = await every_page(client, "/predictions/win-probability")
            by_product: dict[str, list[float]] = {}
            for deal in served:
                by_product.setdefault(deal["product"], []).append(deal["win_probability"])
            assert len(served) == pipeline.OPEN
            assert sum(by_product["企业版年度许可"]) / len(by_product["企业版年度许可"]) > sum(
                by_product["数据分析模块"]
            ) / len(by_product["数据分析模块"])

            closed = await pipeline.close_after_fit(sales_service.url, token, deals)
            line = await demo_analytics.settled_predictions(analytics_service.url, token, closed)
            assert f"settled {2 * closed} win probabilities of {closed} deals" in line, line
            people = (await client.get("/predictions/ledger", params={"kind": "activity"})).json()
            predicted = sum(1 for n in range(pipeline.CLOSED) if n % 3 == 0)
            assert people["summary"]["predictions"] == predicted
            assert people["summary"]["open"] == 0
