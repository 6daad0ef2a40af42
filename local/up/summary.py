"""What `crm up` prints once everything is up: each service's addresses, a bearer token
per role, the database, the broker and its topics, and where the logs are."""

from pathlib import Path
from typing import TYPE_CHECKING

from local.up.layout import DATABASE, HOST, SERVICES, ServiceSpec

if TYPE_CHECKING:
    from local.embedded.broker import EmbeddedBroker
    from local.embedded.postgres import EmbeddedPostgres


def summary(
    services: list[ServiceSpec],
    *,
    elapsed: float,
    postgres: "EmbeddedPostgres",
    broker: "EmbeddedBroker",
    data_dir: Path,
    logs_dir: Path,
    tokens: dict[str, str],
) -> str:
    """The text printed once `services` are ready, `elapsed` seconds after the start."""
    from contracts.topics import Topic
    from local.embedded.postgres import postgres_bin_dir

    missing = [s.name for s in SERVICES if s not in services]
    lines = ["", f"CRM is up ({elapsed:.1f}s). Press Ctrl-C to stop everything.", ""]

    def row(label: str, value: object, *, sub: bool = False) -> str:
        return f"    {label:<17} {value}" if sub else f"  {label:<19} {value}"

    for spec in services:
        lines += [
            row(f"{spec.name} service", spec.url),
            row("API docs", f"{spec.url}/docs", sub=True),
            row("OpenAPI", f"{spec.url}/openapi.json", sub=True),
            row("metrics", f"{spec.url}/metrics", sub=True),
            row("readiness", f"{spec.url}/health/ready", sub=True),
        ]
    if missing:
        lines.append(row("not built yet", ", ".join(missing)))
    lines += _token_lines(services, data_dir, tokens)
    psql = postgres_bin_dir() / "psql"
    lines += [
        "",
        row("PostgreSQL", postgres.dsn(DATABASE)),
        row("data", f"{postgres.data_dir} (kept; --fresh starts over)", sub=True),
        row("log", postgres.log_path, sub=True),
        row("psql", f"{psql} {postgres.dsn(DATABASE)}", sub=True),
        row("Kafka bootstrap", broker.bootstrap_servers),
        row(
            "broker",
            "Tansu, in memory: every start republishes the kept event stores",
            sub=True,
        ),
        row("log", broker.log_path, sub=True),
        row("topics", ""),
        *(f"    {topic.value:<31} {topic.description}" for topic in Topic),
        "",
        f"  Service output follows, prefixed with the service name; it is also kept in "
        f"{logs_dir}/<service>.log",
        "",
    ]
    return "\n".join(lines)


def _token_lines(services: list[ServiceSpec], data_dir: Path, tokens: dict[str, str]) -> list[str]:
    from local.tokens import DEMO_LIFETIME, DEMO_SUBJECTS, SECRET_FILE, TOKENS_FILE

    if not tokens:
        return []
    days = DEMO_LIFETIME.days
    first = services[0].url if services else f"http://{HOST}:8001"
    lines = [
        "",
        f"  Bearer tokens, one per role (valid {days} days; `crm token --role ROLE` mints",
        f"  more; signing secret in {data_dir / SECRET_FILE}):",
    ]
    for role, token in tokens.items():
        lines.append(f"    {role:<14} ({DEMO_SUBJECTS[role]}) {token}")
    lines += [
        f"  They are also in {data_dir / TOKENS_FILE}; try:",
        f"    source {data_dir / TOKENS_FILE}",
        f'    curl -H "Authorization: Bearer $TOKEN" {first}/customers?limit=3',
    ]
    return lines
