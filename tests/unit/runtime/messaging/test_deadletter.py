"""The dead letter of a message: whole when it fits, a marked prefix when it does not."""

from __future__ import annotations

import pytest
from aiokafka.structs import ConsumerRecord

from services.runtime.messaging.deadletter import PREFIX_BYTES, Rejection, dead_letter

LIMIT = 1_048_576


def rejection(value: bytes, headers: list[tuple[str, bytes]] | None = None) -> Rejection:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="crm.purchases.inbound.v1",
        partition=2,
        offset=41,
        timestamp=0,
        timestamp_type=0,
        key=b"order-7",
        value=value,
        checksum=None,
        serialized_key_size=7,
        serialized_value_size=len(value),
        headers=headers or [],
    )
    return Rejection(record, "malformed JSON", "expected a JSON object")


def headers_of(letter_headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {k: v.decode() for k, v in letter_headers}


def test_a_message_that_fits_is_kept_byte_for_byte_with_the_reason() -> None:
    letter = dead_letter(rejection(b"{oops", [("traceparent", b"00-ab")]), "sales", "p", LIMIT)
    assert (letter.key, letter.value) == (b"order-7", b"{oops")
    headers = headers_of(letter.headers)
    assert headers["traceparent"] == "00-ab"
    assert headers["dlq.reason"] == "malformed JSON"
    assert "dlq.truncated" not in headers


@pytest.mark.parametrize("size", [LIMIT, LIMIT * 5, LIMIT * 50])
def test_an_oversized_message_becomes_a_prefix_that_fits_and_says_where_the_rest_is(
    size: int,
) -> None:
    value = b"x" * size
    big_header = [("note", b"y" * LIMIT)]
    letter = dead_letter(
        rejection(value, [("traceparent", b"00-ab"), *big_header]), "s", "p", LIMIT
    )
    assert letter.size <= LIMIT
    assert letter.value == value[:PREFIX_BYTES]
    headers = headers_of(letter.headers)
    assert headers["dlq.truncated"] == "true"
    assert headers["dlq.original_bytes"] == str(size)
    assert (headers["dlq.source_topic"], headers["dlq.source_partition"]) == (
        "crm.purchases.inbound.v1",
        "2",
    )
    assert headers["dlq.source_offset"] == "41"
    assert headers["traceparent"] == "00-ab", "the small original headers are kept"
    assert "note" not in headers, "an original header too large to fit is left out"
