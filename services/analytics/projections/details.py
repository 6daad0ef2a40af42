"""Detail rows behind the customer 360, the satisfaction views and the purchase trend:
interactions (as corrected), survey answers, tickets, opportunities (with what the win
model reads: region, first product, when opened and closed, the last open stage before
closing, the activities), purchases (won contracts included), contracts with their
payments, and contact persons, from the interaction, sales and customer topics; and the
activities with what the ledger of predictions reads of them (whether the owner
predicted a result, and whether it held). Each row keeps the aggregate version that last
set what may arrive out of order (a status, a stage, a due time, a contact person), so a
late event never undoes a newer one; purchases and payments are facts of their own,
kept once each."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from contracts.envelope import EventEnvelope
from contracts.sales_values import CLOSED_STAGES
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import day_start
from services.analytics.projections.bulk import recordset, rows_json
from services.runtime.privacy.erasure import EMPTY_TEXT_ARRAY, ERASED_TEXT, PersonalColumns

PERSONAL_COLUMNS = (
    PersonalColumns("interactions", {"subject": ERASED_TEXT}),
    PersonalColumns("tickets", {"subject": ERASED_TEXT}),
    PersonalColumns("opportunities", {"description": ERASED_TEXT}),
    PersonalColumns(
        "contacts",
        {"name": ERASED_TEXT, "phones": EMPTY_TEXT_ARRAY, "emails": EMPTY_TEXT_ARRAY},
    ),
)
"""The personal columns of the detail rows; the profile's name is erased by the fold
itself."""

_INTERACTION_COLUMNS = (
    ("interaction_id", "uuid"),
    ("customer_id", "uuid"),
    ("started_at", "timestamptz"),
    ("channel", "text"),
    ("direction", "text"),
    ("subject", "text"),
)
_SURVEY_COLUMNS = (
    ("event_id", "uuid"),
    ("customer_id", "uuid"),
    ("survey", "text"),
    ("answered_at", "timestamptz"),
    ("csat", "smallint"),
    ("nps", "smallint"),
    ("channel", "text"),
)


_DETAILED = (
    "interaction.",
    "sales.",
    "customer.registered",
    "customer.contact_",
    "customer.channel_preferences_changed",
)
"""The event types (by prefix) that make detail rows."""


async def write_details(
    connection: asyncpg.Connection,
    events: Sequence[EventEnvelope[Any]],
    now: datetime,
    converter: Converter,
) -> None:
    """The batch's detail rows, one statement per table, events of one aggregate applied
    in version order."""
    interactions: list[dict[str, Any]] = []
    corrections: dict[UUID, dict[str, Any]] = {}
    surveys: list[dict[str, Any]] = []
    tickets: dict[UUID, dict[str, Any]] = {}
    opportunities: dict[UUID, dict[str, Any]] = {}
    activities: dict[tuple[UUID, str], dict[str, Any]] = {}
    sales = SalesRows()
    contacts: dict[tuple[UUID, str], dict[str, Any]] = {}
    consent: dict[UUID, dict[str, Any]] = {}
    ordered = sorted(
        (e for e in events if e.event_type.startswith(_DETAILED)),
        key=lambda e: e.aggregate_version or 0,
    )
    for event in ordered:
        kind = event.event_type
        p: Any = event.payload
        if kind.startswith("customer."):
            _contact_rows(contacts, event, p)
            _consent_row(consent, event, p)
        elif kind in SALES_FACTS:
            sales.add(event, p, converter)
        elif kind == "interaction.logged":
            interactions.append(
                {"interaction_id": event.aggregate_id, "customer_id": event.customer_id,
                 "started_at": p.started_at, "channel": p.channel.value,
                 "direction": p.direction.value, "subject": p.subject}
            )  # fmt: skip
        elif kind == "interaction.corrected" and event.aggregate_id is not None:
            _correction_row(corrections, event, p)
        elif kind == "interaction.survey_answered":
            surveys.append(
                {"event_id": event.event_id, "customer_id": event.customer_id,
                 "survey": p.survey, "answered_at": p.answered_at, "csat": p.csat,
                 "nps": p.nps, "channel": p.channel.value if p.channel else None}
            )  # fmt: skip
        elif kind.startswith("interaction.ticket_") and event.aggregate_id is not None:
            _ticket_row(tickets, event, p)
        elif kind.startswith("sales.opportunity_") and event.aggregate_id is not None:
            _opportunity_row(opportunities, event, p)
        elif kind in ("sales.activity_planned", "sales.activity_completed"):
            _activity_row(activities, event, p)
    if interactions:
        await connection.execute(
            """INSERT INTO interactions
                   (interaction_id, customer_id, started_at, channel, direction, subject)
               SELECT * FROM """
            + recordset(1, _INTERACTION_COLUMNS)
            + " ON CONFLICT DO NOTHING",
            rows_json(interactions),
        )
    if corrections:
        await _write_corrections(connection, list(corrections.values()))
    if surveys:
        await connection.execute(
            "INSERT INTO surveys (event_id, customer_id, survey, answered_at, csat, nps, channel)"
            " SELECT * FROM " + recordset(1, _SURVEY_COLUMNS) + " ON CONFLICT DO NOTHING",
            rows_json(surveys),
        )
    if tickets:
        await _write_tickets(connection, list(tickets.values()))
    if opportunities:
        await _write_opportunities(connection, list(opportunities.values()), now)
    if activities:
        await _write_activities(connection, list(activities.values()))
    await sales.write(connection)
    if contacts:
        await _write_contacts(connection, list(contacts.values()))
    if consent:
        await _write_consent(connection, list(consent.values()))


_CORRECTED_FIELDS = ("channel", "direction", "started_at", "subject")


def _correction_row(
    corrections: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    """The corrections of one interaction in a batch, merged in version order (the
    events come sorted by version)."""
    assert event.aggregate_id is not None
    row = corrections.setdefault(
        event.aggregate_id,
        {"interaction_id": event.aggregate_id, **dict.fromkeys(_CORRECTED_FIELDS)},
    )
    row["version"] = event.aggregate_version or 1
    for name in _CORRECTED_FIELDS:
        value = getattr(p, name)
        if name in p.changed and value is not None:
            row[name] = getattr(value, "value", value)


async def _write_corrections(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Corrected fields of logged interactions, unless a later version is stored. (A
    correction read before its interaction was logged is not kept: the interaction
    service publishes both on one partition, in order.)"""
    columns = (
        ("interaction_id", "uuid"),
        ("version", "integer"),
        ("channel", "text"),
        ("direction", "text"),
        ("started_at", "timestamptz"),
        ("subject", "text"),
    )
    await connection.execute(
        f"""UPDATE interactions i SET
                {", ".join(f"{c} = coalesce(u.{c}, i.{c})" for c in _CORRECTED_FIELDS)},
                version = u.version
            FROM {recordset(1, columns)}
            WHERE i.interaction_id = u.interaction_id AND i.version < u.version""",
        rows_json(rows),
    )


