"""HTTP routes of customer imports, for other systems' large uploads: define an import (its
column mapping), upload its file as a streamed body, read how far it got.

The upload is streamed to a temporary file (never held in memory; up to
`CRM_MAX_UPLOAD_BYTES`), then imported batch by batch (`services.customer.importing`)
while the answer streams the report: one JSON line per row (or only the rejected ones),
then a line with the summary. A dropped connection stops the import after its last
committed batch; uploading the same file again resumes it after the checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, BinaryIO

import asyncpg
import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from services.customer.dependencies import App, Pool
from services.customer.import_checkpoint import ImportRefused, import_record
from services.customer.import_files import FileRefused, RecordStream, format_of
from services.customer.import_mapping import Mapping
from services.customer.import_report import Outcome
from services.customer.importing import IMPORT_ID, CustomerImport
from services.runtime.errors import NotFound, RuleViolation
from services.runtime.http.authorization import Caller, requires
from services.runtime.http.commands import StrictBody

router = APIRouter(tags=["customer imports"])

ImportId = Annotated[
    str, Path(pattern=IMPORT_ID.pattern, description="Names the import; the caller chooses it.")
]
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/x-ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
}
SPOOL_CHUNK = 1 << 20

EXAMPLE_MAPPING: dict[str, Any] = {
    "default_region": "CN",
    "key": {"source": "erp", "column": "客户编号"},
    "name": "客户名称",
    "kind": {"column": "类型", "values": {"企业": "business", "个人": "consumer"}},
    "tags": [{"column": "标签", "separators": ";"}],
    "contacts": [{"name": "联系人", "phones": ["手机"], "emails": ["邮箱"]}],
    "addresses": [{"label": "office", "line1": "地址", "city": "城市", "country": {"value": "CN"}}],
}


class ImportDefinition(StrictBody):
    model_config = {
        "extra": "forbid",
        "json_schema_extra": {"examples": [{"mapping": EXAMPLE_MAPPING}]},
    }

    mapping: Mapping


class ImportState(BaseModel):
    import_id: str
    state: str = Field(description="new, running, stopped or completed.")
    committed_row: int = Field(description="The last row whose changes are committed.")
    counts: dict[str, Any] = Field(
        description="Rows created, updated, unchanged and rejected (by reason) so far, and rows "
        "with possible duplicates."
    )
    actor: str
    mapping: dict[str, Any]
    started_at: datetime
    updated_at: datetime


class ReportRows(StrEnum):
    ALL = "all"
    REJECTED = "rejected"
    NONE = "none"


@router.put(
    "/customer-imports/{import_id}",
    dependencies=[requires("customers:import")],
    summary="Define a customer import: its column mapping",
    description="Then upload its file to `/customer-imports/{import_id}/upload`. An import "
    "stopped part way keeps its mapping: it can only be resumed with the same one.",
)
async def define_import(
    import_id: ImportId, body: ImportDefinition, pool: Pool, caller: Caller
) -> ImportState:
    mapping = body.mapping
    async with pool.acquire() as connection, connection.transaction():
        found = await connection.fetchrow(
            "SELECT mapping_fingerprint, state, committed_row FROM customer_imports "
            "WHERE import_id = $1 FOR UPDATE",
            import_id,
        )
        if (
            found is not None
            and found["state"] in ("running", "stopped")
            and found["mapping_fingerprint"] != mapping.fingerprint()
        ):
            raise ImportRefused(
                f"import {import_id} is {found['state']} after row {found['committed_row']} "
                "with another mapping; resume it with that one, or choose another import id"
            )
        if found is None or found["mapping_fingerprint"] != mapping.fingerprint():
            await connection.execute(
                """INSERT INTO customer_imports
                       (import_id, mapping, mapping_fingerprint, actor, state)
                   VALUES ($1, $2::jsonb, $3, $4, 'new')
                   ON CONFLICT (import_id) DO UPDATE SET mapping = excluded.mapping,
                       mapping_fingerprint = excluded.mapping_fingerprint,
                       actor = excluded.actor, state = 'new', committed_row = 0,
                       counts = '{}', started_at = now(), updated_at = now()""",
                import_id,
                json.dumps(mapping.model_dump(mode="json"), ensure_ascii=False),
                mapping.fingerprint(),
                caller.subject,
            )
    return await _state(pool, import_id)


@router.get(
    "/customer-imports/{import_id}",
    dependencies=[requires("customers:import")],
    summary="How far a customer import got",
)
async def read_import(import_id: ImportId, pool: Pool) -> ImportState:
    return await _state(pool, import_id)


@router.post(
    "/customer-imports/{import_id}/upload",
    dependencies=[requires("customers:import")],
    summary="Upload the file of a customer import (CSV or JSON lines, streamed)",
    description="The body is the file: CSV (`text/csv`; UTF-8 with or without a byte "
    "order mark, or GB18030) or JSON lines (`application/x-ndjson`). The answer "
    "(`application/x-ndjson`) streams the report as the import goes: one line per row "
    "(`report=rejected`: only the rejected ones; `none`: none), then "
    '`{"summary": {...}}`, or `{"error": "..."}` should the import fail part way. With '
    "`dry_run=true` nothing is changed and the report says what would be. A dropped "
    "connection stops the import after its last committed batch; upload the same file "
    "again to resume it.",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The report, one JSON object per line, the summary last.",
            "content": {
                "application/x-ndjson": {
                    "schema": {"type": "string"},
                    "example": '{"row": 1, "outcome": "created", "customer_id": '
                    '"29973148-276e-5179-a4e6-3a8ca3237424", "key": "erp/C-001", "changes": '
                    '["customer.registered"], "reason": null, "detail": null}\n'
                    '{"summary": {"rows": 1, "created": 1, "updated": 0, "unchanged": 0, '
                    '"rejected": 0}}\n',
                }
            },
        }
    },
)
async def upload(
    import_id: ImportId,
    request: Request,
    app: App,
    pool: Pool,
    caller: Caller,
    dry_run: Annotated[
        bool, Query(description="Report what would happen; change nothing.")
    ] = False,
    report: Annotated[
        ReportRows, Query(description="Which rows the answer lists.")
    ] = ReportRows.ALL,
    format: Annotated[
        str | None, Query(pattern="^(csv|jsonl)$", description="Default: by Content-Type.")
    ] = None,
    encoding: Annotated[
        str | None,
        Query(pattern="^(auto|utf-8|gb18030)$", description="Of a CSV file; default: detected."),
    ] = None,
) -> StreamingResponse:
    found = await import_record(pool, import_id)
    if found is None:
        raise NotFound(
            f"no customer import {import_id}; define it first with "
            f"PUT /customer-imports/{import_id}"
        )
    mapping = Mapping.model_validate(found["mapping"])
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        chosen = format_of(None, mapping, format or CONTENT_TYPES.get(content_type))
    except FileRefused as exc:
        raise RuleViolation(
            f"{exc}; or send Content-Type text/csv or application/x-ndjson"
        ) from None
    spooled = await _spool(request)
    try:
        records = await asyncio.to_thread(
            RecordStream, spooled, mapping, format=chosen, encoding=encoding
        )
    except FileRefused as exc:
        spooled.close()
        raise RuleViolation(str(exc)) from None
    job = CustomerImport(
        application=app,
        pool=pool,
        mapping=mapping,
        import_id=import_id,
        actor=caller.subject,
        dry_run=dry_run,
    )
    return StreamingResponse(
        _report_lines(job, records, spooled, report), media_type="application/x-ndjson"
    )


async def _state(pool: asyncpg.Pool, import_id: str) -> ImportState:
    found = await import_record(pool, import_id)
    if found is None:
        raise NotFound(f"no customer import {import_id}")
    return ImportState.model_validate(found)


async def _spool(request: Request) -> BinaryIO:
    """The request body in a temporary file (deleted when closed), rewound."""
    spooled: BinaryIO = tempfile.TemporaryFile()  # noqa: SIM115 - the report's stream closes it
    try:
        async for chunk in request.stream():
            if chunk:
                await asyncio.to_thread(spooled.write, chunk)
        spooled.seek(0)
    except BaseException:
        spooled.close()
        raise
    return spooled


async def _report_lines(
    job: CustomerImport, records: RecordStream, spooled: BinaryIO, rows: ReportRows
) -> AsyncIterator[bytes]:
    """The report as the import goes; the import stops when the client goes."""
    lines: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)

    async def report(outcomes: Sequence[Outcome]) -> None:
        listed = [
            o
            for o in outcomes
            if rows is ReportRows.ALL or (rows is ReportRows.REJECTED and o.reason)
        ]
        if listed:
            await lines.put(b"".join(orjson.dumps(o.as_dict()) + b"\n" for o in listed))

    async def work() -> None:
        try:
            summary = await job.run(records, report)
            await lines.put(orjson.dumps({"summary": summary.as_dict()}) + b"\n")
        except (ImportRefused, FileRefused, RuleViolation) as exc:
            await lines.put(orjson.dumps({"error": str(exc)}) + b"\n")
        finally:
            await lines.put(None)

    task = asyncio.create_task(work())
    try:
        while (line := await lines.get()) is not None:
            yield line
        await task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        spooled.close()
