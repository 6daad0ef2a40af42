"""`crm import customers FILE --mapping M`: import customers from a CSV or JSON-lines file.

Runs the customer service's import (`services.customer.importing`) in this process,
straight on the customer event store and the customers' keys (the settings of the
customer service: `CRM_DATABASE_URL`, the keyring master key), not through HTTP: a file
of a million rows then costs no request size limit, rate limit or timeout, and the
import goes as fast as the event store takes it. The running customer service publishes
the events as it publishes every other (its outbox relay reads the event store).

A progress bar shows how far into the file the import is; Ctrl-C stops it once the batches
under way are committed, and the same command resumes it after the last committed row (the
checkpoint is kept in the database, per import). The import id names the file's content
and the mapping unless `--import-id` gives one, so running the same command again on the
same file resumes it, or, once completed, changes nothing. Each run leaves an entry in
the customer service's audit log.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import getpass
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

    from services.customer.application import CustomerApplication
    from services.customer.import_report import Outcome, Summary
    from services.runtime.privacy.keyring import Keyring

REPORT_COLUMNS = (
    *("row", "outcome", "customer_id", "key", "changes", "reason", "detail"),
    "possible_duplicates",
)
SCHEMA = "customer"
STOPPED = 130
"""Exit status of an import stopped by Ctrl-C (as a shell reports SIGINT)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import records from files (customers)",
        description="Import records from a file into the CRM.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    customers = kinds.add_parser(
        "customers",
        help="import customers from a CSV or JSON-lines file through a column mapping",
        description="Import customers with their contacts, addresses, tags, "
        "classifications and references. Values are cleaned (half-width, whitespace, "
        "e-mails case-folded, phones to E.164); rows that cannot be imported are rejected "
        "with a reason. A row whose external key names a customer updates it. Ctrl-C "
        "stops after the current batch; the same command resumes. Uses CRM_DATABASE_URL "
        "and the keyring master key of the customer service.",
    )
    customers.add_argument("file", type=Path, help="the CSV or JSON-lines file")
    customers.add_argument(
        "--mapping", type=Path, required=True, help="the column mapping (YAML or JSON)"
    )
    customers.add_argument(
        "--dry-run", action="store_true", help="report what would happen; change nothing"
    )
    customers.add_argument(
        "--report",
        help="write the report, one line per row, to this file (.csv for CSV, anything "
        "else JSON lines; - for standard output)",
    )
    customers.add_argument(
        "--import-id",
        help="name the import (default: derived from the file's content and the mapping)",
    )
    customers.add_argument("--format", choices=("csv", "jsonl"), help="default: by extension")
    customers.add_argument(
        "--encoding",
        choices=("auto", "utf-8", "gb18030"),
        help="of a CSV file (default: the mapping's, else detected)",
    )
    customers.add_argument(
        "--batch-size", type=int, default=1000, help="rows per transaction (default 1000)"
    )
    customers.add_argument(
        "--workers",
        type=int,
        default=default_workers(),
        help="processes importing shares of each batch (default: one per CPU core, "
        f"here {default_workers()})",
    )
    customers.add_argument(
        "--actor",
        help="who the events and the audit log name (default: <user>@crm-cli)",
    )
    customers.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from services.customer.import_files import FileRefused, format_of
    from services.customer.import_mapping import load_mapping
    from services.customer.importing import check_import_id, import_id_of_file
    from services.runtime.errors import CommandRejected
    from services.runtime.privacy.keyring import Keyring, KeyringConfigError, settings_master_key
    from services.runtime.settings import ServiceSettings, load_settings

    if args.batch_size < 1:
        raise SystemExit("crm import: --batch-size must be at least 1")
    if args.workers < 1:
        raise SystemExit("crm import: --workers must be at least 1")
    try:
        if not args.file.is_file():
            raise ValueError(f"{args.file} is not a file")
        report = args.report
        if report not in (None, "-") and not Path(report).resolve().parent.is_dir():
            raise ValueError(f"cannot write the report to {report}: its folder does not exist")
        mapping = load_mapping(args.mapping.read_bytes(), f"the mapping {args.mapping}")
        file_format = format_of(args.file.name, mapping, args.format)
        if args.import_id is None:
            with args.file.open("rb") as chunks:
                import_id = import_id_of_file(mapping, iter(lambda: chunks.read(1 << 20), b""))
        else:
            import_id = check_import_id(args.import_id)
    except (OSError, ValueError, CommandRejected) as exc:
        raise SystemExit(f"crm import: {exc}") from None
    settings = load_settings(ServiceSettings)
    try:
        keyring = Keyring.from_settings(settings)
    except KeyringConfigError as exc:
        raise SystemExit(f"crm import: invalid configuration: {exc}") from None
    actor = args.actor or f"{getpass.getuser()}@crm-cli"
    job = ImportJob(args, mapping, file_format, import_id, actor)
    try:
        return asyncio.run(job.run(settings.database_dsn, keyring, settings_master_key(settings)))
    except (FileRefused, CommandRejected) as exc:
        raise SystemExit(f"crm import: {exc}") from None


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@contextlib.asynccontextmanager
async def customer_store(
    database_dsn: str, keyring: Keyring, *, prepared: bool = False
) -> AsyncIterator[tuple[CustomerApplication, asyncpg.Pool]]:
    """The customer event store (sealing personal data with `keyring`, as the service
    does) and a pool on the customer schema, its tables migrated (unless `prepared`: an
    import's worker, whose importing process made them)."""
    from services.customer.application import CustomerApplication
    from services.customer.migrations import MIGRATIONS
    from services.customer.publishing import to_contract
    from services.runtime.privacy.sealing import PersonalData
    from services.runtime.storage.database import create_pool, ensure_database
    from services.runtime.storage.eventstore import open_event_store
    from services.runtime.storage.migrator import DURABLE, KEYRING, migrate_all

    if not prepared:
        await ensure_database(database_dsn)
        await migrate_all(database_dsn, SCHEMA, (DURABLE, KEYRING, MIGRATIONS))
    pool = await create_pool(database_dsn, SCHEMA, max_size=3, command_timeout=None)
    await asyncio.to_thread(keyring.open)
    application = await open_event_store(
        CustomerApplication, database_dsn, SCHEMA, create_tables=not prepared
    )
    application.contract_of = to_contract
    application.protect_personal_data(PersonalData(keyring, to_contract))
    try:
        yield application, pool
    finally:
        application.close()
        await pool.close()
        await asyncio.to_thread(keyring.close)


