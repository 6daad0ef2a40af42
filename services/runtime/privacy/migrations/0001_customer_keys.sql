-- The customers' keys as they were before migrations were numbered.
CREATE TABLE IF NOT EXISTS customer_keys (
    customer_id uuid PRIMARY KEY,
    wrapped_key bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    erased_at timestamptz,
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
