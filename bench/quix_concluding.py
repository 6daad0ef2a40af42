"""Quix Streams doing the analytics fold's own work, in `crm bench analytics-fold`.

`quix_fold` has Quix fold a counter per customer: the stateful aggregation a Quix
application typically does, far less than the analytics fold does per event. This run
gives Quix the fold's work itself, through the fold's own code, so that the two designs
(Quix's RocksDB state store and at-least-once checkpoints against the fold's PostgreSQL
state and exactly-once transactions) are compared on the same job:

- each message read with the fold's tolerant reader (`projections.reads.READER`: the
  fields the fold reads, validated by pydantic), as the fold reads it;
- the customer's profile taken from Quix's state (its JSON document, `Profile.to_state`),
  the fact folded into it, RFM-scored and every segment and churn rule concluded at the
  fact's event time (`conclusions.fold_all`), and the profile put back;
- each conclusion made into the contract envelope the fold puts in its outbox
  (`conclusions.membership_rows`) and produced to a topic, as the relay publishes it.

What it leaves out, so that its rate is an upper bound of Quix's on the whole job: the
profiles' columns for the CRM's views and the detail rows (interactions, surveys, tickets,
opportunities) that the fold writes to PostgreSQL, the segment history table, merges of
customers, and exactly-once (Quix's default guarantee, at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from bench.quix_fold import RunClock, application, concatenated
from services.analytics.domain.money import Converter
from services.analytics.domain.profile import FOLDED_TYPES, Profile
from services.analytics.domain.segments import SegmentRule
from services.analytics.projections.bulk import json_default
from services.analytics.projections.conclusions import fold_all, membership_rows
from services.analytics.projections.reads import READER
from services.analytics.projections.store import Bounds, Loaded

CONCLUSIONS = "bench.quix-conclusions.v1"
"""The topic Quix produces the conclusions to (created beforehand, with `retention.ms`)."""


def concluding_run(
    servers: str,
    topics: tuple[str, ...],
    expect: int,
    state_dir: Path,
    rules: Sequence[SegmentRule],
    bounds: Bounds,
    converter: Converter,
) -> dict[str, float]:
    """Quix Streams folding and concluding `expect` events of `topics` from the beginning
    with the fold's code, as `quix_fold.quix_run` measures it: events/s from the first
    message to the application stopped (its last checkpoint committed), the seconds to the
    last message, the CPU seconds of this process, the customers, the conclusions, and the
    facts folded after a later fact of the same customer (Quix reads each partition in
    order and the topics aligned by the messages' timestamps, not by the facts' times)
    and those met again (redelivered)."""
    from quixstreams.state import State

    app = application(servers, "bench.quix-concluding", state_dir)
    clock = RunClock(app, expect)
    output = app.topic(CONCLUSIONS, key_serializer="str", value_serializer="bytes")
    now = datetime.now(UTC)
    counts = {"customers": 0, "conclusions": 0, "out_of_order": 0, "again": 0}
    met: set[int] = set()
    latest: dict[int, datetime] = {}  # per customer, the latest fact folded

    def step(raw: bytes, state: State) -> list[bytes]:
        clock.seen_one()
        event = READER.parse(raw)
        if event.event_type not in FOLDED_TYPES:
            return []
        if event.event_id.int in met:
            counts["again"] += 1
        met.add(event.event_id.int)
        key = event.customer_id.int
        if key in latest and event.occurred_at < latest[key]:
            counts["out_of_order"] += 1
        else:
            latest[key] = event.occurred_at
        loaded = Loaded()
        stored = state.get("profile")
        if stored is None:
            counts["customers"] += 1
        else:
            loaded.profiles[event.customer_id] = restored(event.customer_id, stored)
        concluded = fold_all(loaded, [event], rules, bounds, converter)
        state.set("profile", kept(loaded.get(event.customer_id)))
        envelopes = membership_rows(concluded, now).envelopes
        counts["conclusions"] += len(envelopes)
        return envelopes

    concatenated(app, topics, "bytes").apply(step, stateful=True, expand=True).to_topic(output)
    app.run()
    return {**clock.figures(), **counts}


SCORES = ("recency_score", "frequency_score", "monetary_score")


def kept(profile: Profile) -> dict[str, Any]:
    """What Quix's state keeps of a profile: its document and its RFM scores (the fold
    keeps the scores in columns of their own)."""
    document = orjson.dumps(profile.to_state(), default=json_default)
    return {"state": orjson.Fragment(document), "scores": [getattr(profile, s) for s in SCORES]}


def restored(customer_id: Any, stored: dict[str, Any]) -> Profile:
    profile = Profile.from_state(customer_id, stored["state"])
    for name, value in zip(SCORES, stored["scores"], strict=True):
        setattr(profile, name, value)
    return profile
