"""`python -m services.interaction`: runs the interaction service."""

from services.interaction.service import DEFINITION
from services.interaction.settings import InteractionSettings
from services.runtime.service import run_service
from services.runtime.settings import load_settings


def main() -> None:
    settings = load_settings(InteractionSettings)
    run_service(DEFINITION, settings, settings.http_port)


if __name__ == "__main__":
    main()
