"""Configuration from environment variables, validated when a service starts.

Every variable starts with `CRM_`. A wrong value stops the service at start-up with a
message naming the variable, rather than failing later.
"""

import sys
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, PostgresDsn, SecretStr, ValidationError, field_validator
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

    # Security of the HTTP APIs (services/runtime/security.py) -----------------------
    auth_secret: SecretStr | None = Field(
        default=None, description="HS256 secret that signs bearer tokens (never logged)."
    )
    auth_secret_file: Path | None = Field(
        default=None, description="File holding the HS256 secret (instead of auth_secret)."
    )
    auth_public_key: SecretStr | None = Field(
        default=None, description="PEM public key verifying RS256 or ES256 tokens."
    )
    auth_public_key_file: Path | None = Field(
        default=None, description="File holding that PEM public key."
    )
    auth_jwks_file: Path | None = Field(
        default=None, description="JSON Web Key Set file; tokens name their key by `kid`."
    )
    auth_issuer: str = Field(default="crm", min_length=1, description="Required `iss`.")
    auth_audience: str = Field(default="crm", min_length=1, description="Required `aud`.")
    auth_leeway_seconds: int = Field(default=30, ge=0, le=600)
    max_body_bytes: int = Field(
        default=1_048_576, ge=1024, le=100 * 1_048_576, description="Largest request body."
    )
    rate_limit_per_minute: int = Field(
        default=1200, ge=0, le=1_000_000, description="Requests per token per minute; 0: no limit."
    )
    # Personal data (services/runtime/keyring.py) --------------------------------------
    keyring_master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte key that wraps every customer's key (never logged).",
    )
    keyring_master_key_file: Path | None = Field(
        default=None, description="File holding that master key (instead of keyring_master_key)."
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, le=1_000_000, description="Requests a token may send at once."
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
