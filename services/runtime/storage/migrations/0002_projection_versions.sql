-- The shape each projection's tables have: a service whose code expects another shape
-- says "rebuild needed" instead of applying events to tables it does not know.
CREATE TABLE projection_versions (
    projection text PRIMARY KEY,
    version integer NOT NULL CHECK (version > 0),
    built_at timestamptz NOT NULL DEFAULT now()
);
