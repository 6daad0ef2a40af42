"""Where everything `crm up` starts listens: the host, each server's port (from the
environment), the services this checkout has, and the database it creates."""

import os
from dataclasses import dataclass
from pathlib import Path

HOST = "127.0.0.1"
DATABASE = "crm"


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_variable: str
    default_port: int

    @property
    def port(self) -> int:
        return env_port(self.port_variable, self.default_port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


SERVICES = (
    ServiceSpec("customer", "CRM_CUSTOMER_PORT", 8001),
    ServiceSpec("sales", "CRM_SALES_PORT", 8002),
    ServiceSpec("interaction", "CRM_INTERACTION_PORT", 8003),
    ServiceSpec("analytics", "CRM_ANALYTICS_PORT", 8004),
)
POSTGRES_PORT = ("CRM_POSTGRES_PORT", 5432)
KAFKA_PORT = ("CRM_KAFKA_PORT", 9092)


class UpError(Exception):
    """`crm up` cannot go on; the message says why and what to do."""


def env_port(variable: str, default: int) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise UpError(f"{variable}={raw!r} is not a TCP port number (1-65535)")
    return int(raw)


def available_services() -> list[ServiceSpec]:
    """The services that exist in this checkout: those with a `__main__.py`."""
    import services

    root = Path(services.__file__).parent
    return [spec for spec in SERVICES if (root / spec.name / "__main__.py").is_file()]
