"""Cleaning of values that come from outside (imported files): pure, no I/O.

Spreadsheets hold what people typed: full-width letters and digits from a Chinese input
method, ideographic and non-breaking spaces, line breaks inside a cell, phone numbers in
every national and international format, e-mail addresses in capitals. Before a value
reaches a customer it is made comparable, so that the same person typed twice is the
same value (and duplicate detection can compare them, `match_keys`):

- text: Unicode NFKC (full-width letters, digits and punctuation to half-width, the
  ideographic space to a space, half-width katakana to the usual ones), whitespace of
  every kind collapsed to one space and trimmed, empty to None. A control character
  (C0 other than tab and line breaks, DEL, C1, a lone surrogate) is refused: it is
  invisible, garbles exports, and PostgreSQL cannot store NUL;
- e-mail addresses: cleaned as text, case-folded, and checked by `email-validator`
  (syntax only, no DNS);
- phone numbers: cleaned as text and parsed by `phonenumbers` (the port of Google's
  libphonenumber) with a default region for numbers without a country code, kept in
  E.164 (`+8613800138000`) when they are valid numbers of their region.

A refused value raises `Refused` with a reason from `REASONS` (a fixed set, so that it can
label metrics) and a detail naming the field and the value.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable

import phonenumbers
from pydantic_core import PydanticCustomError

from contracts.values import valid_email

REASONS = (
    "malformed row",
    "bad encoding",
    "control character",
    "too long",
    "missing field",
    "unknown value",
    "bad email",
    "bad phone",
    "invalid value",
    "rule violated",
    "erased customer",
)
"""Why a row is refused: the `reason` of a report line and the label of the metric."""

TEXT_LIMIT = 200
"""The longest text most customer fields hold (`contracts.customer.ShortText`)."""

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
"""Control characters other than tab and line breaks (which are whitespace here), and
lone surrogates (not encodable in UTF-8)."""


class Refused(ValueError):
    """A value that cannot be imported: `reason` (one of `REASONS`) and `detail`."""

    def __init__(self, reason: str, detail: str) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail

    def __reduce__(self) -> tuple[type[Refused], tuple[str, str]]:
        # an import's rows travel to its worker processes with their refusals
        return (Refused, (self.reason, self.detail))


def clean_text(raw: str | None, field: str, limit: int = TEXT_LIMIT) -> str | None:
    """`raw` made half-width, its whitespace collapsed; None when nothing is left."""
    if raw is None:
        return None
    control = _CONTROL.search(raw)
    if control is not None:
        raise Refused(
            "control character",
            f"{field} holds the control character U+{ord(control[0]):04X} at position "
            f"{control.start() + 1}",
        )
    text = " ".join(unicodedata.normalize("NFKC", raw).split())
    if not text:
        return None
    if len(text) > limit:
        raise Refused("too long", f"{field} has {len(text)} characters; at most {limit} fit")
    return text


def clean_email(raw: str, field: str) -> str | None:
    """The address trimmed, half-width and case-folded; `Refused` when it is none."""
    text = clean_text(raw, field, limit=254)
    if text is None:
        return None
    try:
        return valid_email(text.casefold())
    except PydanticCustomError as exc:
        reason = (exc.context or {}).get("reason", exc.message())
        raise Refused(
            "bad email", f"{field} {raw.strip()!r} is not an e-mail address: {reason}"
        ) from None


def clean_phone(raw: str, region: str, field: str) -> str | None:
    """The number in E.164; `region` (ISO 3166 alpha-2) for numbers without a country
    code. `Refused` when it is not a valid number."""
    text = clean_text(raw, field, limit=40)
    if text is None:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise Refused(
            "bad phone", f"{field} {raw.strip()!r} is not a phone number: {exc}"
        ) from None
    if not phonenumbers.is_valid_number(number):
        raise Refused(
            "bad phone",
            f"{field} {raw.strip()!r} is not a valid phone number (default region {region})",
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def split_values(raw: str | None, separators: str) -> list[str]:
    """The values of a cell that holds several: split at any of `separators` (and their
    full-width forms), at line breaks, and at the ideographic comma `、` where `,`
    separates; each trimmed, empty ones left out."""
    if raw is None:
        return []
    text = unicodedata.normalize("NFKC", raw)
    return [part.strip() for part in _splitter(separators).split(text) if part.strip()]


@functools.lru_cache(maxsize=64)
def _splitter(separators: str) -> re.Pattern[str]:
    breaks = set(separators) | {"\n", "\r"}
    if "," in breaks:
        breaks.add("、")
    return re.compile("[" + "".join(re.escape(c) for c in sorted(breaks)) + "]")


def match_keys(emails: Iterable[str], phones: Iterable[str], region: str) -> list[str]:
    """The exact-match keys of a person's details, `email:<address>` and `phone:<E.164>`,
    sorted and each once: two records sharing a key name the same person (what duplicate
    detection compares). Values that do not clean give no key."""
    keys: set[str] = set()
    for email in emails:
        try:
            if cleaned := clean_email(email, "email"):
                keys.add(f"email:{cleaned}")
        except Refused:
            continue
    for phone in phones:
        try:
            if cleaned := clean_phone(phone, region, "phone"):
                keys.add(f"phone:{cleaned}")
        except Refused:
            continue
    return sorted(keys)


def full_width(text: str) -> str:
    """`text` as a Chinese input method in full-width mode types it (ASCII letters, digits
    and punctuation as their full-width forms, the space as the ideographic space): what
    `clean_text` undoes; for generated files and tests."""
    return "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text
    )
