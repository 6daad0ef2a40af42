"""Amounts of money as every contract and every answer writes them.

An amount is a `Decimal`, written in JSON as a plain decimal string with at least its
currency's minor units: `"120000.00"` for yuan, `"5000"` for yen, `"0.0125"` for a unit
price finer than a cent. Never an exponent (`"1.2E+5"`), never a float. Nothing is
rounded: an amount is only given the scale it is written with, its value unchanged.

The scale is set when a model is made (validated): a `Money` field gets at least two
decimals, as most currencies have; a model that holds a `currency` beside its amounts
derives from `Priced`, which gives them, and those of the lines it holds, that
currency's minor units. Writing is then `format(amount, "f")`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

MINOR_UNITS: dict[str, int] = {"JPY": 0, "KRW": 0, "CLP": 0, "VND": 0, "ISK": 0}
"""ISO 4217 minor units where they are not two."""

DEFAULT_MINOR_UNITS = 2
MAX_DECIMALS = 4
"""The finest amount any contract accepts (a unit price of a fraction of a cent)."""


def minor_units(currency: str | None) -> int:
    return MINOR_UNITS.get(currency or "", DEFAULT_MINOR_UNITS)


def scaled(amount: Decimal, places: int = DEFAULT_MINOR_UNITS) -> Decimal:
    """`amount`, unchanged in value, with at least `places` decimals and no more than its
    value needs beyond them."""
    if not amount.is_finite():
        raise ValueError(f"not an amount: {amount}")
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return amount.quantize(Decimal(1).scaleb(-max(places, -exponent)))


def plain_amount(amount: Decimal, currency: str | None = None) -> str:
    """`amount` as a decimal string with at least the currency's minor units, without
    exponent."""
    return format(scaled(amount, minor_units(currency)), "f")


class _AmountMark:
    """Marks the `Money` fields a `Priced` model scales with its currency."""


AMOUNT = _AmountMark()

_SCALE = AfterValidator(scaled)
_WRITE = PlainSerializer(lambda amount: format(amount, "f"), return_type=str, when_used="json")
_WRITTEN = WithJsonSchema(
    {
        "type": "string",
        "pattern": r"^-?\d+(\.\d{1,4})?$",
        "description": "A decimal string with at least the currency's minor units.",
        "examples": ["120000.00"],
    },
    mode="serialization",
)
_DIGITS = {"max_digits": 18, "decimal_places": MAX_DECIMALS, "allow_inf_nan": False}

Money = Annotated[Decimal, AMOUNT, Field(**_DIGITS), _SCALE, _WRITE, _WRITTEN]
"""An amount: a decimal string in JSON, up to four decimals."""
PositiveMoney = Annotated[Decimal, AMOUNT, Field(gt=0, **_DIGITS), _SCALE, _WRITE, _WRITTEN]
NonNegativeMoney = Annotated[Decimal, AMOUNT, Field(ge=0, **_DIGITS), _SCALE, _WRITE, _WRITTEN]


def _amount_fields(model: type[BaseModel]) -> list[str]:
    """The model's `Money` fields, optional ones (`Money | None`) included."""
    return [
        name
        for name, info in model.model_fields.items()
        if any(m is AMOUNT for m in info.metadata)
        or any(
            any(m is AMOUNT for m in getattr(arg, "__metadata__", ()))
            for arg in get_args(info.annotation)
        )
    ]


def _scale_amounts(model: BaseModel, places: int) -> None:
    """Give the amounts of `model`, and of the models it holds without a currency of their
    own, `places` minor units."""
    for name in _amount_fields(type(model)):
        value = getattr(model, name)
        if isinstance(value, Decimal):
            object.__setattr__(model, name, scaled(value, places))
    for name in type(model).model_fields:
        held = getattr(model, name)
        for item in held if isinstance(held, list) else [held]:
            if isinstance(item, BaseModel) and not isinstance(item, Priced):
                _scale_amounts(item, places)


def _currency_of(model: BaseModel, field: str) -> str | None:
    currency = getattr(model, field, None)
    return getattr(currency, "value", currency)


class Priced(BaseModel):
    """A model with a `currency` field: its amounts, and those of the lines it holds,
    have that currency's minor units; an amount in another currency names its currency
    field in `other_currencies` (e.g. `previous_amount` in `previous_currency`)."""

    other_currencies: ClassVar[dict[str, str]] = {}

    @model_validator(mode="after")
    def _amounts_in_minor_units(self) -> Any:
        places = minor_units(_currency_of(self, "currency"))
        if places != DEFAULT_MINOR_UNITS:
            _scale_amounts(self, places)
        for amount, currency in self.other_currencies.items():
            value = getattr(self, amount, None)
            if isinstance(value, Decimal):
                object.__setattr__(
                    self, amount, scaled(value, minor_units(_currency_of(self, currency)))
                )
        return self
