"""What a merge into a customer, and its undoing, do to the customer's directory row.

The absorbed customers' rows stay as they were; the directory's alias table
(`services.runtime.customer_aliases`) leads from them to the survivor.
"""

from __future__ import annotations

from typing import Any

from contracts.envelope import EventEnvelope

Row = dict[str, Any]

CLASSIFICATIONS = ("importance_tier", "loyalty_stage", "value_behaviour", "relationship_level")


def fold_merge(row: Row, event: EventEnvelope[Any]) -> Row:
    """The survivor's row after `customer.absorbed` or `customer.absorption_undone`."""
    payload = event.payload
    row = dict(row)
    profile = payload.profile.model_dump(mode="json")
    for name in payload.profile.changed:
        row[name] = profile.get(name)
    if payload.classification is not None:
        values = payload.classification.model_dump(mode="json")
        row.update({name: values.get(name) for name in CLASSIFICATIONS})
    if payload.channel_preferences is not None:
        row["preferred_channels"] = [c.value for c in payload.channel_preferences.preferred]
        row["opted_out_channels"] = [c.value for c in payload.channel_preferences.opted_out]
    if event.event_type == "customer.absorbed":
        row["contacts"] = [*row["contacts"], *(c.model_dump(mode="json") for c in payload.contacts)]
        row["addresses"] = [
            *row["addresses"],
            *(a.model_dump(mode="json") for a in payload.addresses),
        ]
        row["tags"] = [*row["tags"], *(t for t in payload.tags if t not in row["tags"])]
        references = [r.model_dump(mode="json") for r in payload.references]
        row["customer_references"] = [
            *row["customer_references"],
            *(r for r in references if r not in row["customer_references"]),
        ]
    else:
        removed = [r.model_dump(mode="json") for r in payload.removed_references]
        row["contacts"] = [
            c for c in row["contacts"] if c["contact_id"] not in payload.removed_contacts
        ]
        row["addresses"] = [
            a for a in row["addresses"] if a["label"] not in payload.removed_addresses
        ]
        row["tags"] = [t for t in row["tags"] if t not in payload.removed_tags]
        row["customer_references"] = [r for r in row["customer_references"] if r not in removed]
    return row
