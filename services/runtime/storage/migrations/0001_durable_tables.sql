-- The durable tables as they were before migrations were numbered: created where they
-- are missing, left as they are where a service created them already.

CREATE TABLE IF NOT EXISTS audit_log (
    entry_id uuid PRIMARY KEY,
    at timestamptz NOT NULL,
    actor text NOT NULL,
    roles text[] NOT NULL,
    method text NOT NULL,
    route text NOT NULL,
    path_params jsonb NOT NULL,
    customer_id uuid,
    status integer NOT NULL,
    client text,
    user_agent text,
    correlation_id text
);
CREATE INDEX IF NOT EXISTS audit_log_at ON audit_log (at DESC, entry_id DESC);
CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, at DESC, entry_id DESC);
CREATE INDEX IF NOT EXISTS audit_log_customer ON audit_log (customer_id, at DESC, entry_id DESC)
    WHERE customer_id IS NOT NULL;
CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is refused', TG_OP;
END $$;
CREATE OR REPLACE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE OR REPLACE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;

-- which events each projection applied (a redelivery is recognised by its event id)
CREATE TABLE IF NOT EXISTS consumed_events (
    projection text NOT NULL,
    event_id uuid NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    "offset" bigint NOT NULL,
    consumed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, event_id)
);

-- how far each outbox relay got
CREATE TABLE IF NOT EXISTS outbox_position (
    topic text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- this incarnation of the service's database (part of every consumer group id)
CREATE TABLE IF NOT EXISTS database_generation (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    generation uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
