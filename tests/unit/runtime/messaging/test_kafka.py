"""Kafka over SASL and TLS (`services.runtime.messaging.kafka`): connection options from
the settings, the password from a file or given directly, never shown."""

from __future__ import annotations

import ssl
from pathlib import Path

from services.runtime.messaging.kafka import connection_options
from services.runtime.settings import ServiceSettings

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
