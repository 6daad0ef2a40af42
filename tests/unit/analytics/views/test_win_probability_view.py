"""An open deal as the customer 360 and the list of open deals show it: the stage's
default beside the learned probability and its factors."""

from __future__ import annotations

import uuid
from datetime import date

from contracts.sales_values import DEFAULT_PROBABILITY, Stage
from services.analytics.views.profiles import OpenOpportunity


def deal(stage: str, **learned: object) -> OpenOpportunity:
    return OpenOpportunity.model_validate(
        {
            "opportunity_id": uuid.uuid4(),
            "description": "年度许可",
            "stage": stage,
            "expected_amount": "25980",
            "currency": "CNY",
            "owner": "李娜",
            "expected_close_date": date(2026, 12, 31),
            **learned,
        }
    )


def test_every_open_stage_shows_its_default_beside_the_learned_probability() -> None:
    for stage in ("lead", "qualified", "proposal", "negotiation"):
        # as the table holds a deal no model scored yet
        shown = deal(stage, win_probability=None, win_factors=None, win_model_version=None)
        assert shown.stage_probability == DEFAULT_PROBABILITY[Stage(stage)]
        assert shown.win_probability is None and shown.win_factors == []  # no model yet
    learned = deal(
        "proposal",
        win_probability=0.81,
        win_baseline=0.45,
        win_factors=[{"feature": "region", "level": "华东", "contribution": 1.2}],
        win_model_version=3,
    )
    assert (learned.stage_probability, learned.win_probability) == (50, 0.81)
    assert learned.win_factors[0].level == "华东"
