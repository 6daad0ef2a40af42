"""The customers' keys: one per customer, kept wrapped in PostgreSQL, destroyed on erasure.

Every service seals the personal fields of a customer's events with that customer's key
(`contracts.personal`) and opens them with it, so all services share one key table,
`crm_keys.customer_keys`. A key is made the first time a service seals something of the
customer. It is stored wrapped (AES-256-GCM) under the master key, which comes from the
environment or a file and never touches the database, so a copy of the database alone
opens nothing. Erasure replaces the wrapped key by nothing and records when: from then on
every sealed value of the customer reads as `ERASED`, and nothing new can be sealed.

Keys are cached in memory for `cache_seconds`, at most `cache_size` of them (the oldest
go first, so that a bulk import of a million customers does not keep a million keys); a
service that learns of an erasure (the `customer.erased` event) drops its copy at once
with `forget`. `prepare` makes and loads the keys of many customers in two statements,
for writers that seal the data of thousands of new customers at once.

Synchronous (psycopg), because the event store's mapper runs in the event store's
threads; async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg_pool import ConnectionPool

from contracts.personal import KEY_BYTES, new_key
from services.runtime.errors import Gone
from services.runtime.settings import ServiceSettings

_NONCE_BYTES = 12


class KeyringConfigError(ValueError):
    """The master key is missing or unusable; the message names the setting."""


class CustomerErased(Gone):
    """The customer was erased: nothing personal can be recorded for them any more."""

    def __init__(self, customer_id: UUID) -> None:
        super().__init__(
            f"customer {customer_id} was erased; no personal data can be recorded for them"
        )
        self.customer_id = customer_id


def new_master_key() -> str:
    """A new master key, base64 (what `CRM_KEYRING_MASTER_KEY` holds)."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def master_key_from(value: str | None, file: Path | None) -> bytes:
    """The master key from `CRM_KEYRING_MASTER_KEY` or `CRM_KEYRING_MASTER_KEY_FILE`."""
    if (value is None) == (file is None):
        raise KeyringConfigError(
            "personal data is sealed with keys wrapped by a master key: set exactly one of "
            "CRM_KEYRING_MASTER_KEY, CRM_KEYRING_MASTER_KEY_FILE"
        )
    if file is not None:
        try:
            value = file.read_text().strip()
        except OSError as exc:
            raise KeyringConfigError(
                f"CRM_KEYRING_MASTER_KEY_FILE cannot be read: {exc.strerror}"
            ) from None
    assert value is not None
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        raise KeyringConfigError("the keyring master key is not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyringConfigError(
            f"the keyring master key must be {KEY_BYTES} bytes (base64 of them), not {len(key)}"
        )
    return key


def settings_master_key(settings: ServiceSettings) -> bytes:
    """The master key the settings give (inline or in a file); `KeyringConfigError` when
    none usable is set."""
    secret = settings.keyring_master_key
    return master_key_from(
        secret.get_secret_value() if secret is not None else None,
        settings.keyring_master_key_file,
    )


