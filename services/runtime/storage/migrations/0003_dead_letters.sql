-- What this service's consumers could not parse or apply, kept whole with the reason
-- until the retention (CRM_DEAD_LETTER_RETENTION_DAYS) has passed: listed and replayed
-- by `crm dead-letters`. The dead-letter topic carries the same for other systems.
CREATE TABLE dead_letters (
    letter_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer text NOT NULL,
    source_topic text NOT NULL,
    source_partition integer NOT NULL,
    source_offset bigint NOT NULL,
    key bytea,
    value bytea,
    headers jsonb NOT NULL,  -- the original message's headers: [[name, base64 value], ...]
    reason text NOT NULL,
    detail text NOT NULL,
    original_bytes integer NOT NULL,
    failed_at timestamptz NOT NULL DEFAULT now(),
    replayed_at timestamptz,
    UNIQUE (consumer, source_topic, source_partition, source_offset)
);
CREATE INDEX dead_letters_failed_at ON dead_letters (failed_at);
