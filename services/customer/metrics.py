"""Metrics of the customer service beyond those every service has."""

from prometheus_client import Counter

IMPORT_ROWS = Counter(
    "crm_customer_import_rows_total",
    "Rows of customer imports (not dry runs) by outcome: created, updated, unchanged, "
    "rejected; `reason` says why a row was rejected (empty otherwise).",
    ["outcome", "reason"],
)
MERGES = Counter(
    "crm_customer_merges_total",
    "Customer merges recorded, by the rule that chose the fields (survivor, newest).",
    ["rule"],
)
MERGES_ABSORBED = Counter(
    "crm_customer_merges_absorbed_total",
    "Customers merged into a survivor.",
)
UNMERGES = Counter("crm_customer_unmerges_total", "Customer merges undone.")
