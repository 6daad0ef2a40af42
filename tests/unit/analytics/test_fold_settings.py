"""The fold's consumer takes its settings: how many facts one transaction folds, how many
profiles stay in memory."""

from __future__ import annotations

from typing import Any, cast

import pytest

from services.analytics.service import fold
from services.customer.projections import CustomerDirectory
from services.runtime.messaging.projection import ProjectionHandler


def test_the_fold_applies_as_many_facts_per_transaction_as_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRM_ANALYTICS_FOLD_MAX_RECORDS", "1234")
    monkeypatch.setenv("CRM_ANALYTICS_PROFILE_CACHE_SIZE", "77")
    projection = fold()
    assert ProjectionHandler(projection, cast(Any, None)).max_records == 1234
    assert projection.cache.capacity == 77
    # a projection that does not say takes CRM_CONSUMER_MAX_RECORDS (the runtime's default)
    assert ProjectionHandler(CustomerDirectory(), cast(Any, None)).max_records is None


def test_a_fold_transaction_size_out_of_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_ANALYTICS_FOLD_MAX_RECORDS", "0")
    with pytest.raises(ValueError, match="CRM_ANALYTICS_FOLD_MAX_RECORDS"):
        fold()
