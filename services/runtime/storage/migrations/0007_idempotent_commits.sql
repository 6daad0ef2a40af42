-- The commands sent with an `Idempotency-Key` whose events were recorded, by caller and
-- key: written in the same transaction as the events (storage/idempotent_commits.py), so
-- that a retry of a request whose server stopped before answering knows whether it was
-- carried out, and two runs of one request never both record.
CREATE TABLE idempotent_commits (
    actor text NOT NULL,
    key text NOT NULL,
    changed jsonb NOT NULL,  -- [{"aggregate_id": ..., "version": ...}] of the events recorded
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (actor, key)
);
CREATE INDEX idempotent_commits_committed_at ON idempotent_commits (committed_at);
ALTER TABLE idempotent_requests ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
