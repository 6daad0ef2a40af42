"""HTTP queries of the sales service, answered from its read models (never by replaying
events): the pipeline, analyses, opportunity and purchase lists, contracts and balances.

Aggregated views accept `format=csv`; lists page with `cursor` and export everything that
matches with `/export.csv`. Amounts are strings with their currency; nothing is added
across currencies. What each caller reads is bounded by `dependencies.Visibility`: single
deals by `Visible.deals`, figures by `Visible.figures`.
"""

from services.sales.views.routes import router

__all__ = ["router"]
