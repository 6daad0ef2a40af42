"""The customer service's durable tables beside those every service has (applied by
`services/runtime/storage/migrator.py` when the service starts): customer imports."""

from services.runtime.storage.migrator import MigrationSet

MIGRATIONS = MigrationSet("customer", __name__)
