"""Configuration from environment variables, validated when a service starts.

Every variable starts with `CRM_`. A wrong value stops the service at start-up with a
message naming the variable, rather than failing later.
"""

import sys
from typing import Literal, TypeVar

from pydantic import Field, PostgresDsn, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service shares. Subclasses add their own port and schema."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    database_url: PostgresDsn = Field(
        default=PostgresDsn("postgresql://postgres@127.0.0.1:5432/crm"),
        description="PostgreSQL server and database holding every service's schema.",
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of brokers."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = Field(default=None, repr=False)
    http_host: str = "127.0.0.1"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line, for log collectors."
    )
    relay_batch_size: int = Field(default=1000, ge=1, le=50_000)
    relay_poll_interval_seconds: float = Field(default=0.02, gt=0, le=10)
    gauge_refresh_seconds: float = Field(
        default=15,
        gt=0,
        le=3600,
        description="How often gauges read from the read models (open tickets by SLA "
        "state, segment sizes) are refreshed.",
    )
    consumer_max_records: int = Field(default=2000, ge=1, le=100_000)
    consumer_batch_timeout_ms: int = Field(default=50, ge=1, le=10_000)
    consumer_fetch_max_wait_ms: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="Longest time the broker may hold a fetch that has no new data yet.",
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server.strip()!r}")
        return value

    @property
    def database_dsn(self) -> str:
        return str(self.database_url)


SettingsT = TypeVar("SettingsT", bound=ServiceSettings)


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """Read the settings from the environment, or exit naming every wrong variable."""
    try:
        return settings_class()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            variable = field if field.startswith("CRM_") else f"CRM_{field.upper()}"
            lines.append(f"  {variable}: {error['msg']} (got {error.get('input')!r})")
        sys.stderr.write("invalid configuration:\n" + "\n".join(lines) + "\n")
        raise SystemExit(2) from None