class ImportJob:
    """One `crm import customers` run: the file, its progress bar, Ctrl-C, the report."""

    def __init__(
        self,
        args: argparse.Namespace,
        mapping: Any,
        file_format: str,
        import_id: str,
        actor: str,
    ) -> None:
        self.args = args
        self.mapping = mapping
        self.file_format = file_format
        self.import_id = import_id
        self.actor = actor
        self.stop_requested = False

    async def run(self, database_dsn: str, keyring: Keyring, master_key: bytes) -> int:
        from tqdm import tqdm

        from crm.import_workers import shared_among
        from services.customer.import_files import RecordStream
        from services.customer.importing import CustomerImport

        args = self.args
        async with (
            customer_store(database_dsn, keyring) as (application, pool),
            contextlib.AsyncExitStack() as workers,
        ):
            job = CustomerImport(
                application=application,
                pool=pool,
                mapping=self.mapping,
                import_id=self.import_id,
                actor=self.actor,
                dry_run=args.dry_run,
                batch_rows=args.batch_size,
            )
            await workers.enter_async_context(
                shared_among(job, args.workers, database_dsn, master_key)
            )
            with (
                args.file.open("rb") as binary,
                report_writer(args.report) as write,
                tqdm(
                    total=args.file.stat().st_size,
                    unit="B",
                    unit_scale=True,
                    desc=f"import {self.import_id}",
                    disable=None,  # off where standard error is no terminal
                ) as bar,
            ):
                records = RecordStream(
                    binary, self.mapping, format=self.file_format, encoding=args.encoding
                )

                def progress(rows: int) -> None:
                    bar.update(records.position() - bar.n)
                    bar.set_postfix(rows=job.summary.rows, refresh=False)

                async def report(outcomes: Sequence[Outcome]) -> None:
                    write(outcomes)

                self._catch_interrupt()
                status = 500
                try:
                    summary = await job.run(
                        records, report, progress=progress, should_stop=lambda: self.stop_requested
                    )
                    status = 206 if summary.stopped else 200
                finally:
                    if not args.dry_run:
                        await audit(pool, self, status)
        return self._finish(summary)

    def _catch_interrupt(self) -> None:
        """The first Ctrl-C stops after the batches under way; a second one at once."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def interrupted() -> None:
            if self.stop_requested and task is not None:
                task.cancel()
                return
            self.stop_requested = True
            sys.stderr.write("\nstopping after the batches under way (Ctrl-C again: at once)\n")

        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, interrupted)

    def _finish(self, summary: Summary) -> int:
        print(json.dumps(summary.as_dict(), ensure_ascii=False))
        if summary.stopped:
            sys.stderr.write(
                f"import {self.import_id} stopped after row {summary.last_row}; run the same "
                "command again to resume it\n"
            )
            return STOPPED
        return 0


@contextlib.contextmanager
def report_writer(
    target: str | None,
) -> Any:
    """A function writing outcomes to `target` (CSV for a .csv name, else JSON lines;
    `-` for standard output; None: nowhere)."""
    if target is None:
        yield lambda outcomes: None
        return
    stream: IO[str]
    if target == "-":
        stream = sys.stdout
        owned = False
    else:
        stream = open(target, "w", encoding="utf-8", newline="")  # noqa: SIM115
        owned = True
    try:
        yield _csv_lines(stream) if target.endswith(".csv") else _json_lines(stream)
    finally:
        stream.flush()
        if owned:
            stream.close()


def _json_lines(stream: IO[str]) -> Callable[[Sequence[Outcome]], None]:
    def write(outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            stream.write(json.dumps(outcome.as_dict(), ensure_ascii=False) + "\n")

    return write


def _csv_lines(stream: IO[str]) -> Callable[[Sequence[Outcome]], None]:
    writer = csv.writer(stream)
    writer.writerow(REPORT_COLUMNS)

    def write(outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            line = outcome.as_dict()
            line["changes"] = ";".join(line["changes"])
            line["possible_duplicates"] = "; ".join(
                f"{_named(d)} {d['name']} ({d['score']:.2f})" for d in line["possible_duplicates"]
            )
            writer.writerow([line[c] if line[c] is not None else "" for c in REPORT_COLUMNS])

    return write


def _named(duplicate: dict[str, Any]) -> str:
    return f"row {duplicate['row']}" if "row" in duplicate else str(duplicate["customer_id"])


async def audit(pool: asyncpg.Pool, job: ImportJob, status: int) -> None:
    """The customer service's audit log records who ran which import, as it records
    the HTTP imports (status 200: completed, 206: stopped, 500: failed)."""
    from services.runtime.http.audit import COLUMNS

    entry = (
        uuid.uuid4(),
        datetime.now(UTC),
        job.actor,
        ["cli"],
        "CLI",
        "crm import customers",
        json.dumps({"import_id": job.import_id, "file": str(job.args.file)}, ensure_ascii=False),
        None,
        status,
        None,
        "crm",
        f"import:{job.import_id}",
    )
    await pool.copy_records_to_table("audit_log", records=[entry], columns=COLUMNS)
