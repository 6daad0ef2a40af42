"""What the analytics fold reads of each event: its tolerant reader (`contracts.tolerant`).

The fold validates exactly these fields, with their contracts' types and validators; a
message it cannot read (a field it reads is missing or refused) goes to the dead-letter
topic with the reason, and a field it does not read may hold anything. Event types not
listed here are validated as envelopes only (the fold reads nothing of their payload).

`tests/integration/test_analytics_reads.py` folds every example of every contract on the
fold's topics and checks that each payload field the fold touched is listed here.
"""

from __future__ import annotations

from contracts.tolerant import TolerantReader
from services.analytics.domain.profile import CUSTOMER_FIELDS

ENVELOPE_READS = ("aggregate_id", "aggregate_version", "occurred_at", "recorded_at")
"""Beside the event's id, type, version and customer (`contracts.tolerant.ENVELOPE_ALWAYS`)."""

_TICKET_OPENED = ("kind", "channel", "category", "severity", "subject", "opened_at")
_ACTIVITY = ("opportunity_id", "activity_id", "kind", "owner", "predicted_result")

PAYLOAD_READS: dict[str, tuple[str, ...]] = {
    # the profile (`domain.profile.apply`), the contact persons and consent (`details`)
    "customer.registered": (
        *CUSTOMER_FIELDS,
        "classification",
        "tags",
        "contacts",
        "channel_preferences",
    ),
    "customer.profile_changed": ("changed", *CUSTOMER_FIELDS),
    "customer.classified": ("classification",),
    "customer.tagged": ("tags",),
    "customer.untagged": ("tag",),
    "customer.contact_added": ("contact",),
    "customer.contact_changed": ("contact",),
    "customer.contact_removed": ("contact_id",),
    "customer.channel_preferences_changed": ("channel_preferences",),
    # the merge groups and the alias table (`groups`, `customer_aliases`)
    "customer.merged": ("survivor_id", "merge_id"),
    "customer.unmerged": ("survivor_id", "merge_id"),
    # purchases, contracts, payments (`domain.profile`, `details.SalesRows`)
    "sales.purchase_recorded": ("amount", "currency", "purchase_id", "source"),
    "sales.contract_signed": ("amount", "currency", "signed_on", "contract_id", "opportunity_id"),
    "sales.payment_received": (
        "amount",
        "currency",
        "received_on",
        "payment_id",
        "contract_id",
        "opportunity_id",
    ),
    # opportunities and activities (`details`)
    "sales.opportunity_opened": (
        "stage",
        "products",
        "region",
        "owner",
        "description",
        "expected_amount",
        "currency",
        "expected_close_date",
    ),
    "sales.opportunity_stage_changed": ("from_stage", "to_stage"),
    "sales.opportunity_amount_changed": ("expected_amount", "currency"),
    "sales.opportunity_owner_changed": ("owner",),
    "sales.opportunity_close_date_changed": ("expected_close_date",),
    "sales.activity_planned": (*_ACTIVITY, "scheduled_on"),
    "sales.activity_completed": (*_ACTIVITY, "prediction_held"),
    # contacts, satisfaction, tickets (`domain.profile`, `details`)
    "interaction.logged": ("started_at", "channel", "direction", "subject"),
    "interaction.corrected": ("changed", "started_at", "channel", "direction", "subject"),
    "interaction.survey_answered": ("survey", "answered_at", "csat", "nps", "channel"),
    "interaction.ticket_opened": (*_TICKET_OPENED, "resolution_due_at"),
    "interaction.ticket_assigned": ("assignee",),
    "interaction.ticket_escalated": ("severity", "resolution_due_at"),
    "interaction.ticket_reopened": ("resolution_due_at",),
    "interaction.ticket_resolved": ("resolved_at",),
    # segment definitions (`store.store_rules`)
    "analytics.segment_defined": ("segment", "version", "name", "description", "rule"),
}
"""The payload fields the fold reads, by event type."""

READER = TolerantReader(PAYLOAD_READS, ENVELOPE_READS)
"""Built once, at import: a field named here that its contract lacks fails the import."""
