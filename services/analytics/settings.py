"""Configuration of the analytics service (see `ServiceSettings` for the shared part).

- `CRM_ANALYTICS_PORT` (8004).
- `CRM_ANALYTICS_REPORTING_CURRENCY` (CNY): the one currency of every figure.
- `CRM_ANALYTICS_EXCHANGE_RATES`: JSON object overriding the fixed table of
  `services.analytics.domain.money.DEFAULT_RATES` (CNY per unit), e.g. `{"USD": "7.10"}`.
- `CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS` (2): how often the RFM boundaries are moved to
  the current population when purchases arrived.
- `CRM_ANALYTICS_HISTORY_QUIET_SECONDS` (10): how long the fold, caught up, must have
  folded no fact of the past before the wall clock is its event time again
  (`projections.maintenance.live_watermark`).
- `CRM_ANALYTICS_SWEEP_INTERVAL_SECONDS` (3600): how often every customer is evaluated
  again for the rules that depend on the date (lifecycle, days since, churn thresholds).
- `CRM_ANALYTICS_FIT_INTERVAL_SECONDS` (86400): how often the lifetime value models are
  fitted again over the current population (also on request, `POST /models/fit`).
- `CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS` (60): how often the ledger of predictions
  records churn warnings and people's predictions and settles what came due.
- `CRM_ANALYTICS_VALUE_HORIZON_DAYS` (365) and `CRM_ANALYTICS_ANNUAL_DISCOUNT_RATE`
  (0.10): lifetime value is the expected revenue over the horizon, discounted at the rate.
- `CRM_ANALYTICS_PROFILE_CACHE_SIZE` (100000): profiles the fold keeps in memory between
  batches, so as not to read back what it wrote (about 2 KB each; 0 keeps none).
- The segment and satisfaction gauges are refreshed every `CRM_GAUGE_REFRESH_SECONDS`
  (15), like every service's read-model gauges.
"""

from datetime import timedelta
from decimal import Decimal

from pydantic import Field, field_validator

from services.analytics.domain.money import DEFAULT_RATES, Converter
from services.analytics.domain.predictions import Valuation
from services.runtime.settings import ServiceSettings, port_setting


class AnalyticsSettings(ServiceSettings):
    http_port: int = port_setting("analytics", 8004)
    analytics_reporting_currency: str = Field(
        default="CNY",
        validation_alias="CRM_ANALYTICS_REPORTING_CURRENCY",
        description="The one currency every amount is reported in (one of the rates table).",
    )
    analytics_exchange_rates: dict[str, Decimal] = Field(
        default_factory=dict,
        validation_alias="CRM_ANALYTICS_EXCHANGE_RATES",
        description='Overrides of the fixed table of rates (CNY per unit), e.g. `{"USD": "7.10"}`.',
    )
    analytics_rescore_interval_seconds: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        validation_alias="CRM_ANALYTICS_RESCORE_INTERVAL_SECONDS",
        description="How often the RFM boundaries are moved to the current population "
        "when purchases arrived.",
    )
    analytics_history_quiet_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        validation_alias="CRM_ANALYTICS_HISTORY_QUIET_SECONDS",
        description="How long the fold, caught up, must have folded no fact of the past "
        "(one that occurred five minutes or more before) before the wall clock is its "
        "event time again: a history whose loading pauses for less than this is folded "
        "as one history.",
    )
    analytics_sweep_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        validation_alias="CRM_ANALYTICS_SWEEP_INTERVAL_SECONDS",
        description="How often every customer is evaluated again for what depends on the "
        "date (lifecycle, days since, churn thresholds).",
    )
    analytics_fit_interval_seconds: float = Field(
        default=86_400.0,
        gt=0,
        le=30 * 86_400,
        validation_alias="CRM_ANALYTICS_FIT_INTERVAL_SECONDS",
        description="How often the lifetime value models are fitted again over the current "
        "population (the latest fit, by any replica or on request, counts).",
    )
    analytics_ledger_interval_seconds: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        validation_alias="CRM_ANALYTICS_LEDGER_INTERVAL_SECONDS",
        description="How often the ledger of predictions records churn warnings and the "
        "predictions people recorded on activities, and settles every prediction that came "
        "due.",
    )
    analytics_value_horizon_days: float = Field(
        default=365.0,
        gt=0,
        le=3650,
        validation_alias="CRM_ANALYTICS_VALUE_HORIZON_DAYS",
        description="The horizon of lifetime value, in days.",
    )
    analytics_annual_discount_rate: float = Field(
        default=0.10,
        ge=0,
        le=1,
        validation_alias="CRM_ANALYTICS_ANNUAL_DISCOUNT_RATE",
        description="The annual rate lifetime value discounts future revenue at (0.10 is 10 %).",
    )
    analytics_profile_cache_size: int = Field(
        default=50_000,
        ge=0,
        le=10_000_000,
        validation_alias="CRM_ANALYTICS_PROFILE_CACHE_SIZE",
        description="Profiles the fold keeps in memory between batches (about 2.5 KB each; "
        "0 keeps none): with 50,000 the folding process stays under 400 MB whatever the "
        "population (`crm bench fold-memory`).",
    )
    analytics_fold_max_records: int = Field(
        default=10_000,
        ge=1,
        le=100_000,
        validation_alias="CRM_ANALYTICS_FOLD_MAX_RECORDS",
        description="Most facts the fold applies in one transaction. The fold writes each "
        "profile a transaction touches once, with all of its facts there, so larger "
        "transactions write fewer rows when facts arrive interleaved across customers "
        "(`crm bench analytics-fold`: 2,000 to 10,000 took PostgreSQL from 51 to 32-38 µs "
        "per event). It takes what has arrived: at a low rate transactions stay small.",
    )

    @field_validator("analytics_exchange_rates")
    @classmethod
    def _rates_are_known_and_positive(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for currency, rate in value.items():
            if currency not in DEFAULT_RATES:
                raise ValueError(f"unknown currency {currency!r}")
            if rate <= 0:
                raise ValueError(f"the rate of {currency} must be positive")
        return value

    @field_validator("analytics_reporting_currency")
    @classmethod
    def _currency_is_known(cls, value: str) -> str:
        if value not in DEFAULT_RATES:
            raise ValueError(f"unknown currency {value!r}; one of {', '.join(DEFAULT_RATES)}")
        return value

    def converter(self) -> Converter:
        return Converter(self.analytics_reporting_currency, self.analytics_exchange_rates)

    def valuation(self) -> Valuation:
        return Valuation(
            horizon_days=self.analytics_value_horizon_days,
            annual_discount_rate=self.analytics_annual_discount_rate,
        )

    @property
    def fit_interval(self) -> timedelta:
        return timedelta(seconds=self.analytics_fit_interval_seconds)
