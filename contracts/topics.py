"""Kafka topic names: defined here once, listed in the README."""

from enum import StrEnum


class Topic(StrEnum):
    """Every topic the CRM publishes to or consumes from."""

    CUSTOMER = "crm.customer.events.v1"
    DEAD_LETTER = "crm.dead-letter.v1"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Topic.CUSTOMER: "Every change to a customer record, keyed by customer id.",
    Topic.DEAD_LETTER: "Messages a consumer could not parse or apply: original bytes, "
    "reason and source in the headers.",
}
