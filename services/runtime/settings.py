"""Configuration from environment variables, validated when a service starts.

Every variable starts with `CRM_`. A wrong value stops the service at start-up with a
message naming the variable, rather than failing later.
"""

import sys
from pathlib import Path
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

from pydantic import (
    Field,
    PostgresDsn,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Settings every service shares. Subclasses add their own port and schema."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    database_url: PostgresDsn = Field(
        default=PostgresDsn("postgresql://postgres@127.0.0.1:5432/crm"),
        description="PostgreSQL server and database holding every service's schema. TLS: "
        "add `?sslmode=verify-full&sslrootcert=/path/ca.pem` (and `sslcert`, `sslkey` for "
        "client certificates).",
    )
    database_password_file: Path | None = Field(
        default=None, description="File holding the database password (instead of the URL)."
    )
    kafka_bootstrap_servers: str = Field(
        default="127.0.0.1:9092", description="Comma-separated host:port list of brokers."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How clients reach the brokers: TLS, SASL, or both."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; needs a `SASL_*` security protocol."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (never logged)."
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="File holding the SASL password (instead of the variable)."
    )
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle that signs the brokers' certificates (PEM)."
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate for mutual TLS (PEM)."
    )
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Its private key (PEM).")
    kafka_max_message_bytes: int = Field(
        default=1_048_576,
        ge=65_536,
        le=64 * 1_048_576,
        description="Largest message the services produce (relay, dead letters); at most the "
        "brokers' `message.max.bytes`. A larger inbound message is dead-lettered truncated.",
    )
    http_host: str = Field(
        default="127.0.0.1", description="Address the HTTP API listens on (`0.0.0.0`: all)."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Least severe log level written."
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json: one object per line, for log collectors."
    )
    relay_batch_size: int = Field(
        default=1000, ge=1, le=50_000, description="Events the outbox relay publishes per batch."
    )
    relay_poll_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Longest the outbox relay waits, when it found nothing to publish, "
        "before it looks again without being notified: a notification lost with its "
        "connection delays an event by at most this long.",
    )
    relay_listen: bool = Field(
        default=True,
        description="Whether a PostgreSQL notification from the writer of a new event "
        "wakes the outbox relay at once (false: it only polls, every "
        "`relay_poll_interval_seconds`).",
    )
    gauge_refresh_seconds: float = Field(
        default=15,
        gt=0,
        le=3600,
        description="How often gauges read from the read models (open tickets by SLA "
        "state, segment sizes) are refreshed.",
    )
    consumer_max_records: int = Field(
        default=2000,
        ge=1,
        le=100_000,
        description="Most messages a consumer handles in one batch (one transaction).",
    )
    consumer_batch_timeout_ms: int = Field(
        default=50,
        ge=1,
        le=10_000,
        description="While a batch is being handled, longest a projection consumer waits for "
        "the next messages before it looks whether that batch is done (to commit its "
        "offsets); how often an inbound consumer (a FastStream subscriber) looks for new "
        "messages.",
    )
    consumer_idle_wait_ms: int = Field(
        default=1000,
        ge=1,
        le=60_000,
        description="With nothing to handle, longest a consumer waits for new messages "
        "before it measures its lag again; new messages end the wait at once.",
    )
    consumer_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Longest time the broker may hold a fetch that has no new data yet. "
        "Kafka answers as soon as data arrives, so a long wait costs no latency; the "
        "embedded broker of `crm up` answers only when the wait is over, and the services "
        "`crm up`, the tests and the benchmarks start use 50 there.",
    )

    # Security of the HTTP APIs (services/runtime/http/security.py, authentication.py) ----
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
    auth_leeway_seconds: int = Field(
        default=30, ge=0, le=600, description="Clock skew allowed on a token's `exp`."
    )
    idempotency_window_hours: int = Field(
        default=24,
        ge=1,
        le=24 * 30,
        description="How long a command's `Idempotency-Key` and its answer are kept: a "
        "repeat within it is answered from there.",
    )
    idempotency_takeover_seconds: float = Field(
        default=10,
        ge=1,
        le=3600,
        description="How long a request may hold its `Idempotency-Key` without answering "
        "(its server may have stopped) before a repeat finds out whether it was carried out "
        "and, if not, runs it.",
    )
    erasure_compaction_interval_seconds: float = Field(
        default=3600,
        gt=0,
        le=7 * 86400,
        description="How often the service rewrites its tables and the WAL when customers "
        "were erased since the last time, so that their old row versions leave the disk: "
        "the bound on how long an erased value may stay in the database's files.",
    )
    dead_letter_retention_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description="How long the service keeps what its consumers could not handle "
        "(`crm dead-letters`); they may hold personal data of inbound messages.",
    )
    consumer_stall_seconds: float = Field(
        default=300,
        gt=0,
        description="A consumer behind for this long without handling a batch makes "
        "`/health/live` fail, so that the process is restarted.",
    )
    readiness_max_lag_events: int = Field(
        default=5000,
        ge=0,
        description="Most messages a consumer may be behind while `/health/ready` answers "
        "200 (more than two batches: a consumer handling one while fetching the next stays "
        "ready); once beyond, ready again at half of it. 0: ready only when caught up.",
    )
    readiness_max_stall_seconds: float = Field(
        default=30,
        gt=0,
        description="A consumer behind for this long without handling a batch makes "
        "`/health/ready` answer 503 (sooner than `CRM_CONSUMER_STALL_SECONDS` fails liveness).",
    )
    max_body_bytes: int = Field(
        default=262_144,
        ge=1024,
        le=100 * 1_048_576,
        description="Largest request body; at most a quarter of `kafka_max_message_bytes`, so "
        "that the event it becomes (sealed, in its envelope) fits on the topic.",
    )
    max_upload_bytes: int = Field(
        default=4 * 1_073_741_824,
        ge=1024,
        description="Largest body of an upload route (a path ending in `/upload`, such as a "
        "customer import's file): streamed to a temporary file, never held in memory.",
    )
    rate_limit_per_minute: int = Field(
        default=1200,
        ge=0,
        le=1_000_000,
        description="Requests per token subject per minute; 0: no limit.",
    )
    rate_limit_anonymous_per_minute: int = Field(
        default=120,
        ge=0,
        le=1_000_000,
        description="Requests without a valid token per client address per minute, a "
        "quarter of them at once (each answered 401 until then, 429 after); 0: no limit.",
    )
    http_header_timeout_seconds: float = Field(
        default=10,
        gt=0,
        le=600,
        description="A connection that has not sent a request's complete headers this long "
        "after opening (or after its last answer) is closed.",
    )
    http_idle_timeout_seconds: int = Field(
        default=5,
        gt=0,
        le=600,
        description="A keep-alive connection sending nothing this long after an answer is closed.",
    )
    stream_limit_per_subject: int = Field(
        default=3,
        ge=1,
        le=1000,
        description="Open event streams (`/feed`) per token subject; one more answers 429.",
    )
    stream_limit_total: int = Field(
        default=50,
        ge=1,
        le=100_000,
        description="Open event streams of all callers together; one more answers 429.",
    )
    # Personal data (services/runtime/privacy/keyring.py) --------------------------------------
    keyring_master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte key that wraps every customer's key (never logged).",
    )
    keyring_master_key_file: Path | None = Field(
        default=None, description="File holding that master key (instead of keyring_master_key)."
    )
    rate_limit_burst: int = Field(
        default=200,
        ge=1,
        le=1_000_000,
        description="Requests a token subject may send at once.",
    )
    # Signatures on the internal topics (contracts/signing.py) ------------------------------
    signing_key: SecretStr | None = Field(
        default=None,
        description="Base64 of the 32-byte Ed25519 seed this service signs its topic with "
        "(never logged).",
    )
    signing_key_file: Path | None = Field(
        default=None, description="File holding that signing key (instead of signing_key)."
    )
    signing_trusted_keys: str | None = Field(
        default=None,
        description='Every service\'s public keys, JSON: {"customer": ["<base64>", ...], ...}; '
        "a message on an internal topic not signed by its owner's key is dead-lettered.",
    )
    signing_trusted_keys_file: Path | None = Field(
        default=None,
        description="File holding those public keys (instead of signing_trusted_keys).",
    )

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _servers_have_ports(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"expected host:port, got {server.strip()!r}")
        return value

    @model_validator(mode="after")
    def _transport_is_complete(self) -> Self:
        if self.kafka_sasl_mechanism and not self.kafka_security_protocol.startswith("SASL"):
            raise ValueError("CRM_KAFKA_SASL_MECHANISM needs a SASL_* security protocol")
        if self.kafka_security_protocol.startswith("SASL"):
            if not self.kafka_sasl_mechanism or not self.kafka_sasl_username:
                raise ValueError(
                    "a SASL security protocol needs CRM_KAFKA_SASL_MECHANISM and "
                    "CRM_KAFKA_SASL_USERNAME"
                )
            if (self.kafka_sasl_password is None) == (self.kafka_sasl_password_file is None):
                raise ValueError(
                    "set exactly one of CRM_KAFKA_SASL_PASSWORD, CRM_KAFKA_SASL_PASSWORD_FILE"
                )
        for name in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"CRM_{name.upper()}: no such file: {path}")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("CRM_KAFKA_SSL_CERTFILE and CRM_KAFKA_SSL_KEYFILE go together")
        if self.max_body_bytes * 4 > self.kafka_max_message_bytes:
            raise ValueError(
                "CRM_MAX_BODY_BYTES may be at most a quarter of CRM_KAFKA_MAX_MESSAGE_BYTES, "
                "so that every accepted command's event fits on its topic"
            )
        return self

    @property
    def database_dsn(self) -> str:
        """The database URL, with the password from `database_password_file` if set."""
        if self.database_password_file is None:
            return str(self.database_url)
        password = read_secret(self.database_password_file, "CRM_DATABASE_PASSWORD_FILE")
        parts = urlsplit(str(self.database_url))
        user = parts.username or "postgres"
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
        return urlunsplit(parts._replace(netloc=netloc))

    def kafka_sasl_secret(self) -> str | None:
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return read_secret(self.kafka_sasl_password_file, "CRM_KAFKA_SASL_PASSWORD_FILE")
        return None


def port_setting(service: str, default: int) -> Any:
    """The `http_port` field of a service's settings: `CRM_<SERVICE>_PORT`, `default`
    unless set."""
    return Field(
        default=default,
        ge=1,
        le=65535,
        validation_alias=f"CRM_{service.upper()}_PORT",
        description=f"HTTP port of the {service} service.",
    )


def read_secret(path: Path, variable: str) -> str:
    """A secret kept in a file (trailing newline dropped); a missing file stops start-up."""
    try:
        return path.read_text().rstrip("\n")
    except OSError as exc:
        sys.stderr.write(f"invalid configuration:\n  {variable}: {exc.strerror}: {path}\n")
        raise SystemExit(2) from None


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
