-- A dead letter is the same one as a kept one when both its source position and its
-- bytes are: a broker that lost its topics (the in-memory broker of `crm up`, started
-- again) hands out the same offsets to new messages, which must be kept too, while a
-- redelivered batch still adds nothing.
ALTER TABLE dead_letters ADD COLUMN digest bytea NOT NULL
    GENERATED ALWAYS AS (sha256(coalesce(key, ''::bytea)) || sha256(coalesce(value, ''::bytea))) STORED;
DO $$
DECLARE
    old_constraint text;
BEGIN
    SELECT conname INTO old_constraint FROM pg_constraint
    WHERE conrelid = 'dead_letters'::regclass AND contype = 'u';
    EXECUTE format('ALTER TABLE dead_letters DROP CONSTRAINT %I', old_constraint);
END $$;
ALTER TABLE dead_letters ADD CONSTRAINT dead_letters_once
    UNIQUE (consumer, source_topic, source_partition, source_offset, digest);
