-- Customers erased since the service last rewrote its tables: their old row versions may
-- still be in the table files and the WAL until the next compaction
-- (services/runtime/privacy/compaction.py).
CREATE TABLE erasures_to_compact (
    customer_id uuid PRIMARY KEY,
    noted_at timestamptz NOT NULL DEFAULT now()
);
