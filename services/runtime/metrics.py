"""Prometheus metrics shared by every service. Label values are bounded sets:
topics, event types, outcomes, reasons, routes; never customer ids."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_PUBLISHED = Counter(
    "crm_events_published_total",
    "Events the outbox relay published and the broker acknowledged.",
    ["topic", "event_type"],
)
PUBLISH_FAILURES = Counter(
    "crm_publish_failures_total",
    "Attempts of the outbox relay to publish that failed and will be retried.",
    ["topic"],
)
OUTBOX_BACKLOG = Gauge(
    "crm_outbox_backlog_events",
    "Events stored in the event store but not yet published.",
    ["topic"],
)
OUTBOX_OLDEST_AGE = Gauge(
    "crm_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest event stored but not yet published (0 when none).",
    ["topic"],
)
RELAY_LEADER = Gauge(
    "crm_outbox_relay_leader",
    "1 when this replica holds the relay lock and publishes, 0 when on standby.",
    ["topic"],
)
EVENTS_CONSUMED = Counter(
    "crm_events_consumed_total",
    "Messages a consumer handled, by outcome: applied, duplicate, dead_lettered.",
    ["consumer", "topic", "event_type", "outcome"],
)
DEAD_LETTERS = Counter(
    "crm_dead_letters_total",
    "Messages sent to the dead-letter topic, by source topic and reason.",
    ["topic", "reason"],
)
BATCH_SECONDS = Histogram(
    "crm_consumer_batch_duration_seconds",
    "Time for a consumer to handle one batch.",
    ["consumer"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PROJECTION_LAG = Gauge(
    "crm_projection_lag_seconds",
    "Now minus the recorded time of the last event applied to the projection.",
    ["projection"],
)
PROJECTION_REBUILD_NEEDED = Gauge(
    "crm_projection_rebuild_needed",
    "1 while a projection's tables have another shape than the code expects: it applies "
    "nothing until `crm rebuild` has rebuilt it.",
    ["projection"],
)
TASK_FAILURES = Counter(
    "crm_background_task_failures_total",
    "Background tasks (consumers, relays, sweeps) that ended with an error they do not "
    "retry; the process then stops so that its supervisor restarts it.",
    ["task"],
)
CONSUMER_STALLED = Gauge(
    "crm_consumer_stalled_seconds",
    "Seconds a consumer has been behind (lag above zero) without handling a batch; 0 "
    "while it progresses or is caught up.",
    ["consumer"],
)
CONSUMER_LAG = Gauge(
    "crm_consumer_lag_messages",
    "Messages on the partition not yet consumed, by consumer.",
    ["consumer", "topic", "partition"],
)
HTTP_REQUESTS = Counter(
    "crm_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["service", "route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "crm_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
DB_POOL_CONNECTIONS = Gauge(
    "crm_db_pool_connections",
    "Connections of the projection database pool by state: open, idle, max.",
    ["schema", "state"],
)
AUDIT_ENTRIES = Counter(
    "crm_audit_entries_total",
    "Audit log entries by outcome: written, or dropped when the writer fell too far behind.",
    ["service", "outcome"],
)
ERASURE_COMPACTIONS = Counter(
    "crm_erasure_compactions_total",
    "Rewrites of a service's tables and the WAL after erasures, by outcome: done, or "
    "partial when the database refused a server-wide step (statistics, WAL).",
    ["service", "outcome"],
)
ERASURES_PENDING = Gauge(
    "crm_erasures_pending_compaction",
    "Erased customers whose old row versions the service has not rewritten away yet.",
    ["service"],
)
UNPUBLISHABLE = Counter(
    "crm_outbox_unpublishable_total",
    "Stored events the relay skipped because no contract reads them (the log names each).",
    ["topic"],
)
