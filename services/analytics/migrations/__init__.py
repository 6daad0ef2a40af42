"""The analytics service's durable tables beside those every service has (applied by
`services/runtime/storage/migrator.py` when the service starts)."""

from services.runtime.storage.migrator import MigrationSet

MIGRATIONS = MigrationSet("analytics", __name__)
