"""Configuration of the customer service (see `ServiceSettings` for the shared part)."""

from pydantic import Field

from services.runtime.settings import ServiceSettings


class CustomerSettings(ServiceSettings):
    http_port: int = Field(
        default=8001,
        ge=1,
        le=65535,
        validation_alias="CRM_CUSTOMER_PORT",
        description="HTTP port of the customer service.",
    )
