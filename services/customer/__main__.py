"""`python -m services.customer`: runs the customer service."""

from services.customer.service import DEFINITION
from services.customer.settings import CustomerSettings
from services.runtime.service import run_service
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(CustomerSettings)
    run_service(DEFINITION, settings, settings.http_port)


if __name__ == "__main__":
    main()
