"""Configuration of the sales service (see `ServiceSettings` for the shared part)."""

from pydantic import Field

from services.runtime.settings import ServiceSettings


class SalesSettings(ServiceSettings):
    http_port: int = Field(
        default=8002,
        ge=1,
        le=65535,
        validation_alias="CRM_SALES_PORT",
        description="HTTP port of the sales service.",
    )
