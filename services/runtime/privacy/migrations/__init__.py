"""The customers' keys, in the `crm_keys` schema every service shares (applied by
`storage/migrator.py`)."""
