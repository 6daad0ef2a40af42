"""`python -m services.sales`: runs the sales service."""

from services.runtime.service import run_service
from services.runtime.settings import load_settings
from services.sales.service import DEFINITION
from services.sales.settings import SalesSettings


def main() -> None:
    settings = load_settings(SalesSettings)
    run_service(DEFINITION, settings, settings.http_port)


if __name__ == "__main__":
    main()
