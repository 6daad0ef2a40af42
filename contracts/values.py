"""Values every contract field must hold: text that can be stored and shown, and dates
inside the window the CRM keeps.

Every string field of every contract (events, inbound messages) and of every HTTP
request body is `Line` (one line: no control character at all) or `Text` (free text:
tab and line breaks allowed), and every date or date-time field is `Day` or `Moment`:

- **Text** refuses NUL (PostgreSQL cannot store it in `text`), the other C0 controls,
  DEL and the C1 controls (U+0080 to U+009F: invisible, and they garble CSV and
  terminals), and lone surrogates (not UTF-8). Error type `control_character`.
- **Dates** lie between `EARLIEST` (1900-01-01) and `LATEST` (2199-12-31, UTC). Python
  holds the years 1 to 9999 and PostgreSQL far more, but at the edges of Python's range
  a time zone offset or the intervals the projections add and subtract (contact plans of
  up to ten years, service-level due times, the 90-day contact window) leave the range,
  and a value PostgreSQL stores before Christ cannot be read back by the driver. The
  window leaves more than a century of margin on both sides and holds every fact a CRM
  meets (nothing the CRM records happened before 1900). Error type `date_out_of_range`.

What was recorded before these rules (events in the event stores and on the topics) is
still read: under `reading_recorded()` (which `contracts.parse_event` and the services'
translations of stored events use) NUL (and a lone surrogate) reads as U+FFFD, other
control characters stay as they were recorded (PostgreSQL stores them, and a rebuild then
gives the tables it gave before), and dates outside the window read as its nearest bound,
so that a rebuild applies such an event instead of dead-lettering it, and what it stores
can be read back. The edges (HTTP bodies, inbound
messages) validate without it and refuse such values with the field named.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from typing import Annotated, Any, ParamSpec, TypeVar

from pydantic import AfterValidator, AwareDatetime, EmailStr, validate_email
from pydantic.networks import import_email_validator
from pydantic_core import PydanticCustomError

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
FIRST_DAY = EARLIEST.date()
LAST_DAY = LATEST.date()
REPLACEMENT = "\ufffd"
_FIRST_YEAR, _LAST_YEAR = EARLIEST.year, LATEST.year

_CONTROLS = "\x00-\x1f\x7f-\x9f\ud800-\udfff"
_IN_LINE = re.compile(f"[{_CONTROLS}]")
_IN_TEXT = re.compile(f"[{_CONTROLS}]".replace("\x00-\x1f", "\x00-\x08\x0b\x0c\x0e-\x1f"))
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""What PostgreSQL cannot hold in `text` (NUL) or UTF-8 cannot encode (lone surrogates)."""

_reading_recorded: ContextVar[bool] = ContextVar("crm_reading_recorded", default=False)


@contextmanager
def reading_recorded() -> Iterator[None]:
    """Within it, values are read as recorded: repaired rather than refused."""
    token = _reading_recorded.set(True)
    try:
        yield
    finally:
        _reading_recorded.reset(token)


P = ParamSpec("P")
R = TypeVar("R")


def as_recorded(function: Callable[P, R]) -> Callable[P, R]:
    """`function` running under `reading_recorded()` (a translation of stored events)."""

    @functools.wraps(function)
    def reading(*args: P.args, **kwargs: P.kwargs) -> R:
        token = _reading_recorded.set(True)  # as reading_recorded(), without its cost
        try:
            return function(*args, **kwargs)
        finally:
            _reading_recorded.reset(token)

    return reading


def is_reading_recorded() -> bool:
    return _reading_recorded.get()


def _refuse_controls(value: str, pattern: re.Pattern[str], allowed: str) -> str:
    if _reading_recorded.get():
        return _UNSTORABLE.sub(REPLACEMENT, value)
    found = pattern.search(value)
    assert found is not None
    raise PydanticCustomError(
        "control_character",
        "contains the control character U+{code} at position {position}; {allowed}",
        {"code": f"{ord(found.group()):04X}", "position": found.start(), "allowed": allowed},
    )


