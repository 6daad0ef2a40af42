"""Configuration is checked when a service starts, and a mistake names its variable."""

from __future__ import annotations

import pytest

from services.customer.settings import CustomerSettings
from services.runtime.settings import load_settings


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