class Keyring:
    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> Keyring:
        """The shared keyring in the settings' database, with their master key;
        `KeyringConfigError` when no usable master key is set."""
        return cls(settings.database_dsn, settings_master_key(settings))

    def __init__(
        self, dsn: str, master_key: bytes, *, cache_seconds: float = 60.0, cache_size: int = 50_000
    ) -> None:
        self._master = AESGCM(master_key)
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=4, open=False, kwargs={"autocommit": True}
        )
        self._cache: dict[UUID, tuple[bytes | None, float]] = {}
        self._lock = threading.Lock()
        self._cache_seconds = cache_seconds
        self._cache_size = cache_size

    def open(self) -> None:
        """Connect to `crm_keys.customer_keys` (a durable table, see `storage/migrator.py`)."""
        self._pool.open(wait=True, timeout=30)

    def close(self) -> None:
        self._pool.close()

    # Sealing: the key of one customer, made on first use --------------------------------

    def sealing_key(self, customer_id: UUID) -> bytes:
        """The customer's key; `CustomerErased` if they were erased."""
        cached = self._cached(customer_id)
        if cached is not None:
            key = cached[0]
        else:
            wrapped = self._new_wrapped_key(customer_id)
            with self._pool.connection() as connection:
                connection.execute(
                    "INSERT INTO crm_keys.customer_keys (customer_id, wrapped_key) "
                    "VALUES (%s, %s) ON CONFLICT (customer_id) DO NOTHING",
                    (customer_id, wrapped),
                )
            key = self._load([customer_id])[customer_id]
        if key is None:
            raise CustomerErased(customer_id)
        return key

    def prepare(self, customer_ids: Iterable[UUID]) -> None:
        """Make the keys of those of `customer_ids` that have none, and cache them all, in
        two statements; `sealing_key` then finds them in the cache."""
        missing = [c for c in dict.fromkeys(customer_ids) if self._cached(c) is None]
        if not missing:
            return
        made = {customer_id: new_key() for customer_id in missing}
        with self._pool.connection() as connection:
            inserted = connection.execute(
                "INSERT INTO crm_keys.customer_keys (customer_id, wrapped_key) "
                "SELECT * FROM unnest(%b::uuid[], %b::bytea[]) "
                "ON CONFLICT (customer_id) DO NOTHING RETURNING customer_id",
                (missing, [self._wrapped(c, key) for c, key in made.items()]),
            ).fetchall()
        # the keys made here are kept as they are; those another writer made first (or
        # a customer's tombstone) are read
        stored = {row[0] for row in inserted}
        self._remember({c: key for c, key in made.items() if c in stored})
        if len(stored) < len(missing):
            self._load([c for c in missing if c not in stored])

    # Opening: the keys of several customers, None for erased ones ----------------------

    def opening_keys(self, customer_ids: Iterable[UUID]) -> dict[UUID, bytes | None]:
        """Each customer's key; None for an erased customer or one never given a key."""
        found: dict[UUID, bytes | None] = {}
        missing = []
        for customer_id in set(customer_ids):
            cached = self._cached(customer_id)
            if cached is None:
                missing.append(customer_id)
            else:
                found[customer_id] = cached[0]
        if missing:
            found.update(self._load(missing))
        return found

    # Erasure ----------------------------------------------------------------------------

    def destroy(self, customer_id: UUID) -> None:
        """Destroy the customer's key for good (a customer without one gets a tombstone,
        so that none is made later)."""
        with self._pool.connection() as connection:
            connection.execute(
                "INSERT INTO crm_keys.customer_keys (customer_id, wrapped_key, erased_at) "
                "VALUES (%s, NULL, now()) ON CONFLICT (customer_id) DO UPDATE "
                "SET wrapped_key = NULL, "
                "erased_at = coalesce(customer_keys.erased_at, now())",
                (customer_id,),
            )
        self.forget(customer_id)

    def is_erased(self, customer_id: UUID) -> bool:
        with self._pool.connection() as connection:
            row = connection.execute(
                "SELECT erased_at IS NOT NULL FROM crm_keys.customer_keys WHERE customer_id = %s",
                (customer_id,),
            ).fetchone()
        return bool(row and row[0])

    def forget(self, customer_id: UUID) -> None:
        """Drop the cached copy of a key (after learning that it was destroyed)."""
        with self._lock:
            self._cache.pop(customer_id, None)

    # ------------------------------------------------------------------------------------

    def _cached(self, customer_id: UUID) -> tuple[bytes | None] | None:
        with self._lock:
            entry = self._cache.get(customer_id)
        if entry is None or entry[1] < time.monotonic():
            return None
        return (entry[0],)

    def _load(self, customer_ids: list[UUID]) -> dict[UUID, bytes | None]:
        with self._pool.connection() as connection:
            rows = connection.execute(
                "SELECT customer_id, wrapped_key FROM crm_keys.customer_keys "
                "WHERE customer_id = ANY(%b)",
                (customer_ids,),
            ).fetchall()
        stored = {row[0]: row[1] for row in rows}
        keys = {
            customer_id: self._unwrap(customer_id, stored.get(customer_id))
            for customer_id in customer_ids
        }
        # never cache "no key yet": one may be made
        self._remember({c: key for c, key in keys.items() if c in stored})
        return keys

    def _remember(self, keys: dict[UUID, bytes | None]) -> None:
        expires = time.monotonic() + self._cache_seconds
        with self._lock:
            for customer_id, key in keys.items():
                self._cache.pop(customer_id, None)  # to the end: the newest
                self._cache[customer_id] = (key, expires)
            while len(self._cache) > self._cache_size:
                del self._cache[next(iter(self._cache))]

    def _new_wrapped_key(self, customer_id: UUID) -> bytes:
        return self._wrapped(customer_id, new_key())

    def _wrapped(self, customer_id: UUID, key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._master.encrypt(nonce, key, customer_id.bytes)

    def _unwrap(self, customer_id: UUID, wrapped: bytes | None) -> bytes | None:
        if wrapped is None:
            return None
        try:
            return self._master.decrypt(
                bytes(wrapped[:_NONCE_BYTES]), bytes(wrapped[_NONCE_BYTES:]), customer_id.bytes
            )
        except InvalidTag:
            raise KeyringConfigError(
                f"the key of customer {customer_id} does not open with this master key: "
                "every service must be given the same CRM_KEYRING_MASTER_KEY"
            ) from None
