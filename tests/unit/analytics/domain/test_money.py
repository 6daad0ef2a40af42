"""Currency conversion with the fixed table (`services.analytics.domain.money`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.analytics.domain.money import Converter


def test_amounts_are_converted_with_the_fixed_table() -> None:
    cny = Converter("CNY")
    assert cny.convert(Decimal("100"), "USD") == Decimal("720.00")
    eur = Converter("EUR")
    assert eur.convert(Decimal("780"), "CNY") == Decimal("100.00")
    assert Converter("CNY", {"USD": Decimal("7")}).convert(Decimal("1"), "USD") == Decimal("7.00")
    with pytest.raises(ValueError, match="XYZ"):
        Converter("XYZ")
