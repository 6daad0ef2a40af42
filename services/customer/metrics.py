"""Metrics of the customer service beyond those every service has."""

import asyncpg
from prometheus_client import Counter, Gauge

IMPORT_ROWS = Counter(
    "crm_customer_import_rows_total",
    "Rows of customer imports (not dry runs) by outcome: created, updated, unchanged, "
    "rejected; `reason` says why a row was rejected (empty otherwise).",
    ["outcome", "reason"],
)

DUPLICATE_PAIRS_FOUND = Counter(
    "crm_customer_duplicate_pairs_found_total",
    "Pairs of customers that entered the queue of possible duplicates.",
)
DUPLICATE_PAIRS_DISMISSED = Counter(
    "crm_customer_duplicate_pairs_dismissed_total",
    "Pairs of possible duplicates someone dismissed (`POST /duplicates/{a}/{b}/dismiss`).",
)
DUPLICATE_QUEUE_SIZE = Gauge(
    "crm_customer_duplicate_queue_pairs",
    "Pairs of possible duplicates waiting in the queue (`GET /duplicates`).",
)


async def refresh_duplicate_queue(pool: asyncpg.Pool) -> None:
    """The queue's size, from the directory's projection."""
    try:
        size = await pool.fetchval("SELECT count(*) FROM duplicate_pairs")
    except asyncpg.UndefinedTableError:
        size = 0  # the directory is not built yet
    DUPLICATE_QUEUE_SIZE.set(size)


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
