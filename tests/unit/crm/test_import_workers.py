"""What an import's worker processes are given and give back: one customer's rows go to
one worker, and everything crosses the process boundary intact."""

from __future__ import annotations

import asyncio
import contextlib
import pickle
from uuid import uuid4

import pytest

from crm.import_workers import ShareNotImported, _Worker, share_of
from services.customer.import_files import Item
from services.customer.import_mapping import parse_mapping
from services.customer.import_report import Outcome, rejected
from services.customer.normalisation import Refused

MAPPING = parse_mapping({"key": {"source": "erp", "column": "id"}, "name": "name"})


def test_rows_naming_one_customer_go_to_one_worker_however_the_key_is_written() -> None:
    written = ["C-1", "\uff23\uff0d\uff11", " C-1 "]  # half-width, full-width, padded
    shares = {
        share_of(Item(n, {"id": key, "name": "x"}), MAPPING, 3) for n, key in enumerate(written)
    }
    assert len(shares) == 1


def test_rows_are_spread_over_every_worker() -> None:
    items = [Item(n, {"id": f"C-{n}", "name": "x"}) for n in range(1, 301)]
    counts = [0, 0, 0]
    for item in items:
        counts[share_of(item, MAPPING, 3)] += 1
    assert min(counts) > 60, counts
    keyless = [Item(n, {"name": "x"}) for n in range(1, 301)]
    assert len({share_of(item, MAPPING, 2) for item in keyless}) == 2


def test_rows_refusals_and_outcomes_cross_to_a_worker_and_back() -> None:
    refused = Refused("bad phone", "mobile '123' is not a phone number")
    items = [Item(1, {"id": "C-1", "name": "x"}), Item(2, None, refused)]
    outcomes = [
        Outcome(1, "created", uuid4(), "erp:C-1", ("customer.registered",)),
        rejected(2, refused),
    ]
    kept, refused_row = pickle.loads(pickle.dumps(items))
    assert kept == items[0]
    back = refused_row.refused
    assert isinstance(back, Refused)
    assert (back.reason, back.detail, str(back)) == (refused.reason, refused.detail, str(refused))
    assert pickle.loads(pickle.dumps(outcomes)) == outcomes


class _FailingOnce:
    """An import whose first share fails (as a batch that fails for good does)."""

    def __init__(self) -> None:
        self.calls = 0
        self.imported: list[int] = []

    async def import_share(self, items: list[Item]) -> list[Outcome]:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("the event store refused the batch")
        self.imported.extend(item.number for item in items)
        return [Outcome(item.number, "unchanged", uuid4(), None, ()) for item in items]


def test_a_worker_imports_none_of_the_shares_handed_to_it_after_one_failed() -> None:
    # its later shares may hold later rows of the failed share's customers: importing
    # them first would record those customers' rows out of the order of the file
    loop = asyncio.new_event_loop()
    job = _FailingOnce()
    worker = _Worker(loop, job, contextlib.AsyncExitStack())
    try:
        with pytest.raises(RuntimeError, match="refused the batch"):
            worker.import_share([Item(1, {"id": "C-1", "name": "x"})])
        with pytest.raises(ShareNotImported, match=r"rows 2-3 not imported.*refused the batch"):
            worker.import_share([Item(2, {"id": "C-1", "name": "y"}), Item(3, {"id": "C-2"})])
        assert job.imported == []
        assert job.calls == 1
    finally:
        loop.close()
