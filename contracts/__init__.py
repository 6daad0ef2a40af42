"""Public event contracts of the CRM: the envelope, every event payload, and topic names.

Other systems depend on this package alone (`pip install ./contracts`, distribution
`crm-contracts`); it holds no service code and needs only pydantic (it uses orjson
when installed).

    import contracts
    from contracts.customer import CustomerRegistered

    event = contracts.build_envelope(
        CustomerRegistered(name="上海华信贸易有限公司", kind="business"),
        customer_id=customer_id,
        producer="my-system",
    )
    raw = contracts.serialize_event(event)           # bytes for Kafka, key: customer id
    again = contracts.parse_event(raw)               # typed envelope, or ContractViolation

Event models live in `contracts.customer`, `contracts.sales`, `contracts.interaction`
and `contracts.analytics` (value types of the last two in `contracts.sales_values` and
`contracts.interaction_values`); `contracts.all_event_models()` lists them and
`contracts.payload_model(event_type, version)` finds one. `contracts.Topic` names every
topic; `contracts.inbound_models()` gives the document each inbound topic carries (in
`contracts.inbound`).
JSON Schema files are in `contracts/schemas/`, the AsyncAPI document in
`contracts/asyncapi.json`.
"""

__version__ = "1.0.0"

from contracts.envelope import (
    EventEnvelope,
    EventPayload,
    build_envelope,
    example_envelope,
)
from contracts.references import CustomerHint, CustomerReference
from contracts.registry import (
    ContractViolation,
    all_event_models,
    events_by_topic,
    inbound_models,
    parse_event,
    payload_model,
    serialize_event,
    topic_of,
)
from contracts.topics import Topic

__all__ = [
    "ContractViolation",
    "CustomerHint",
    "CustomerReference",
    "EventEnvelope",
    "EventPayload",
    "Topic",
    "__version__",
    "all_event_models",
    "build_envelope",
    "events_by_topic",
    "example_envelope",
    "inbound_models",
    "parse_event",
    "payload_model",
    "serialize_event",
    "topic_of",
]
