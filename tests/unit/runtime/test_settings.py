"""Configuration is checked when a service starts, and a mistake names its variable;
transport settings must be complete, and secrets come from files (`services.runtime.settings`)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from services.customer.settings import CustomerSettings
from services.runtime.settings import ServiceSettings, load_settings

CA = Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt")


def test_defaults_follow_the_local_conventions(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CRM_CUSTOMER_PORT", "CRM_DATABASE_URL", "CRM_KAFKA_BOOTSTRAP_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(CustomerSettings)
    assert settings.http_port == 8001
    assert settings.kafka_bootstrap_servers == "127.0.0.1:9092"


def test_external_infrastructure_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_DATABASE_URL", "postgresql://crm:secret@db.internal:6432/crm")
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP_SERVERS", "kafka-0:9092,kafka-1:9092")
    monkeypatch.setenv("CRM_CUSTOMER_PORT", "9001")
    settings = load_settings(CustomerSettings)
    assert settings.database_dsn == "postgresql://crm:secret@db.internal:6432/crm"
    assert settings.kafka_bootstrap_servers == "kafka-0:9092,kafka-1:9092"
    assert settings.http_port == 9001
    assert "secret" not in repr(settings.kafka_sasl_password)


def test_a_wrong_value_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CRM_KAFKA_BOOTSTRAP_SERVERS", "kafka-without-port")
    monkeypatch.setenv("CRM_CUSTOMER_PORT", "99999")
    with pytest.raises(SystemExit) as stopped:
        load_settings(CustomerSettings)
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    assert "CRM_KAFKA_BOOTSTRAP_SERVERS: Value error, expected host:port" in message
    assert "CRM_CUSTOMER_PORT" in message


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
        (
            {"CRM_MAX_BODY_BYTES": "524288"},
            "CRM_MAX_BODY_BYTES may be at most a quarter of CRM_KAFKA_MAX_MESSAGE_BYTES",
        ),
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
