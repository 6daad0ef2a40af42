"""Public event contracts of the CRM: the envelope, every event payload, and topic names.

Other systems depend on this package alone; it holds no service code.
"""

from contracts.envelope import EventEnvelope, EventPayload
from contracts.registry import ContractViolation, parse_event, payload_model
from contracts.topics import Topic

__all__ = [
    "ContractViolation",
    "EventEnvelope",
    "EventPayload",
    "Topic",
    "parse_event",
    "payload_model",
]