_TICKET_FIELDS = (
    "ticket_id",
    "customer_id",
    "kind",
    "channel",
    "category",
    "severity",
    "subject",
    "assignee",
    "opened_at",
    "resolved_at",
    "resolution_due_at",
    "due_version",
    "status",
    "status_version",
)
_TICKET_TYPES = (
    ("uuid", "uuid") + ("text",) * 6 + ("timestamptz",) * 3 + ("integer", "text", "integer")
)


def _ticket_row(tickets: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any) -> None:
    assert event.aggregate_id is not None
    version = event.aggregate_version or 1
    row = tickets.setdefault(
        event.aggregate_id,
        {
            **dict.fromkeys(_TICKET_FIELDS),
            "ticket_id": event.aggregate_id,
            "customer_id": event.customer_id,
            "due_version": 0,
            "status": "open",
            "status_version": 0,
        },
    )
    kind = event.event_type.removeprefix("interaction.ticket_")
    if kind == "opened":
        row.update(
            kind=p.kind.value,
            channel=p.channel.value,
            category=p.category,
            severity=p.severity.value,
            subject=p.subject,
            opened_at=p.opened_at,
        )
    if kind == "assigned":
        row["assignee"] = p.assignee
    if kind == "escalated":
        row["severity"] = p.severity.value
    if kind in ("opened", "escalated", "reopened") and version >= row["due_version"]:
        row.update(resolution_due_at=p.resolution_due_at, due_version=version)
    if kind == "resolved":
        row["resolved_at"] = p.resolved_at
    status = {"opened": "open", "reopened": "open", "resolved": "resolved", "closed": "closed"}
    if kind in status and version >= row["status_version"]:
        row.update(status=status[kind], status_version=version)


