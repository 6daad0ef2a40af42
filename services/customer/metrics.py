"""Metrics of the customer service beyond those every service has."""

from prometheus_client import Counter

IMPORT_ROWS = Counter(
    "crm_customer_import_rows_total",
    "Rows of customer imports (not dry runs) by outcome: created, updated, unchanged, "
    "rejected; `reason` says why a row was rejected (empty otherwise).",
    ["outcome", "reason"],
)