def one_line(value: str) -> str:
    """`value` if it holds no control character (not even a line break)."""
    # the common case first, and fast (every event parses this): a printable string holds
    # no control character (the converse is not true: U+3000 is not printable)
    if value.isprintable() or _IN_LINE.search(value) is None:
        return value
    return _refuse_controls(value, _IN_LINE, "a single line of text admits none")


def free_text(value: str) -> str:
    """`value` if it holds no control character but tab, line feed and carriage return."""
    if value.isprintable() or _IN_TEXT.search(value) is None:
        return value
    return _refuse_controls(value, _IN_TEXT, "text admits only tab and line breaks")


LINE = AfterValidator(one_line)
"""Append to an `Annotated[str, ...]`: one line of text."""
TEXT = AfterValidator(free_text)
"""Append to an `Annotated[str, ...]`: free text, tab and line breaks allowed."""


def _out_of_range(value: date | datetime) -> PydanticCustomError:
    return PydanticCustomError(
        "date_out_of_range",
        "{value} is outside the dates the CRM holds ({first} to {last})",
        {"value": value.isoformat(), "first": FIRST_DAY.isoformat(), "last": LAST_DAY.isoformat()},
    )


def moment_in_window(value: datetime) -> datetime:
    # the year alone decides all but the first and last: comparing aware date-times
    # converts both to UTC, ten times slower, and every event parses this
    if _FIRST_YEAR < value.year < _LAST_YEAR or EARLIEST <= value <= LATEST:
        return value
    if not _reading_recorded.get():
        raise _out_of_range(value)
    return EARLIEST if value < EARLIEST else LATEST


def day_in_window(value: date) -> date:
    if _FIRST_YEAR < value.year < _LAST_YEAR or FIRST_DAY <= value <= LAST_DAY:
        return value
    if not _reading_recorded.get():
        raise _out_of_range(value)
    return FIRST_DAY if value < FIRST_DAY else LAST_DAY


Line = Annotated[str, LINE]


def _remember_email_domains() -> None:
    """email-validator checks an address's domain (IDNA, each character against UTS #46)
    afresh for every address, which costs more than the rest of the check: the check of a
    domain depends on the domain alone (no DNS here), and the addresses of a file share a
    few, so each domain's is remembered. Should a later release of the library no longer
    check domains through this function, nothing is remembered and nothing changes."""
    module = sys.modules.get("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if check is not None and not hasattr(check, "cache_info"):
        module.validate_email_domain_name = functools.lru_cache(maxsize=1024)(check)  # type: ignore[union-attr]


import_email_validator()
_remember_email_domains()


@functools.lru_cache(maxsize=16384)
def valid_email(value: str) -> str:
    """The address as pydantic's `EmailStr` normalises it (remembered); a
    `PydanticCustomError` saying why when it is not one."""
    return validate_email(value)[1]


class Email(EmailStr):
    """An e-mail address, as pydantic's `EmailStr` checks and normalises it, remembered:
    one address is checked several times on its way (the command or import row, the
    event, the sealing of its personal values), and the check costs more than all else
    an event's validation does."""

    @classmethod
    def _validate(cls, input_value: str, /) -> str:
        return valid_email(input_value)


Text = Annotated[str, TEXT]
Moment = Annotated[AwareDatetime, AfterValidator(moment_in_window)]
"""An ISO 8601 date-time with UTC offset, between `EARLIEST` and `LATEST`."""
Day = Annotated[date, AfterValidator(day_in_window)]
"""An ISO 8601 date between `FIRST_DAY` and `LAST_DAY`."""


def lines_in_json(value: Any) -> Any:
    """`value` (a JSON document) if none of its strings, keys included, holds a control
    character: PostgreSQL's `jsonb` refuses NUL, and none belongs in a rule or a value."""
    if isinstance(value, str):
        return one_line(value)
    if isinstance(value, dict):
        return {one_line(key): lines_in_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [lines_in_json(item) for item in value]
    return value


JSON_LINES = AfterValidator(lines_in_json)
"""Append to an `Annotated[dict[str, Any], ...]`: every string in it is one line."""


def into_window(moment: datetime) -> datetime:
    """`moment` moved into the window: for state a service stored before the window was
    enforced, so that what it computes from it and writes back can be read again."""
    return min(max(moment, EARLIEST), LATEST)
