"""Prometheus metrics of the analytics service. Labels are segments (built-in ones and
those operators define: a bounded set) and fixed vocabularies; never customer ids."""

from prometheus_client import Counter, Gauge, Histogram

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
SWEEP_CHANGED = Counter(
    "crm_analytics_sweep_changed_customers_total",
    "Customers whose conclusions changed in the periodic time-based sweep.",
)
