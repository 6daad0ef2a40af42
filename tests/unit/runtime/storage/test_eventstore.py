"""The event store: PostgreSQL over TLS (the database URL's TLS parameters reach libpq),
and the command's context stamped on each event."""

from __future__ import annotations

import dataclasses

from services.runtime.storage.eventstore import CommandContext, libpq_tls_environment


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


def test_a_command_context_is_stored_with_every_field() -> None:
    context = CommandContext(actor="li.na", correlation_id="import:x", causation_id="import:x:7")
    assert context.metadata() == dataclasses.asdict(context)
