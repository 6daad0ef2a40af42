"""An import's rows shared among worker processes, batch by batch.

Cleaning a row, making its events and sealing them take Python CPU (about half a
millisecond a row), so one process imports at about the speed of one core. With
`--workers N`, each batch of the file is split into N shares by the customer its rows
name (the external key, else the row), and each share goes to the same worker process
every time: a customer's rows stay in one process and in the order of the file, and the
dry run's plan (what earlier rows would create) is the one process's own. Each worker
has its own connections to the event store and to the customers' keys. A batch is done
when every share of it is; only then does the import's checkpoint move past it, so
stopping and resuming work as with one process. The importing process hands the workers
the next batches (`BATCHES_AHEAD`) before the first is done: each worker imports its
shares in the order handed, so a customer's rows still come in the order of the file,
and neither the workers nor the importing process waits for the others between batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import signal
import zlib
from collections.abc import AsyncIterator, Awaitable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import chain
from typing import TYPE_CHECKING, Any

from services.customer.import_files import Item
from services.customer.import_mapping import Mapping
from services.customer.import_report import Outcome

if TYPE_CHECKING:
    from services.customer.importing import CustomerImport

PRELOADED = ["__main__", "crm.imports", "services.customer.importing"]
"""What the workers' server process imports before it forks them."""
BATCHES_AHEAD = 2
"""Batches handed to the workers beyond the one whose outcomes the importing process
awaits: while the workers import, it reads the next ones, and a worker done with its
share goes on with the next one rather than waiting for the other's."""


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    """What a worker process needs to import its shares (picklable)."""

    database_dsn: str
    master_key: bytes
    mapping: Mapping
    import_id: str
    actor: str
    dry_run: bool


def share_of(item: Item, mapping: Mapping, workers: int) -> int:
    """The worker that imports `item`: by its external key, else by its row number."""
    key = mapping.key_of(item.record) if item.record is not None else None
    name = f"{key[0]}\x1f{key[1]}" if key is not None else f"\x1e{item.number}"
    return zlib.crc32(name.encode()) % workers


class ImportWorkers:
    """`count` worker processes importing shares of batches (`import_batch`)."""

    def __init__(self, count: int, settings: WorkerSettings) -> None:
        if count < 2:
            raise ValueError("workers share an import among at least two processes")
        self.count = count
        self._mapping = settings.mapping
        # forked from a server process that imported the import's code once, not from
        # this one: no inherited loop, threads or sockets, and each worker starts without
        # importing the code again (most of a second of CPU each)
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(PRELOADED)
        self._executors = [
            ProcessPoolExecutor(
                max_workers=1, mp_context=context, initializer=_start, initargs=(settings,)
            )
            for _ in range(count)
        ]

    def import_batch(self, items: list[Item]) -> Awaitable[list[Outcome]]:
        """Hands each share of `items` to its worker at once (each worker imports its
        shares in the order they are handed); the outcomes, in the order of the rows."""
        shares: list[list[Item]] = [[] for _ in range(self.count)]
        for item in items:
            shares[share_of(item, self._mapping, self.count)].append(item)
        loop = asyncio.get_running_loop()
        done = asyncio.gather(
            *(
                loop.run_in_executor(self._executors[worker], _import_share, share)
                for worker, share in enumerate(shares)
                if share
            )
        )
        return _in_row_order(done)

    def close(self) -> None:
        for executor in self._executors:
            executor.shutdown(wait=True, cancel_futures=True)


def freeze_startup_objects() -> None:
    """Keeps the objects made so far (modules, models, their schemas: most of a process's
    objects) out of the garbage collector's passes over the oldest generation: an import
    makes and drops objects at a pace that starts such passes often, and each would walk
    them all again (about 15 % of an import's CPU). They stay; nothing of theirs is
    garbage."""
    gc.collect()
    gc.freeze()


async def _in_row_order(done: Awaitable[list[list[Outcome]]]) -> list[Outcome]:
    return sorted(chain.from_iterable(await done), key=lambda outcome: outcome.row)


@contextlib.asynccontextmanager
async def shared_among(
    job: CustomerImport, count: int, database_dsn: str, master_key: bytes
) -> AsyncIterator[CustomerImport]:
    """`job` with each of its batches shared among `count` worker processes (as it is,
    in this process, when `count` is 1)."""
    freeze_startup_objects()
    if count == 1:
        yield job
        return
    settings = WorkerSettings(
        database_dsn=database_dsn,
        master_key=master_key,
        mapping=job.mapping,
        import_id=job.import_id,
        actor=job.actor,
        dry_run=job.dry_run,
    )
    workers = ImportWorkers(count, settings)
    job.import_batch = workers.import_batch
    job.batches_ahead = BATCHES_AHEAD
    try:
        yield job
    finally:
        job.import_batch = job.import_share
        job.batches_ahead = 0
        await asyncio.to_thread(workers.close)


# In each worker process -----------------------------------------------------------------


class ShareNotImported(Exception):
    """A share handed to a worker after one of its earlier shares failed: not imported."""


class _Worker:
    """A worker's own import (event store, keys, dry-run plan) and its event loop.

    Once a share fails, the worker imports none of the shares already handed to it after
    that one: they may hold later rows of the failed share's customers, and importing them
    first would record those customers' rows out of the order of the file (the resumed
    import then records the failed rows, and the later ones a second time). The other
    workers' shares hold other customers, whose earlier rows all went in: the resumed
    import finds them applied."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, job: Any, resources: contextlib.AsyncExitStack
    ) -> None:
        self.loop = loop
        self.job = job
        self.resources = resources
        """The import's connections, open for the life of the process."""
        self.failed: str | None = None
        """Why a share of this worker failed, if one did."""

    @classmethod
    def open(cls, settings: WorkerSettings) -> _Worker:
        loop = asyncio.new_event_loop()
        resources = contextlib.AsyncExitStack()
        job = loop.run_until_complete(_open_import(settings, resources))
        return cls(loop, job, resources)

    def import_share(self, items: list[Item]) -> list[Outcome]:
        if self.failed is not None:
            raise ShareNotImported(
                f"rows {items[0].number}-{items[-1].number} not imported: an earlier share "
                f"of this worker failed ({self.failed})"
            )
        try:
            outcomes: list[Outcome] = self.loop.run_until_complete(self.job.import_share(items))
        except Exception as error:
            self.failed = f"{type(error).__name__}: {error}"
            raise
        return outcomes


async def _open_import(
    settings: WorkerSettings, resources: contextlib.AsyncExitStack
) -> CustomerImport:
    """The worker's import, its connections entered into `resources`."""
    from crm.imports import customer_store
    from services.customer.importing import CustomerImport
    from services.runtime.privacy.keyring import Keyring

    keyring = Keyring(settings.database_dsn, settings.master_key)
    application, pool = await resources.enter_async_context(
        customer_store(settings.database_dsn, keyring, prepared=True)
    )
    job = CustomerImport(
        application=application,
        pool=pool,
        mapping=settings.mapping,
        import_id=settings.import_id,
        actor=settings.actor,
        dry_run=settings.dry_run,
    )
    if settings.dry_run:
        await resources.enter_async_context(job.planning())
    return job


_worker: _Worker | None = None


def _start(settings: WorkerSettings) -> None:
    global _worker
    # Ctrl-C reaches every process of the terminal: the importing process decides what
    # it means (stop after the batch under way), the workers finish their share
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _worker = _Worker.open(settings)
    freeze_startup_objects()


def _import_share(items: list[Item]) -> list[Outcome]:
    assert _worker is not None, "the worker was not started"
    return _worker.import_share(items)
