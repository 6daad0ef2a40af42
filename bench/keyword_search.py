"""Keyword search over many interactions: `crm bench keyword-search --count 1000000`.

In one process: starts an embedded PostgreSQL, creates the interaction service's
projection tables (`InteractionProjection.create_tables`), bulk-loads `count` synthetic
interactions with mixed Chinese and English subjects and notes straight into the
`interactions` table with COPY (secondary indexes are dropped for the load and rebuilt
by `create_tables` after it, as one would for a bulk load), runs ANALYZE, then runs a few
hundred keyword searches through the service's own query function
(`services.interaction.queries.search_interactions`): Chinese keywords of 1-2 characters
(served by the `search_grams` GIN index), Chinese keywords of 3+ characters and English
words (served by the trigram GIN index), common and rare. Prints median and 99th
percentile latency per kind of keyword and the EXPLAIN plans of two queries.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from bench.figures import percentile
from local.embedded.postgres import EmbeddedPostgres
from services.interaction.projections import CUSTOMERS, INTERACTION_COLUMNS, InteractionProjection
from services.interaction.queries import InteractionQuery, search_interactions, search_sql
from services.interaction.textsearch import search_grams, search_text
from services.runtime.storage.database import create_pool, ensure_database

SCHEMA = "interaction"
CHUNK = 50_000
SEARCHES_PER_KIND = 100

CHINESE_WORDS = [
    "发票",
    "合同",
    "续签",
    "报价",
    "投诉",
    "退款",
    "物流",
    "延迟",
    "送达",
    "质量",
    "维修",
    "安装",
    "培训",
    "回访",
    "满意",
    "价格",
    "折扣",
    "付款",
    "账单",
    "订单",
    "发货",
    "库存",
    "样品",
    "展会",
    "拜访",
    "会议",
    "客户",
    "经理",
    "采购",
    "供应",
    "渠道",
    "代理",
    "售后",
    "服务",
    "升级",
    "系统",
    "故障",
    "网络",
    "数据",
    "报表",
    "审批",
    "预算",
    "季度",
    "年度",
    "目标",
    "增长",
    "华东",
    "华南",
    "华北",
    "西南",
    "上海",
    "北京",
    "广州",
    "深圳",
    "成都",
    "杭州",
    "南京",
    "武汉",
    "包装",
    "破损",
    "更换",
    "补偿",
    "优惠券",
    "会员",
    "积分",
    "活动",
    "促销",
    "新品",
    "试用",
    "演示",
    "方案",
    "需求",
    "评估",
    "预约",
    "确认",
    "取消",
    "变更",
    "地址",
    "电话",
    "邮件",
    "微信",
    "短信",
    "增值税",
    "专用",
    "开具",
    "寄出",
    "工作日",
    "加急",
    "紧急",
    "重要",
    "普通",
    "配送",
    "仓库",
    "运输",
    "签收",
]
ENGLISH_WORDS = [
    "invoice",
    "contract",
    "renewal",
    "quote",
    "complaint",
    "refund",
    "logistics",
    "delay",
    "delivery",
    "quality",
    "repair",
    "install",
    "training",
    "follow-up",
    "satisfied",
    "price",
    "discount",
    "payment",
    "bill",
    "order",
    "shipment",
    "stock",
    "sample",
    "exhibition",
    "visit",
    "meeting",
    "customer",
    "manager",
    "purchase",
    "supply",
    "channel",
    "agent",
    "service",
    "upgrade",
    "system",
    "outage",
    "network",
    "report",
    "approval",
    "budget",
    "quarter",
    "annual",
    "target",
    "growth",
    "shanghai",
    "beijing",
    "packaging",
    "damaged",
    "replacement",
    "coupon",
    "member",
    "points",
    "campaign",
    "promotion",
    "trial",
    "demo",
    "proposal",
    "requirement",
    "evaluation",
    "appointment",
    "confirmed",
    "cancelled",
    "address",
    "phone",
    "email",
    "wechat",
    "urgent",
    "important",
    "warehouse",
    "transport",
]
RARE_CHINESE = [f"{a}{b}" for a in "甲乙丙丁戊己庚辛" for b in "子丑寅卯辰巳午未"]
"""64 rare two-character names, each in about one row in 2,000."""
RARE_ENGLISH = [f"sku{n:04d}" for n in range(200)]
"""200 rare product codes, each in about one row in 4,000."""

CHANNELS = ("phone", "meeting", "email", "sms", "chat", "wechat", "visit", "web")
STAFF = ("李娜", "王芳", "张伟", "刘洋", "陈静", "Emily Chen", "David Wu")


def synthetic_rows(count: int, start: int, rng: random.Random) -> list[tuple[Any, ...]]:
    """`count` interactions as `interactions` rows, in column order."""
    customers = [uuid.UUID(int=rng.getrandbits(128)) for _ in range(1000)]
    base = datetime(2026, 11, 1, tzinfo=UTC)
    rows = []
    for n in range(start, start + count):
        chinese = rng.random() < 0.6
        words = CHINESE_WORDS if chinese else ENGLISH_WORDS
        joiner = "" if chinese else " "
        subject = joiner.join(rng.choices(words, k=rng.randint(2, 4)))
        notes_words = rng.choices(words, k=rng.randint(8, 25))
        if rng.random() < 0.03:
            notes_words.append(rng.choice(RARE_CHINESE))
        if rng.random() < 0.05:
            notes_words.append(rng.choice(RARE_ENGLISH))
        notes = joiner.join(notes_words) if chinese else " ".join(notes_words) + "."
        text = search_text(subject, notes)
        staff = rng.choice(STAFF)
        participants = [{"role": "staff", "name": staff, "contact_id": None}]
        row = {
            "interaction_id": uuid.UUID(int=rng.getrandbits(128)),
            "customer_id": rng.choice(customers),
            "channel": rng.choice(CHANNELS),
            "direction": rng.choice(("inbound", "outbound")),
            "started_at": base - timedelta(seconds=n * 30 + rng.randint(0, 29)),
            "duration_seconds": rng.randint(30, 3600),
            "participants": json.dumps(participants, ensure_ascii=False),
            "participant_names": [staff.lower()],
            "subject": subject,
            "notes": notes,
            "opportunity_id": None,
            "ticket_id": None,
            "source": None,
            "source_id": None,
            "version": 1,
            "correction_count": 0,
            "recorded_at": base,
            "search_text": text,
            "search_grams": search_grams(text),
            "consent_override": None,
            "consent_breach": False,
        }
        rows.append(tuple(row[c] for c in INTERACTION_COLUMNS))
    return rows


async def drop_secondary_indexes(connection: asyncpg.Connection) -> None:
    names = await connection.fetch(
        "SELECT indexname FROM pg_indexes WHERE schemaname = $1 AND tablename = 'interactions' "
        "AND indexname <> 'interactions_pkey'",
        SCHEMA,
    )
    for record in names:
        await connection.execute(f'DROP INDEX "{SCHEMA}"."{record["indexname"]}"')


async def load(pool: asyncpg.Pool, count: int) -> dict[str, float]:
    rng = random.Random(20261123)
    async with pool.acquire() as connection:
        await CUSTOMERS.create_tables(connection)
        await InteractionProjection().create_tables(connection)
        await drop_secondary_indexes(connection)
        started = time.perf_counter()
        done = 0
        while done < count:
            size = min(CHUNK, count - done)
            rows = synthetic_rows(size, done, rng)
            await connection.copy_records_to_table(
                "interactions", records=rows, columns=INTERACTION_COLUMNS, schema_name=SCHEMA
            )
            done += size
            print(f"  loaded {done:,} rows ({time.perf_counter() - started:.0f} s)", flush=True)
        loaded = time.perf_counter()
        await connection.execute("SET maintenance_work_mem = '256MB'")
        await InteractionProjection().create_tables(connection)
        indexed = time.perf_counter()
        await connection.execute("ANALYZE interactions")
        size = await connection.fetchval(
            "SELECT pg_total_relation_size('interactions')::float8 / 1048576"
        )
    return {
        "load_seconds": loaded - started,
        "index_seconds": indexed - loaded,
        "table_and_indexes_mb": size,
    }


async def search(pool: asyncpg.Pool) -> dict[str, float]:
    rng = random.Random(7)
    kinds: dict[str, list[str]] = {
        "chinese_2char": [w for w in CHINESE_WORDS if len(w) == 2],
        "chinese_3plus": [w for w in CHINESE_WORDS if len(w) >= 3] + ["投诉退款", "物流延迟"],
        "english_word": ENGLISH_WORDS,
        "chinese_rare_2char": RARE_CHINESE,
        "english_rare": RARE_ENGLISH,
    }
    figures: dict[str, float] = {}
    everything: list[float] = []
    for kind, keywords in kinds.items():
        latencies = []
        found = 0
        for _ in range(SEARCHES_PER_KIND):
            keyword = rng.choice(keywords)
            started = time.perf_counter()
            rows = await search_interactions(pool, InteractionQuery(keyword=keyword), limit=50)
            latencies.append((time.perf_counter() - started) * 1000)
            found += len(rows)
        everything += latencies
        figures[f"{kind}_median_ms"] = statistics.median(latencies)
        figures[f"{kind}_p99_ms"] = percentile(latencies, 0.99)
        figures[f"{kind}_avg_rows"] = found / SEARCHES_PER_KIND
    figures["all_median_ms"] = statistics.median(everything)
    figures["all_p99_ms"] = percentile(everything, 0.99)
    figures["searches"] = float(len(everything))
    return figures


async def explain(pool: asyncpg.Pool, keyword: str) -> str:
    sql, values = search_sql(InteractionQuery(keyword=keyword), limit=50, after=None)
    rows = await pool.fetch(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}", *values)
    return "\n".join(r[0] for r in rows)


async def measure(postgres: EmbeddedPostgres, count: int) -> dict[str, float]:
    database_url = postgres.dsn("crm_bench_interaction")
    await ensure_database(database_url)
    pool = await create_pool(database_url, SCHEMA, max_size=2)
    try:
        print(f"loading {count:,} interactions with COPY ...", flush=True)
        figures = await load(pool, count)
        print("searching ...", flush=True)
        figures.update(await search(pool))
        for keyword in (RARE_CHINESE[3], "增值税", RARE_ENGLISH[17]):
            print(f"\nEXPLAIN ANALYZE of the search for {keyword!r}:")
            print(await explain(pool, keyword))
    finally:
        await pool.close()
    figures["count"] = float(count)
    return figures


def run_keyword_search(count: int) -> dict[str, float]:
    """Start PostgreSQL, load `count` interactions, search them; return the figures."""
    with (
        tempfile.TemporaryDirectory(prefix="crm-bench-interaction-") as directory,
        EmbeddedPostgres(Path(directory) / "postgres") as postgres,
    ):
        figures = asyncio.run(measure(postgres, count))
    print_figures(figures)
    return figures


def print_figures(figures: dict[str, float]) -> None:
    print(f"\nkeyword search over {figures['count']:,.0f} interactions (milliseconds):")
    for name, value in figures.items():
        if name != "count":
            print(f"  {name:32} {value:10.2f}")
