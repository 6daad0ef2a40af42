"""`python -m services.analytics`: runs the analytics service."""

from services.analytics.service import DEFINITION
from services.analytics.settings import AnalyticsSettings
from services.runtime.service import run_service
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(AnalyticsSettings)
    run_service(DEFINITION, settings, settings.http_port)


if __name__ == "__main__":
    main()
