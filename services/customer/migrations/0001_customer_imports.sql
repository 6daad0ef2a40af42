-- Customer imports: what each import (by its id) was told and how far it got. Durable:
-- no event gives back how far an import got, and a resumed import starts after
-- `committed_row`.
CREATE TABLE IF NOT EXISTS customer_imports (
    import_id text PRIMARY KEY,
    mapping jsonb NOT NULL,
    mapping_fingerprint text NOT NULL,
    actor text NOT NULL,
    state text NOT NULL CHECK (state IN ('new', 'running', 'stopped', 'completed')),
    committed_row bigint NOT NULL DEFAULT 0,
    counts jsonb NOT NULL DEFAULT '{}',
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
