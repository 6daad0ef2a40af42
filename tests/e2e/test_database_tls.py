"""A service reaches PostgreSQL over verified TLS when its database URL asks for it.

The embedded PostgreSQL is built without TLS, so a TLS front (`tests.support.tls_proxy`)
with a certificate signed by a test CA stands before it. It refuses clients that do not
negotiate TLS or present no client certificate of that CA. The customer service gets
`?sslmode=verify-full&sslrootcert=ca.pem&sslcert=client.pem&sslkey=client.key` on the
front's port: it works as usual, so every connection it opens (the projections' pool,
the outbox relay, the event store, the keyring) went through mutually verified TLS.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
from pathlib import Path

import asyncpg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.http import wait_for
from tests.support.infrastructure import Infrastructure
from tests.support.tls_proxy import TlsProxy


def _certificate(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(signer, hashes.SHA256())


def write_certificates(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate for the
    `postgres` user, each with its key; returns the CA file."""
    directory.mkdir(mode=0o755)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CRM test CA")])
    ca = _certificate("CRM test CA", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ca_name, ca_key, ca=False)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "server.key", server_key)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _certificate("postgres", client_key, ca_name, ca_key, ca=False)
    (directory / "client.pem").write_bytes(client.public_bytes(serialization.Encoding.PEM))
    _write_key(directory / "client.key", client_key)
    return directory / "ca.pem"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


async def test_the_service_talks_to_postgresql_over_verified_tls(
    infra: Infrastructure, tmp_path: Path
) -> None:
    ca = write_certificates(tmp_path / "tls")
    tls = ca.parent
    proxy = TlsProxy(infra.postgres.port, tls / "server.pem", tls / "server.key", client_ca=ca)
    await proxy.start()
    database = infra.database_url.rsplit("/", 1)[1]
    url = (
        f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}?sslmode=verify-full"
        f"&sslrootcert={ca}&sslcert={tls / 'client.pem'}&sslkey={tls / 'client.key'}"
    )
    service = infra.service("customer", database_url=url)
    try:
        await asyncio.to_thread(service.start)
        async with service.client(timeout=10) as client:
            created = await client.post("/customers", json={"name": NAME, "kind": "business"})
            assert created.status_code == 201, created.text
            customer_id = created.json()["customer_id"]
            await wait_for(client, f"/customers/{customer_id}", lambda c: c["version"] == 1)
            history = (await client.get(f"/customers/{customer_id}/history")).json()
            assert history[0]["change"]["name"] == NAME
        assert proxy.connections >= 3  # the pool, the relay, the event store, the keyring
        assert proxy.refused == 0

        # Without TLS, or with TLS but no client certificate, the front refuses: nothing
        # of the service could have gone around it.
        for options in ("sslmode=disable", "sslmode=require"):
            with pytest.raises((ConnectionError, OSError, asyncpg.PostgresError)):
                plain = await asyncpg.connect(
                    f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}?{options}"
                )
                await plain.close()
        assert proxy.refused == 2
    finally:
        await asyncio.to_thread(service.stop)
        await proxy.stop()


NAME = "加密连接测试"
