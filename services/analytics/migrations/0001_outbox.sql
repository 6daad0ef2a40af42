-- The conclusions the fold draws (segment changes, churn warnings), written in the same
-- transaction as the state they come from and published by the service's relay. Kept
-- by a rebuild: what is in it was published already.
CREATE TABLE IF NOT EXISTS outbox (
    position bigserial PRIMARY KEY,
    envelope bytea NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);
