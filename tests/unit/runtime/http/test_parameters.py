"""Moments, dates and cursors as the APIs read them (`parameters`, `paging`): strict
ISO 8601 within 1900..2200, and a cursor read back only when it is one a list could
have issued."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from services.runtime.errors import BadRequest
from services.runtime.http.paging import BY_MOMENT, decode_cursor, encode_cursor
from services.runtime.http.parameters import Day, Moment, control_character_in

MOMENT = TypeAdapter(Moment)
DAY = TypeAdapter(Day)


@pytest.mark.parametrize(
    "text",
    [
        "0.5",
        "1767225600",
        "2026-11-23T00:00:00",  # no offset
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01T00:00:01Z",
        "2026-13-01T00:00:00Z",
    ],
)
def test_a_moment_outside_the_range_or_not_iso_8601_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        MOMENT.validate_python(text)


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        ("2026-11-23T00:00:00+08:00", datetime(2026, 11, 22, 16, tzinfo=UTC)),
        ("2026-11-23T00:00:00Z", datetime(2026, 11, 23, tzinfo=UTC)),
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=UTC)),
    ],
)
def test_a_moment_with_its_offset_is_read(text: str, utc: datetime) -> None:
    assert MOMENT.validate_python(text) == utc


@pytest.mark.parametrize("text", ["0", "1767225600", "0001-01-01", "9999-12-31", "2026-1-1"])
def test_a_date_outside_the_range_or_not_iso_8601_is_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        DAY.validate_python(text)


def test_a_date_is_read() -> None:
    assert DAY.validate_python("2026-11-23") == date(2026, 11, 23)


def test_an_issued_cursor_reads_back() -> None:
    moment, key = datetime(2026, 1, 1, tzinfo=UTC), uuid.uuid4()
    assert decode_cursor(encode_cursor(moment, key), BY_MOMENT) == (moment, key)


@pytest.mark.parametrize(
    ("values", "types"),
    [
        (["2026-01-01T00:00:00+00:00", 1], BY_MOMENT),
        (["0001-01-01T00:00:00+00:00", str(uuid.uuid4())], BY_MOMENT),
        (["9999-12-31T23:59:59+00:00", str(uuid.uuid4())], BY_MOMENT),
        (["9999-12-31T23:59:59-14:00", str(uuid.uuid4())], BY_MOMENT),
        (["0001-01-01"], (date,)),
        (["\ud800", str(uuid.uuid4())], (str, uuid.UUID)),
        (["a\x1bb", str(uuid.uuid4())], (str, uuid.UUID)),
        (["NaN"], (Decimal,)),
        (["1e400"], (Decimal,)),
        ([2**63], (int,)),
        ([True], (int,)),
    ],
)
def test_a_cursor_no_list_issued_answers_400(values: list[Any], types: tuple[type, ...]) -> None:
    forged = base64.urlsafe_b64encode(json.dumps(values).encode()).decode()
    with pytest.raises(BadRequest, match="not one this service issued"):
        decode_cursor(forged, types)


@pytest.mark.parametrize(
    ("path", "query", "where"),
    [
        ("/customers", b"name=a%00b", "the query parameter 'name'"),
        ("/customers", b"a%1B=1", "the query parameter 'a\\x1b'"),
        ("/segments/a\x00", b"", "the path"),
        ("/customers", b"name=%E5%8D%8E&x=%7F", "the query parameter 'x'"),
    ],
)
def test_control_characters_are_found_where_they_are(path: str, query: bytes, where: str) -> None:
    assert control_character_in({"path": path, "query_string": query}) == where


def test_plain_text_in_any_script_passes() -> None:
    scope = {"path": "/customers", "query_string": "name=华信&tag=a b".encode()}
    assert control_character_in(scope) is None
