"""HTTP queries of the interaction service, answered from its projections (JSON and CSV)."""

from services.interaction.views.routes import router

__all__ = ["router"]
