-- The answers to commands sent with an `Idempotency-Key`, by caller and key, for the
-- window CRM_IDEMPOTENCY_WINDOW_HOURS: a repeat is answered from here instead of being
-- done again (services/runtime/http/idempotency.py).
CREATE TABLE idempotent_requests (
    actor text NOT NULL,
    key text NOT NULL,
    fingerprint bytea NOT NULL,  -- sha256 of method, path, query and body
    status integer,              -- null while the first request is being handled
    headers jsonb,
    body bytea,
    started_at timestamptz NOT NULL DEFAULT now(),
    answered_at timestamptz,
    PRIMARY KEY (actor, key)
);
CREATE INDEX idempotent_requests_started_at ON idempotent_requests (started_at);
