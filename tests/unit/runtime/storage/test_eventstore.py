"""PostgreSQL over TLS for the event store: the database URL's TLS parameters reach libpq."""

from __future__ import annotations

from services.runtime.storage.eventstore import libpq_tls_environment


def test_the_database_urls_tls_parameters_reach_libpq() -> None:
    url = (
        "postgresql://crm@db:5432/crm?sslmode=verify-full&sslrootcert=/etc/crm/ca.pem"
        "&sslcert=/etc/crm/client.pem&sslkey=/etc/crm/client.key&application_name=x"
    )
    assert libpq_tls_environment(url) == {
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": "/etc/crm/ca.pem",
        "PGSSLCERT": "/etc/crm/client.pem",
        "PGSSLKEY": "/etc/crm/client.key",
    }
    assert libpq_tls_environment("postgresql://crm@db/crm") == {}
