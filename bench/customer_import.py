"""Benchmark of the customer import: `crm bench import --rows 1000000`.

Writes a CSV file of `rows` customers (UTF-8; Chinese and Latin names, phones in several
formats, e-mails, an address, tags, an external key; a few rows of every file name a
customer an earlier row created, and a few are bad), starts an embedded PostgreSQL and
imports the file with the real import (`services.customer.importing`, what `crm import
customers` runs: cleaning, one transaction per batch of 1000 rows, the checkpoint,
sealing of personal data with each customer's key), once per worker count asked
(`crm.import_workers`: each batch shared among that many processes), each into a
database of its own. Prints, per run, rows per second, the CPU time of the importing
processes, of PostgreSQL and of the machine's other processes in that time, and the
resident memory of the importing process (and of each worker): sampled through the
import, and the peak, so that memory growing with the file would show; and the speed of
each run beside the first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import csv
import resource
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import psutil

from local.embedded.postgres import EmbeddedPostgres
from local.launcher import session_master_key
from services.customer.normalisation import full_width

MAPPING = {
    "default_region": "CN",
    "key": {"source": "erp", "column": "id"},
    "name": "name",
    "kind": {"column": "kind", "values": {"企业": "business", "个人": "consumer"}},
    "region": "region",
    "tags": ["tags"],
    "importance_tier": "tier",
    "contacts": [{"name": "contact", "title": "title", "phones": ["mobile"], "emails": ["email"]}],
    "addresses": [
        {"label": "office", "line1": "address", "city": "city", "country": {"value": "CN"}}
    ],
}
HEADER = (
    *("id", "name", "kind", "region", "tags", "tier", "contact", "title", "mobile", "email"),
    *("address", "city"),
)
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
CITIES = ("上海", "北京", "广州", "深圳", "杭州", "成都", "武汉", "南京")
REGIONS = ("华东", "华北", "华南", "西南", "华中")


def rows(count: int) -> Iterator[Sequence[str]]:
    """`count` rows; every 50th names the customer of the row 7 before it (an update),
    every 200th has a phone number that is none (rejected)."""
    for i in range(1, count + 1):
        key = i - 7 if i % 50 == 0 and i > 7 else i
        person = f"{SURNAMES[i % len(SURNAMES)]}{SURNAMES[(i // 20) % len(SURNAMES)]}{i % 97}"
        mobile = 13_000_000_000 + (i * 7919) % 999_999_999
        phone = (
            "12345"
            if i % 200 == 0
            else (f"+86 {mobile}", f"{mobile}", full_width(str(mobile)), f"0086-{mobile}")[i % 4]
        )
        yield (
            f"C{key:08d}",
            f"{CITIES[i % 8]}{person}贸易有限公司" if i % 3 else full_width(f"Customer {i}"),
            "企业" if i % 3 else "个人",
            REGIONS[i % 5],
            "bench;import" if i % 2 else "bench",
            ("ordinary", "important", "vip")[i % 3],
            person,
            "采购经理" if i % 2 else "",
            phone,
            f" Contact.{i}@Example.COM ",
            f"{CITIES[i % 8]}市中山路{i % 999}号",
            CITIES[i % 8],
        )


def write_file(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        writer.writerows(rows(count))


class MemorySampler:
    """Samples this process's resident memory every `interval` seconds."""

    def __init__(self, interval: float = 0.5) -> None:
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        process = psutil.Process()
        started = time.perf_counter()
        while not self._stop.wait(self._interval):
            self.samples.append((time.perf_counter() - started, process.memory_info().rss))


def cpu_seconds() -> tuple[float, float]:
    """CPU time (user and system) of the importing processes (this one and its import
    workers) and of PostgreSQL's processes."""
    this = psutil.Process()
    times = this.cpu_times()
    importing, postgres = times.user + times.system, 0.0
    for child in this.children(recursive=True):
        try:
            child_times = child.cpu_times()
            is_postgres = "postgres" in child.name()
        except psutil.NoSuchProcess:
            continue
        if is_postgres:
            postgres += child_times.user + child_times.system
        else:
            importing += child_times.user + child_times.system
    return importing, postgres


def machine_busy() -> float:
    """The CPU time every process of the machine has used (all cores, seconds): what the
    benchmark's processes did not use of it, others did (the machine may be shared)."""
    times = psutil.cpu_times()
    busy = ("user", "nice", "system", "irq", "softirq", "steal")  # guest time is in user's
    return float(sum(getattr(times, name, 0.0) for name in busy))


def workers_memory() -> float:
    """The largest resident memory of this process's import workers (MiB): forked by a
    server process, they are its children, not this process's."""
    sizes = [0]
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            if "postgres" not in child.name():
                sizes.append(child.memory_info().rss)
    return max(sizes) / 2**20


