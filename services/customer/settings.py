"""Configuration of the customer service (see `ServiceSettings` for the shared part)."""

from services.runtime.settings import ServiceSettings, port_setting


class CustomerSettings(ServiceSettings):
    http_port: int = port_setting("customer", 8001)
