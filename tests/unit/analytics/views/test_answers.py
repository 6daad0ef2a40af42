"""How the analytics views write amounts, moments and CSV downloads
(`services.analytics.views.answers`)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from contracts.money import Money
from services.analytics.views.answers import Moment, amounts_as_text, csv_of
from services.analytics.views.profiles import OpenOpportunity


class Figure(BaseModel):
    value: Money
    average: Money | None
    share: float
    at: Moment


def test_amounts_are_decimal_strings_with_two_decimals_never_floats_or_exponents() -> None:
    figure = Figure(
        value=Decimal("1.2E+5"),
        average=Decimal("5862.36"),
        share=0.25,
        at=datetime(2026, 6, 30, 12, tzinfo=UTC),
    )
    assert figure.model_dump(mode="json") == {
        "value": "120000.00",
        "average": "5862.36",
        "share": 0.25,
        "at": "2026-06-30T12:00:00+00:00",
    }
    assert Figure(value=Decimal(0), average=None, share=0, at=figure.at).model_dump_json() == (
        '{"value":"0.00","average":null,"share":0.0,"at":"2026-06-30T12:00:00+00:00"}'
    )
    schema = Figure.model_json_schema(mode="serialization")["properties"]
    assert schema["value"]["type"] == "string"
    assert schema["share"]["type"] == "number"


def test_an_opportunity_amount_is_answered_as_the_sales_contract_writes_it() -> None:
    opportunity = OpenOpportunity(
        opportunity_id=uuid.uuid4(),
        description=None,
        stage="qualified",
        expected_amount=Decimal("1200.5050"),
        currency="USD",
        owner="li.na",
        expected_close_date=date(2026, 7, 1),
    )
    assert opportunity.model_dump(mode="json")["expected_amount"] == "1200.505"
    in_yen = opportunity.model_copy(update={"expected_amount": Decimal(5000), "currency": "JPY"})
    assert (
        OpenOpportunity.model_validate(in_yen.model_dump()).model_dump(mode="json")[
            "expected_amount"
        ]
        == "5000"
    )


def test_recorded_values_answer_their_amounts_as_strings_and_keep_the_rest() -> None:
    row: dict[str, Any] = {
        "segment": "tier.top",
        "decided_by": {"total_spend": 300.0, "monetary_score": 5, "average_spend": 1e5},
        "left_because": None,
    }
    answered = amounts_as_text(row, "decided_by", "left_because")
    assert answered["decided_by"] == {
        "total_spend": "300.00",
        "monetary_score": 5,
        "average_spend": "100000.00",
    }
    assert answered["left_because"] is None
    assert row["decided_by"]["total_spend"] == 300.0  # the row itself is left as read


def test_an_empty_csv_download_is_a_csv_file_with_its_header() -> None:
    async def body() -> str:
        response = csv_of([], Figure, "figures.csv")
        return "".join([str(chunk) async for chunk in response.body_iterator])

    assert asyncio.run(body()).splitlines() == ["\ufeffvalue,average,share,at"]