async def measure(database_url: str, path: Path, batch_rows: int, workers: int) -> dict[str, float]:
    from crm.import_workers import shared_among
    from crm.imports import customer_store
    from services.customer.import_files import RecordStream
    from services.customer.import_mapping import parse_mapping
    from services.customer.import_report import Outcome
    from services.customer.importing import CustomerImport
    from services.customer.projections import CustomerDirectory
    from services.runtime.privacy.keyring import Keyring

    mapping = parse_mapping(MAPPING)
    master_key = base64.b64decode(session_master_key())
    keyring = Keyring(database_url, master_key)
    async with (
        customer_store(database_url, keyring) as (application, pool),
        contextlib.AsyncExitStack() as stack,
    ):
        async with pool.acquire() as connection:
            await CustomerDirectory().create_tables(connection)
        job = CustomerImport(
            application=application,
            pool=pool,
            mapping=mapping,
            import_id="bench",
            actor="bench",
            batch_rows=batch_rows,
        )
        await stack.enter_async_context(shared_among(job, workers, database_url, master_key))
        worker_rss = 0.0

        async def report(outcomes: Sequence[Outcome]) -> None:
            nonlocal worker_rss
            worker_rss = max(worker_rss, workers_memory())

        with path.open("rb") as binary, MemorySampler() as memory:
            cpu_before, machine_before = cpu_seconds(), machine_busy()
            started = time.perf_counter()
            summary = await job.run(RecordStream(binary, mapping, format="csv"), report)
            seconds = time.perf_counter() - started
            cpu_after, machine_after = cpu_seconds(), machine_busy()
    samples = [rss for _, rss in memory.samples] or [0]
    tenth = samples[: max(1, len(samples) // 10)]
    return {
        "workers": float(workers),
        "workers_rss_peak_mib": worker_rss,
        "rows": float(summary.rows),
        "created": float(summary.counts["created"]),
        "updated": float(summary.counts["updated"]),
        "rejected": float(summary.counts["rejected"]),
        "seconds": seconds,
        "rows_per_second": summary.rows / seconds,
        "import_cpu_seconds": cpu_after[0] - cpu_before[0],
        "postgres_cpu_seconds": cpu_after[1] - cpu_before[1],
        "others_cpu_seconds": (machine_after - machine_before)
        - (cpu_after[0] - cpu_before[0])
        - (cpu_after[1] - cpu_before[1]),
        "rss_first_tenth_mib": max(tenth) / 2**20,
        "rss_last_mib": samples[-1] / 2**20,
        "rss_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_customer_import(
    count: int, batch_rows: int = 1000, workers: Sequence[int] = (1,)
) -> list[dict[str, float]]:
    """Write the file, start the embedded database, import once per worker count, print
    and return the figures."""
    if count < 1 or not workers:
        raise ValueError("count must be at least 1, with at least one worker count")
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="crm-bench-import-") as scratch:
        root = Path(scratch)
        path = root / "customers.csv"
        started = time.perf_counter()
        write_file(path, count)
        written = time.perf_counter() - started
        size = path.stat().st_size
        print(
            f"customer import of {count} rows ({size / 2**20:.0f} MiB of CSV, "
            f"written in {written:.1f} s)"
        )
        with EmbeddedPostgres(root / "postgres") as postgres:
            for processes in workers:
                database = postgres.dsn(f"crm_bench_import_{len(runs)}")
                figures = asyncio.run(measure(database, path, batch_rows, processes))
                print_figures(figures, runs[0] if runs else None)
                runs.append(figures)
    return runs


def print_figures(figures: dict[str, float], first: dict[str, float] | None) -> None:
    workers = int(figures["workers"])
    ratio = (
        f" ({figures['rows_per_second'] / first['rows_per_second']:.2f} times the first run)"
        if first is not None
        else ""
    )
    print(f"with {workers} worker processes{ratio}:" if workers > 1 else f"in one process{ratio}:")
    print(
        f"  {figures['created']:.0f} created, {figures['updated']:.0f} updated, "
        f"{figures['rejected']:.0f} rejected in {figures['seconds']:.1f} s: "
        f"{figures['rows_per_second']:.0f} rows/s"
    )
    rows = figures["rows"]
    print(
        f"  CPU: the importing process {figures['import_cpu_seconds']:.0f} s "
        f"({rows / figures['import_cpu_seconds']:.0f} rows per CPU second), PostgreSQL "
        f"{figures['postgres_cpu_seconds']:.0f} s, on {psutil.cpu_count()} cores; other "
        f"processes of the machine {max(0.0, figures['others_cpu_seconds']):.0f} s"
    )
    print(
        f"  resident memory: {figures['rss_first_tenth_mib']:.0f} MiB at most in the first "
        f"tenth of the import, {figures['rss_last_mib']:.0f} MiB at its end, peak "
        f"{figures['rss_peak_mib']:.0f} MiB"
        + (
            f"; each worker at most {figures['workers_rss_peak_mib']:.0f} MiB"
            if workers > 1
            else ""
        )
    )
