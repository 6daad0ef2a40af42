"""The keyring's bulk preparation, on a real database: the keys of thousands of new
customers made in one statement (what a customer import does per batch), the same keys
sealing and opening finds afterwards, an erased customer staying erased; and a cache
that does not grow with the number of customers."""

from __future__ import annotations

import base64
import uuid

import asyncpg
import pytest

from local.embedded.postgres import EmbeddedPostgres
from local.launcher import session_master_key
from services.runtime.privacy.keyring import CustomerErased, Keyring
from services.runtime.storage.migrator import KEYRING, migrate_all
from tests.support.infrastructure import new_database


async def test_prepared_keys_are_made_once_and_found_by_sealing(
    postgres: EmbeddedPostgres,
) -> None:
    url = await new_database(postgres)
    await migrate_all(url, "customer", (KEYRING,))
    keyring = Keyring(url, base64.b64decode(session_master_key()), cache_size=50)
    keyring.open()
    try:
        erased = uuid.uuid4()
        keyring.destroy(erased)
        known = uuid.uuid4()
        known_key = keyring.sealing_key(known)
        customers = [uuid.uuid4() for _ in range(200)]

        keyring.prepare([*customers, known, erased, customers[0]])

        connection = await asyncpg.connect(url)
        try:
            stored = await connection.fetchval("SELECT count(*) FROM crm_keys.customer_keys")
        finally:
            await connection.close()
        assert stored == 202  # one per customer; the erased one stays a tombstone
        assert keyring.sealing_key(known) == known_key
        with pytest.raises(CustomerErased):
            keyring.sealing_key(erased)
        fresh = Keyring(url, base64.b64decode(session_master_key()))
        fresh.open()
        try:
            # what another process opens with is what this one seals with
            opened = fresh.opening_keys(customers)
            assert all(opened[c] == keyring.sealing_key(c) for c in customers)
        finally:
            fresh.close()
        assert len(keyring._cache) <= 50  # bounded, whatever the number of customers
    finally:
        keyring.close()
