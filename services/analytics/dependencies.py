"""FastAPI dependencies shared by the analytics routes: the application (segment
definitions), the pool for the views' queries, and the service's settings (the reporting
currency every figure is in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.analytics.application import AnalyticsApplication
from services.analytics.settings import AnalyticsSettings
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime

__all__ = ["App", "Pool", "ReportingCurrency", "analytics_settings"]

Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]


def analytics_application(rt: Runtime) -> AnalyticsApplication:
    assert isinstance(rt.application, AnalyticsApplication)
    return rt.application


def analytics_settings(rt: Runtime) -> AnalyticsSettings:
    """The running service's settings; the defaults when it was built with the shared
    settings only (as the route tests build every service)."""
    settings = rt.settings
    return settings if isinstance(settings, AnalyticsSettings) else AnalyticsSettings()


def reporting_currency(settings: Annotated[AnalyticsSettings, Depends(analytics_settings)]) -> str:
    return settings.analytics_reporting_currency


App = Annotated[AnalyticsApplication, Depends(analytics_application)]
Pool = DatabasePool
ReportingCurrency = Annotated[str, Depends(reporting_currency)]
"""A route parameter carrying the currency of every figure (`CRM_ANALYTICS_REPORTING_CURRENCY`)."""
