"""The durable tables every service keeps in its own schema (applied by
`storage/migrator.py`)."""
