"""The directory's search that finds people: a customer by its name, its contact persons'
names, their phone numbers in any format, and their e-mail addresses. Pure; no I/O.

Each directory row keeps `search_text` (`search_text_of`): the names, e-mails and phone
numbers, made comparable (half-width, case-folded; phones in E.164, which holds their
digits), one per line, with a trigram index. A query (`search_patterns`) is matched as
typed (half-width, case-folded), and, when it reads as a phone number, as its E.164 form
and as its digits, so that `138 0013 8000`, `+86-138-0013-8000` and `0086 13800138000`
all find `+8613800138000`, and a part of a number finds it too.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Mapping
from typing import Any

import phonenumbers

from services.runtime.storage.filters import escape_like

_PHONE_LIKE = re.compile(r"^[+(]?[0-9][0-9 ()\-./]*$")
MIN_DIGITS = 4
"""A query of fewer digits is matched as typed only, not as a phone number's part."""


def _comparable(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@functools.lru_cache(maxsize=65_536)
def e164(raw: str, region: str) -> str | None:
    """`raw` as an E.164 number (`region` for numbers without a country code), or None
    when it is not a possible phone number. (Cached: the directory's projection reads a
    changed customer's numbers for its search and for its duplicates.)"""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def search_text_of(row: Mapping[str, Any], region: str) -> str:
    """What a directory row is found by, one value per line."""
    values = [row["name"]]
    for contact in row.get("contacts") or ():
        values.append(contact.get("name") or "")
        values.extend(contact.get("emails") or ())
        for phone in contact.get("phones") or ():
            values.append(e164(phone, region) or phone)
    return "\n".join(dict.fromkeys(v for v in map(_comparable, values) if v))


def search_patterns(query: str, region: str) -> list[str]:
    """The LIKE patterns (with `ESCAPE '\\'`) a row's `search_text` may match for the
    query `query`."""
    text = _comparable(query)
    terms = [text]
    if _PHONE_LIKE.match(text):
        digits = re.sub(r"\D", "", text)
        if len(digits) >= MIN_DIGITS:
            terms.append(digits)
            if (number := e164(text, region)) is not None:
                terms.append(number)
    return [f"%{escape_like(t)}%" for t in dict.fromkeys(terms) if t]