async def _write_tickets(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    keep = ("kind", "channel", "category", "severity", "subject", "assignee", "opened_at")
    await connection.execute(
        f"""INSERT INTO tickets AS t ({", ".join(_TICKET_FIELDS)})
            SELECT {", ".join(f"u.{c}" for c in _TICKET_FIELDS)}
            FROM {recordset(1, tuple(zip(_TICKET_FIELDS, _TICKET_TYPES, strict=True)))}
            ON CONFLICT (ticket_id) DO UPDATE SET
            {", ".join(f"{c} = coalesce(excluded.{c}, t.{c})" for c in keep)},
            resolved_at = greatest(excluded.resolved_at, t.resolved_at),
            resolution_due_at = CASE WHEN excluded.due_version >= t.due_version
                THEN coalesce(excluded.resolution_due_at, t.resolution_due_at)
                ELSE t.resolution_due_at END,
            due_version = greatest(excluded.due_version, t.due_version),
            status = CASE WHEN excluded.status_version >= t.status_version
                          AND excluded.status_version > 0
                THEN excluded.status ELSE t.status END,
            status_version = greatest(excluded.status_version, t.status_version)""",
        rows_json(rows),
    )


def _opportunity_row(
    opportunities: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    assert event.aggregate_id is not None
    row = opportunities.setdefault(
        event.aggregate_id,
        {
            "opportunity_id": event.aggregate_id,
            "customer_id": event.customer_id,
            "description": None,
            "owner": None,
            "stage": None,
            "stage_version": 0,
            "expected_amount": None,
            "currency": None,
            "expected_close_date": None,
            "region": None,
            "product": None,
            "opened_at": None,
            "closed_at": None,
            "closing_stage": None,
            "closing_version": 0,
        },
    )
    version = event.aggregate_version or 1
    kind = event.event_type
    if kind == "sales.opportunity_opened":
        row.update(
            description=p.description,
            owner=p.owner,
            expected_amount=p.expected_amount,
            currency=p.currency.value,
            expected_close_date=p.expected_close_date,
            region=p.region,
            product=p.products[0].product,
            opened_at=event.occurred_at,
        )
    if kind in ("sales.opportunity_opened", "sales.opportunity_stage_changed"):
        stage = p.stage if kind == "sales.opportunity_opened" else p.to_stage
        if version >= row["stage_version"]:
            row.update(stage=stage.value, stage_version=version)
        closing = (
            kind != "sales.opportunity_opened"
            and stage in CLOSED_STAGES
            and p.from_stage not in CLOSED_STAGES
        )
        if closing and version >= row["closing_version"]:
            row.update(
                closed_at=event.occurred_at,
                closing_stage=p.from_stage.value,
                closing_version=version,
            )
    elif kind == "sales.opportunity_amount_changed":
        row.update(expected_amount=p.expected_amount, currency=p.currency.value)
    elif kind == "sales.opportunity_owner_changed":
        row["owner"] = p.owner
    elif kind == "sales.opportunity_close_date_changed":
        row["expected_close_date"] = p.expected_close_date


async def _write_opportunities(
    connection: asyncpg.Connection, rows: list[dict[str, Any]], now: datetime
) -> None:
    fields = (
        ("opportunity_id", "uuid"),
        ("customer_id", "uuid"),
        ("description", "text"),
        ("owner", "text"),
        ("stage", "text"),
        ("stage_version", "integer"),
        ("expected_amount", "numeric"),
        ("currency", "text"),
        ("expected_close_date", "date"),
        ("region", "text"),
        ("product", "text"),
        ("opened_at", "timestamptz"),
        ("closed_at", "timestamptz"),
        ("closing_stage", "text"),
        ("closing_version", "integer"),
    )
    keep = (
        "description",
        "owner",
        "expected_amount",
        "currency",
        "expected_close_date",
        "region",
        "product",
        "opened_at",
    )
    await connection.execute(
        f"""INSERT INTO opportunities AS o ({", ".join(n for n, _ in fields)}, updated_at)
            SELECT {", ".join(f"u.{n}" for n, _ in fields)}, $2::timestamptz
            FROM {recordset(1, fields)}
            ON CONFLICT (opportunity_id) DO UPDATE SET
            {", ".join(f"{c} = coalesce(excluded.{c}, o.{c})" for c in keep)},
            stage = CASE WHEN excluded.stage_version >= o.stage_version
                THEN coalesce(excluded.stage, o.stage) ELSE o.stage END,
            stage_version = greatest(excluded.stage_version, o.stage_version),
            closed_at = CASE WHEN excluded.closing_version > o.closing_version
                THEN excluded.closed_at ELSE o.closed_at END,
            closing_stage = CASE WHEN excluded.closing_version > o.closing_version
                THEN excluded.closing_stage ELSE o.closing_stage END,
            closing_version = greatest(excluded.closing_version, o.closing_version),
            updated_at = excluded.updated_at""",
        rows_json(rows),
        now,
    )


_ACTIVITY_COLUMNS = (
    ("opportunity_id", "uuid"),
    ("activity_id", "text"),
    ("customer_id", "uuid"),
    ("kind", "text"),
    ("owner", "text"),
    ("scheduled_on", "date"),
    ("planned_at", "timestamptz"),
    ("predicted", "boolean"),
    ("completed_at", "timestamptz"),
    ("prediction_held", "boolean"),
)


def _activity_row(
    activities: dict[tuple[UUID, str], dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    """An activity as the ledger of predictions reads it: whether its owner predicted a
    result (not the result itself, which is personal), and whether it held."""
    row = activities.setdefault(
        (p.opportunity_id, p.activity_id),
        {
            **dict.fromkeys(n for n, _ in _ACTIVITY_COLUMNS),
            "opportunity_id": p.opportunity_id,
            "activity_id": p.activity_id,
            "customer_id": event.customer_id,
            "predicted": False,
        },
    )
    row.update(kind=p.kind.value, owner=p.owner)
    row["predicted"] = row["predicted"] or p.predicted_result is not None
    if event.event_type == "sales.activity_planned":
        row.update(scheduled_on=p.scheduled_on, planned_at=event.occurred_at)
    else:
        row.update(completed_at=event.occurred_at, prediction_held=p.prediction_held)


async def _write_activities(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    names = [n for n, _ in _ACTIVITY_COLUMNS]
    await connection.execute(
        f"""INSERT INTO opportunity_activities AS a ({", ".join(names)})
            SELECT {", ".join(names)} FROM {recordset(1, _ACTIVITY_COLUMNS)}
            ON CONFLICT (opportunity_id, activity_id) DO UPDATE SET
            kind = excluded.kind, owner = excluded.owner,
            {", ".join(f"{n} = coalesce(excluded.{n}, a.{n})" for n in names[5:7])},
            predicted = a.predicted OR excluded.predicted,
            completed_at = coalesce(a.completed_at, excluded.completed_at),
            prediction_held = coalesce(a.prediction_held, excluded.prediction_held)""",
        rows_json(rows),
    )


# Purchases, contracts and payments ---------------------------------------------------

SALES_FACTS = ("sales.purchase_recorded", "sales.contract_signed", "sales.payment_received")

_PURCHASE_COLUMNS = (
    ("event_id", "uuid"),
    ("customer_id", "uuid"),
    ("kind", "text"),
    ("reference", "text"),
    ("source", "text"),
    ("occurred_at", "timestamptz"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("reporting_amount", "numeric"),
)
_CONTRACT_COLUMNS = (
    ("opportunity_id", "uuid"),
    ("contract_id", "text"),
    ("customer_id", "uuid"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("signed_on", "date"),
)
_PAYMENT_COLUMNS = (
    ("opportunity_id", "uuid"),
    ("payment_id", "text"),
    ("contract_id", "text"),
    ("customer_id", "uuid"),
    ("amount", "numeric"),
    ("currency", "text"),
    ("received_on", "date"),
)


class SalesRows:
    """A batch's purchases (a won contract is one too, dated on its signing day, as the
    profile counts it), contracts and payments: each kept once, by its event or its id."""

    def __init__(self) -> None:
        self.purchases: list[dict[str, Any]] = []
        self.contracts: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []

    def add(self, event: EventEnvelope[Any], p: Any, converter: Converter) -> None:
        kind = event.event_type
        if kind == "sales.payment_received":
            self.payments.append(
                {"opportunity_id": p.opportunity_id, "payment_id": p.payment_id,
                 "contract_id": p.contract_id, "customer_id": event.customer_id,
                 "amount": p.amount, "currency": p.currency.value,
                 "received_on": p.received_on}
            )  # fmt: skip
            return
        contract = kind == "sales.contract_signed"
        self.purchases.append(
            {"event_id": event.event_id, "customer_id": event.customer_id,
             "kind": "contract" if contract else "purchase",
             "reference": p.contract_id if contract else str(p.purchase_id),
             "source": None if contract else p.source,
             "occurred_at": day_start(p.signed_on) if contract else event.occurred_at,
             "amount": p.amount, "currency": p.currency.value,
             "reporting_amount": converter.convert(p.amount, p.currency.value)}
        )  # fmt: skip
        if contract:
            self.contracts.append(
                {"opportunity_id": p.opportunity_id, "contract_id": p.contract_id,
                 "customer_id": event.customer_id, "amount": p.amount,
                 "currency": p.currency.value, "signed_on": p.signed_on}
            )  # fmt: skip

    async def write(self, connection: asyncpg.Connection) -> None:
        for table, columns, rows in (
            ("purchases", _PURCHASE_COLUMNS, self.purchases),
            ("contracts", _CONTRACT_COLUMNS, self.contracts),
            ("contract_payments", _PAYMENT_COLUMNS, self.payments),
        ):
            if rows:
                names = ", ".join(n for n, _ in columns)
                await connection.execute(
                    f"INSERT INTO {table} ({names}) SELECT {names} FROM "
                    + recordset(1, columns)
                    + " ON CONFLICT DO NOTHING",
                    rows_json(rows),
                )


# Contact persons -----------------------------------------------------------------------

_CONTACT_COLUMNS = (
    ("customer_id", "uuid"),
    ("contact_id", "text"),
    ("name", "text"),
    ("title", "text"),
    ("phones", "text[]"),
    ("emails", "text[]"),
    ("removed", "boolean"),
    ("version", "integer"),
)


def _contact_rows(
    contacts: dict[tuple[UUID, str], dict[str, Any]], event: EventEnvelope[Any], p: Any
) -> None:
    """The contact persons as the batch leaves them (events come in version order)."""
    version = event.aggregate_version or 1
    kind = event.event_type
    if kind == "customer.contact_removed":
        contacts[(event.customer_id, p.contact_id)] = {
            **dict.fromkeys(n for n, _ in _CONTACT_COLUMNS),
            "customer_id": event.customer_id, "contact_id": p.contact_id,
            "phones": [], "emails": [], "removed": True, "version": version,
        }  # fmt: skip
        return
    if kind not in ("customer.registered", "customer.contact_added", "customer.contact_changed"):
        return
    for person in p.contacts if kind == "customer.registered" else [p.contact]:
        contacts[(event.customer_id, person.contact_id)] = {
            "customer_id": event.customer_id, "contact_id": person.contact_id,
            "name": person.name, "title": person.title, "phones": list(person.phones),
            "emails": [str(e) for e in person.emails], "removed": False, "version": version,
        }  # fmt: skip


async def _write_contacts(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Contact persons, unless a later version of the customer set them already."""
    names = [n for n, _ in _CONTACT_COLUMNS]
    await connection.execute(
        f"""INSERT INTO contacts AS c ({", ".join(names)})
            SELECT {", ".join(names)} FROM {recordset(1, _CONTACT_COLUMNS)}
            ON CONFLICT (customer_id, contact_id) DO UPDATE SET
            {", ".join(f"{n} = excluded.{n}" for n in names[2:])}
            WHERE c.version < excluded.version""",
        rows_json(rows),
    )


# Consent --------------------------------------------------------------------------------

_CONSENT_COLUMNS = (
    ("customer_id", "uuid"),
    ("preferred", "text[]"),
    ("opted_out", "text[]"),
    ("version", "integer"),
)


def _consent_row(consent: dict[UUID, dict[str, Any]], event: EventEnvelope[Any], p: Any) -> None:
    """The channels the customer prefers and opted out of, as the batch leaves them."""
    if event.event_type not in ("customer.registered", "customer.channel_preferences_changed"):
        return
    preferences = p.channel_preferences
    consent[event.customer_id] = {
        "customer_id": event.customer_id,
        "preferred": [str(getattr(c, "value", c)) for c in preferences.preferred],
        "opted_out": [str(getattr(c, "value", c)) for c in preferences.opted_out],
        "version": event.aggregate_version or 1,
    }


async def _write_consent(connection: asyncpg.Connection, rows: list[dict[str, Any]]) -> None:
    """Each customer's consent, unless a later version of the customer set it already."""
    await connection.execute(
        f"""INSERT INTO consent AS c (customer_id, preferred, opted_out, version)
            SELECT * FROM {recordset(1, _CONSENT_COLUMNS)}
            ON CONFLICT (customer_id) DO UPDATE SET preferred = excluded.preferred,
                opted_out = excluded.opted_out, version = excluded.version
            WHERE c.version < excluded.version""",
        rows_json(rows),
    )
