"""`crm bench publishing` compares like with like: every way it measures puts the same
messages on the broker, the FastStream ones with the signature as text."""

from __future__ import annotations

import base64
from collections import defaultdict

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from bench.publishing import TOPIC, WAYS, measure
from contracts.signing import HEADER as SIGNATURE_HEADER
from contracts.signing import Signer
from tests.support.infrastructure import Infrastructure
from tests.support.kafka import read_topic

COUNT = 120


async def test_every_way_publishes_the_same_signed_messages(infra: Infrastructure) -> None:
    signer = Signer(Ed25519PrivateKey.generate())
    figures = await measure(infra.bootstrap_servers, COUNT, rounds=1, signer=signer)

    assert set(figures) == {name for name, _ in WAYS}
    assert all(rate > 0 and cpu > 0 for rows in figures.values() for rate, cpu in rows)
    # the warm-up, then each way once
    records = await read_topic(infra.bootstrap_servers, TOPIC, expect=COUNT * (1 + len(WAYS)))
    assert len(records) == COUNT * (1 + len(WAYS))
    copies: dict[tuple[bytes, bytes], list[dict[str, bytes]]] = defaultdict(list)
    for record in records:
        copies[(record.key, record.value)].append(dict(record.headers))
    assert len(copies) == COUNT
    for headers in copies.values():
        assert len(headers) == 1 + len(WAYS)
        signatures = [h[SIGNATURE_HEADER] for h in headers]
        # as bytes (version 1 first) from the relay's producer, as base64 from FastStream
        binary = [s for s in signatures if s[:1] == b"\x01"]
        text = [base64.b64decode(s, validate=True) for s in signatures if s[:1] != b"\x01"]
        assert len(binary) == 2 and len(set(binary)) == 1
        assert text == binary
        for name in ("crm-position", "event_type", "schema_version"):
            assert len({h[name] for h in headers}) == 1
