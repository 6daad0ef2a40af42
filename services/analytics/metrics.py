"""Prometheus metrics of the analytics service, and the segment, satisfaction and
prediction accuracy gauges refreshed from its tables (every `CRM_GAUGE_REFRESH_SECONDS`).
Labels are segments (built-in ones and those operators define: a bounded set) and fixed
vocabularies (models, kinds); never customer ids."""

from __future__ import annotations

import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from services.analytics.domain.accuracy import CALIBRATION_BUCKETS, CalibrationBucket, table_error

ACCURACY_DAYS = 90
"""The accuracy gauges read the predictions settled in this many days..."""
ACCURACY_MINIMUM = 100
"""...and only when at least this many were: fewer say little about calibration."""

SEGMENT_SIZE = Gauge(
    "crm_analytics_segment_customers",
    "Customers currently in the segment.",
    ["segment"],
)
SEGMENT_NPS = Gauge(
    "crm_analytics_segment_nps",
    "NPS (percent promoters minus percent detractors, latest answer per customer) of the "
    "segment's current members.",
    ["segment"],
)
SEGMENT_CSAT = Gauge(
    "crm_analytics_segment_csat_average",
    "Average CSAT (1-5) of the segment's current members.",
    ["segment"],
)
CHURN_WARNINGS = Gauge(
    "crm_analytics_churn_warnings_open",
    "Churn warnings currently open, by value tier.",
    ["value_tier"],
)
RESCORE_SECONDS = Histogram(
    "crm_analytics_rescore_duration_seconds",
    "Time to move the RFM boundaries and re-score the customers they affect.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RESCORED = Counter(
    "crm_analytics_rescored_customers_total",
    "Customers whose conclusions changed because the RFM boundaries moved.",
)
SWEEP_SECONDS = Histogram(
    "crm_analytics_sweep_duration_seconds",
    "Time to bring every customer's conclusions to the watermark (the time-based sweep).",
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
SWEEP_CHANGED = Counter(
    "crm_analytics_sweep_changed_customers_total",
    "Customers whose conclusions changed in the periodic time-based sweep.",
)
MODEL_FITS = Counter(
    "crm_model_fits_total",
    "Fits of the lifetime value models, by model and outcome (fitted, not_converged, "
    "not_enough_data).",
    ["model", "outcome"],
)
MODEL_FIT_FAILURES = Counter(
    "crm_model_fit_failures_total",
    "Fits of a lifetime value model whose optimiser did not converge: the previous model "
    "stays in use.",
    ["model"],
)
MODEL_FIT_SECONDS = Histogram(
    "crm_model_fit_duration_seconds",
    "Time to fit the lifetime value models and score every customer with them.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
MODEL_FIT_AGE = Gauge(
    "crm_model_fit_age_seconds",
    "Age of the model in use (its latest converged fit), by model; absent before the first one.",
    ["model"],
)
SCORED = Counter(
    "crm_analytics_scored_customers_total",
    "Customers scored by the lifetime value models: everyone after a fit, and those whose "
    "purchases changed in between.",
)


PREDICTIONS_MADE = Counter(
    "crm_predictions_made_total",
    "Predictions entered in the ledger, by model and kind.",
    ["model", "kind"],
)
PREDICTIONS_SETTLED = Counter(
    "crm_predictions_settled_total",
    "Predictions of the ledger settled against what happened, by model, kind and whether "
    "they held.",
    ["model", "kind", "held"],
)
PREDICTION_CALIBRATION_ERROR = Gauge(
    "crm_prediction_calibration_error",
    "Calibration error (0-1) of the probabilities a model gave, over its predictions "
    f"settled in the last {ACCURACY_DAYS} days: the gap between the probability said and "
    "the share that happened, by bucket of 10 points, weighted by the bucket's size; "
    f"absent with fewer than {ACCURACY_MINIMUM} settled.",
    ["model", "kind"],
)
PREDICTION_BRIER_SCORE = Gauge(
    "crm_prediction_brier_score",
    f"Brier score (0 is perfect, 0.25 saying 50 % every time) of the probabilities a model "
    f"gave, over its predictions settled in the last {ACCURACY_DAYS} days; absent with "
    f"fewer than {ACCURACY_MINIMUM} settled.",
    ["model", "kind"],
)


async def refresh_gauges(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as connection:
        fits = await connection.fetch(
            """SELECT model, extract(epoch FROM now() - max(fitted_at)) AS age
               FROM model_fits WHERE converged GROUP BY model"""
        )
        rows = await connection.fetch(
            """SELECT h.segment, count(*) AS size,
                      avg(p.csat_average) AS csat,
                      100.0 * (count(*) FILTER (WHERE p.nps_latest >= 9)
                               - count(*) FILTER (WHERE p.nps_latest <= 6))
                        / nullif(count(p.nps_latest), 0) AS nps
               FROM segment_history h JOIN profiles p USING (customer_id)
               WHERE h.left_at IS NULL GROUP BY h.segment"""
        )
        warnings = await connection.fetch(
            "SELECT value_tier, count(*) AS n FROM churn_warnings GROUP BY value_tier"
        )
        buckets = await connection.fetch(
            f"""SELECT model, kind, least(floor(probability * {CALIBRATION_BUCKETS}),
                       {CALIBRATION_BUCKETS - 1})::int AS bucket,
                       count(*) AS n, avg(probability) AS said,
                       avg(happened::int)::float8 AS happened,
                       sum((probability - happened::int) ^ 2) AS squares
                FROM predictions
                WHERE settled_at > now() - interval '{ACCURACY_DAYS} days'
                  AND probability IS NOT NULL AND happened IS NOT NULL
                GROUP BY model, kind, bucket"""
        )
    seen = set()
    for row in rows:
        seen.add(row["segment"])
        SEGMENT_SIZE.labels(row["segment"]).set(row["size"])
        SEGMENT_CSAT.labels(row["segment"]).set(float(row["csat"] or 0))
        SEGMENT_NPS.labels(row["segment"]).set(float(row["nps"] or 0))
    for gauge in (SEGMENT_SIZE, SEGMENT_CSAT, SEGMENT_NPS):
        for labels in list(gauge._metrics):  # segments that emptied
            if labels[0] not in seen:
                gauge.labels(*labels).set(0)
    for fit in fits:
        MODEL_FIT_AGE.labels(fit["model"]).set(float(fit["age"]))
    _accuracy_gauges(buckets)
    counts = {r["value_tier"]: r["n"] for r in warnings}
    for tier in ("top", "high"):
        CHURN_WARNINGS.labels(tier).set(counts.get(tier, 0))


def _accuracy_gauges(buckets: list[asyncpg.Record]) -> None:
    """The calibration error and Brier score of each model and kind with enough settled
    predictions; the others' gauges are removed (absent, not zero)."""
    tables: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for row in buckets:
        tables.setdefault((row["model"], row["kind"]), []).append(row)
    for gauge in (PREDICTION_CALIBRATION_ERROR, PREDICTION_BRIER_SCORE):
        for labels in list(gauge._metrics):
            if labels not in tables:
                gauge.remove(*labels)
    for (model, kind), rows in tables.items():
        settled = sum(r["n"] for r in rows)
        if settled < ACCURACY_MINIMUM:
            for gauge in (PREDICTION_CALIBRATION_ERROR, PREDICTION_BRIER_SCORE):
                if (model, kind) in gauge._metrics:
                    gauge.remove(model, kind)
            continue
        table = [
            CalibrationBucket(
                r["bucket"] / CALIBRATION_BUCKETS,
                (r["bucket"] + 1) / CALIBRATION_BUCKETS,
                r["n"],
                float(r["said"]),
                float(r["happened"]),
            )
            for r in rows
        ]
        error = table_error(table)
        if error is not None:
            PREDICTION_CALIBRATION_ERROR.labels(model, kind).set(error)
        PREDICTION_BRIER_SCORE.labels(model, kind).set(
            float(sum(r["squares"] for r in rows)) / settled
        )
