"""One reporting currency: every amount is converted with a fixed table of rates.

`DEFAULT_RATES` gives how many Chinese yuan (CNY) one unit of each supported currency is
worth. They are fixed reference rates (rounded averages of 2024), chosen so that reports
are reproducible: the same events always give the same figures. An operator may replace
any of them with `CRM_ANALYTICS_EXCHANGE_RATES` (a JSON object of the same form). An
amount in currency C is reported as `amount * rate[C] / rate[reporting currency]`,
rounded half-up to 2 decimals, once per purchase or contract; totals add the rounded
amounts.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

DEFAULT_RATES: dict[str, Decimal] = {
    "CNY": Decimal("1"),
    "HKD": Decimal("0.92"),
    "TWD": Decimal("0.22"),
    "MOP": Decimal("0.89"),
    "USD": Decimal("7.20"),
    "EUR": Decimal("7.80"),
    "GBP": Decimal("9.20"),
    "JPY": Decimal("0.048"),
    "KRW": Decimal("0.0053"),
    "SGD": Decimal("5.35"),
    "AUD": Decimal("4.75"),
    "CAD": Decimal("5.25"),
    "CHF": Decimal("8.15"),
    "NZD": Decimal("4.35"),
    "THB": Decimal("0.20"),
    "MYR": Decimal("1.55"),
    "INR": Decimal("0.086"),
    "AED": Decimal("1.96"),
    "RUB": Decimal("0.078"),
    "BRL": Decimal("1.33"),
}
"""CNY per one unit of the currency."""

CENT = Decimal("0.01")


def cents(amount: Decimal) -> Decimal:
    """`amount` rounded half-up to whole cents: how every figure is reported (sums of
    converted amounts are whole cents already; averages and percentiles are not)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class Converter:
    """Converts amounts to the reporting currency."""

    def __init__(self, reporting: str, overrides: Mapping[str, Decimal] | None = None) -> None:
        self.rates = {**DEFAULT_RATES, **(overrides or {})}
        if reporting not in self.rates:
            raise ValueError(f"no exchange rate for the reporting currency {reporting!r}")
        self.reporting = reporting
        self._factors = {c: r / self.rates[reporting] for c, r in self.rates.items()}

    def convert(self, amount: Decimal, currency: str) -> Decimal:
        try:
            factor = self._factors[currency]
        except KeyError:
            raise ValueError(f"no exchange rate for {currency!r}") from None
        return cents(amount * factor)
