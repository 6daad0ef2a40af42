"""Kafka topic names: defined here once, listed in docs/integration.md."""

from enum import StrEnum


class Topic(StrEnum):
    """Every topic the CRM publishes to or consumes from."""

    CUSTOMER = "crm.customer.events.v1"
    SALES = "crm.sales.events.v1"
    INTERACTION = "crm.interaction.events.v1"
    ANALYTICS = "crm.analytics.events.v1"
    PURCHASES_INBOUND = "crm.inbound.purchases.v1"
    CALL_LOGS_INBOUND = "crm.inbound.call-logs.v1"
    MESSAGES_INBOUND = "crm.inbound.messages.v1"
    SURVEY_ANSWERS_INBOUND = "crm.inbound.survey-answers.v1"
    DEAD_LETTER = "crm.dead-letter.v1"

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    Topic.CUSTOMER: "Every change to a customer record, keyed by customer id.",
    Topic.SALES: "Opportunities, activities, quotes, contracts, payments and purchases, "
    "keyed by customer id.",
    Topic.INTERACTION: "Interactions, tickets, complaints, surveys and contact plans, "
    "keyed by customer id.",
    Topic.ANALYTICS: "Conclusions of the analytics service: segment changes, churn "
    "warnings, predictions and how they held, keyed by customer id.",
    Topic.PURCHASES_INBOUND: "Completed purchases published by shops, ERP and billing systems.",
    Topic.CALL_LOGS_INBOUND: "Call logs published by the call centre.",
    Topic.MESSAGES_INBOUND: "Messages (SMS, chat, WeChat, email) published by the "
    "messaging gateway.",
    Topic.SURVEY_ANSWERS_INBOUND: "Survey answers published by the survey tool.",
    Topic.DEAD_LETTER: "Messages a consumer could not parse or apply: original bytes, "
    "reason and source in the headers.",
}


INBOUND_TOPICS = frozenset(
    {
        Topic.PURCHASES_INBOUND,
        Topic.CALL_LOGS_INBOUND,
        Topic.MESSAGES_INBOUND,
        Topic.SURVEY_ANSWERS_INBOUND,
    }
)
"""The topics other systems publish to, in plain text, as they know their customers."""
