"""The analytics service's HTTP queries, answered from the fold's tables (JSON; CSV with
`format=csv` where the answer is a list; cursor paging with `limit` and `cursor`): one
module per topic, combined in `router`."""

from __future__ import annotations

from fastapi import APIRouter

from services.analytics.views import (
    churn,
    feed,
    ledger,
    models,
    overview,
    predictions,
    profiles,
    satisfaction,
    segments,
)

router = APIRouter()
for topic in (segments, profiles, satisfaction, churn, overview, feed, models, predictions, ledger):
    router.include_router(topic.router)
