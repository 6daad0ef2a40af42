"""Configuration of the customer service (see `ServiceSettings` for the shared part)."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.runtime.settings import ServiceSettings, port_setting


def _phone_region() -> str:
    return Field(
        default="CN",
        pattern=r"^[A-Z]{2}$",
        description="Region (ISO 3166-1 alpha-2) of phone numbers written without a country "
        "code, as the directory's search and duplicate detection read them.",
    )


class CustomerSettings(ServiceSettings):
    http_port: int = port_setting("customer", 8001)
    phone_region: str = _phone_region()


class PhoneRegionSetting(BaseSettings):
    """`CRM_PHONE_REGION` alone: what the directory's projection needs wherever it is
    built (the service, `crm rebuild`)."""

    model_config = SettingsConfigDict(env_prefix="CRM_", extra="ignore", frozen=True)

    phone_region: str = _phone_region()


def phone_region() -> str:
    return PhoneRegionSetting().phone_region
