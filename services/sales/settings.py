"""Configuration of the sales service (see `ServiceSettings` for the shared part)."""

from services.runtime.settings import ServiceSettings, port_setting


class SalesSettings(ServiceSettings):
    http_port: int = port_setting("sales", 8002)
