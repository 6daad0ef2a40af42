"""Kafka over SASL and TLS, PostgreSQL over TLS, secrets from files: configured from the
environment, checked at start-up, and never shown in a settings' representation."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from services.runtime.messaging.kafka import connection_options
from services.runtime.settings import ServiceSettings, load_settings
from services.runtime.storage.eventstore import libpq_tls_environment

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def test_kafka_over_sasl_ssl_with_a_ca_file_and_the_password_in_a_file(tmp_path: Path) -> None:
    password = tmp_path / "kafka-password"
    password.write_text("s3cret-from-a-file\n")
    settings = ServiceSettings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="crm-customer",
        kafka_sasl_password_file=password,
        kafka_ssl_cafile=CA,
    )
    options = connection_options(settings)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "crm-customer"
    assert options["sasl_plain_password"] == "s3cret-from-a-file"
    context: ssl.SSLContext = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.cert_store_stats()["x509_ca"] > 0  # the CA file was loaded
    assert "s3cret" not in repr(settings)


def test_a_password_given_directly_is_kept_secret() -> None:
    settings = ServiceSettings(
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_sasl_username="crm",
        kafka_sasl_password="hunter2-hunter2",
    )
    assert connection_options(settings)["sasl_plain_password"] == "hunter2-hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


@pytest.mark.parametrize(
    ("environment", "message"),
    [
        ({"CRM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "needs CRM_KAFKA_SASL_MECHANISM"),
        (
            {
                "CRM_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CRM_KAFKA_SASL_MECHANISM": "PLAIN",
                "CRM_KAFKA_SASL_USERNAME": "crm",
            },
            "set exactly one of CRM_KAFKA_SASL_PASSWORD, CRM_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"CRM_KAFKA_SSL_CAFILE": "/no/such/ca.pem"}, "no such file: /no/such/ca.pem"),
        ({"CRM_KAFKA_SSL_CERTFILE": str(CA)}, "CRM_KAFKA_SSL_KEYFILE go together"),
    ],
)
def test_incomplete_transport_settings_stop_start_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    environment: dict[str, str],
    message: str,
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as stopped:
        load_settings(ServiceSettings)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_the_database_password_comes_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "db-password"
    secret.write_text("p@ss/word:1\n")
    settings = ServiceSettings(
        database_url="postgresql://crm@db.internal:5432/crm?sslmode=verify-full",
        database_password_file=secret,
    )
    assert settings.database_dsn == (
        "postgresql://crm:p%40ss%2Fword%3A1@db.internal:5432/crm?sslmode=verify-full"
    )
    assert "p@ss" not in repr(settings)


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
