"""Duplicate detection over a whole directory: `crm bench duplicates --customers 100000`.

In one process, no servers: generates `customers` synthetic directory rows (Chinese
people with common surnames and given names, so that names repeat as they do; Chinese
companies named city + brand + trade + suffix; Latin companies), plants `planted`
duplicates among them (the same customer typed again: a phone in another format, the
company suffix left out or added, full-width letters, an e-mail in capitals), then times
the three steps of a directory scan (`services.customer.duplicates`): profiles (normalised
values), blocking (candidate pairs), scoring (rapidfuzz). Prints the candidate pairs
beside the n(n-1)/2 of comparing everything, the pairs found, and how many of the
planted duplicates were found (recall).
"""

from __future__ import annotations

import random
import resource
import time
from typing import Any

from services.customer.duplicates import (
    THRESHOLD,
    Profile,
    candidate_pairs,
    compare,
    may_match,
    profile_of_row,
)
from services.customer.normalisation import full_width

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于"
    "蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛"
    "闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
)
GIVEN = (
    "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯"
    "婷雪琳晨欣悦子涵博轩思怡梓佳俊杨帆宁波鑫"
)
CITIES = tuple(
    "上海 北京 广州 深圳 杭州 南京 成都 重庆 武汉 西安 苏州 天津 长沙 郑州 青岛 "  # noqa: SIM905
    "宁波 厦门 合肥 昆明 大连".split()
)
TRADES = tuple("贸易 科技 电子 食品 物流 建材 机械 服饰 医药 文化 餐饮 软件 化工 家居 传媒".split())  # noqa: SIM905
BRAND = "华信云图恒通达远瑞丰泰和新创金源宏盛天成博雅佳美正大汇通明德永安中联嘉禾安邦润泽"
SUFFIXES = ("有限公司", "有限责任公司", "股份有限公司", "集团", "")
WORDS = tuple(
    "blue harbor summit river oak maple northern pacific golden bright star green cloud "  # noqa: SIM905
    "silver eagle pioneer union global atlas crown delta".split()
)
LATIN_TRADES = tuple("trading logistics software foods textiles machinery consulting".split())  # noqa: SIM905
LATIN_SUFFIXES = ["Co., Ltd.", "Inc.", "LLC", "GmbH", "Ltd", ""]


def _phone(rng: random.Random) -> str:
    prefix = f"1{rng.choice('3456789')}{rng.randrange(10)}"
    return f"+86 {prefix} {rng.randrange(10_000):04d} {rng.randrange(10_000):04d}"


def _row(rng: random.Random, index: int) -> dict[str, Any]:
    city = rng.choice(CITIES)
    kind = rng.random()
    if kind < 0.5:
        name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
        contact = name
    elif kind < 0.85:
        brand = "".join(rng.choice(BRAND) for _ in range(2))
        name = f"{city}{brand}{rng.choice(TRADES)}{rng.choice(SUFFIXES)}"
        contact = rng.choice(SURNAMES) + rng.choice(GIVEN)
    else:
        words = " ".join(w.title() for w in rng.sample(WORDS, 2))
        name = f"{words} {rng.choice(LATIN_TRADES).title()} {rng.choice(LATIN_SUFFIXES)}".strip()
        contact = rng.choice(SURNAMES) + rng.choice(GIVEN)
    return {
        "customer_id": f"c{index}",
        "name": name,
        "contacts": [
            {
                "name": contact,
                "phones": [_phone(rng)],
                "emails": [f"user{index}@example{rng.randrange(100)}.com"],
            }
        ],
        "addresses": [
            {
                "line1": f"{rng.choice(BRAND)}{rng.choice(BRAND)}路 {rng.randrange(1, 999)} 号",
                "city": city,
            }
        ],
        "customer_references": [],
    }


def _typed_again(rng: random.Random, original: dict[str, Any], index: int) -> dict[str, Any]:
    """The same customer entered again, differently."""
    contact = dict(original["contacts"][0])
    way = rng.randrange(4)
    name = original["name"]
    if way == 0:  # the phone in another format, nothing else shared
        contact = {
            "name": "某人",
            "phones": [contact["phones"][0].replace("+86 ", "").replace(" ", "-")],
            "emails": [],
        }
    elif way == 1:  # the suffix left out or added, same city
        for suffix in (
            "有限公司",
            "有限责任公司",
            "股份有限公司",
            "集团",
            " Co., Ltd.",
            " Inc.",
            " LLC",
            " GmbH",
            " Ltd",
        ):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        else:
            name = f"{name}有限公司"
        contact = {"name": contact["name"], "phones": [], "emails": []}
    elif way == 2:  # the e-mail in capitals
        contact = {"name": "某人", "phones": [], "emails": [contact["emails"][0].upper()]}
    else:  # full-width, and the same contact person
        name = full_width(name)
        contact = {"name": contact["name"], "phones": [], "emails": []}
    return {**original, "customer_id": f"c{index}", "name": name, "contacts": [contact]}


def _clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _spent(since: tuple[float, float], until: tuple[float, float]) -> str:
    return f"{until[0] - since[0]:.2f} s ({until[1] - since[1]:.2f} s CPU)"


def directory(
    customers: int, planted: int, seed: int = 19
) -> tuple[list[dict[str, Any]], set[frozenset[str]]]:
    """`customers` directory rows, the last `planted` of them duplicates of earlier ones;
    and the pairs of ids (`c<n>`) of the planted duplicates."""
    rng = random.Random(seed)
    rows = [_row(rng, i) for i in range(customers - planted)]
    truth = set()
    for index in range(customers - planted, customers):
        original = rows[rng.randrange(customers - planted)]
        rows.append(_typed_again(rng, original, index))
        truth.add(frozenset((original["customer_id"], f"c{index}")))
    return rows, truth


def run_duplicates(customers: int, planted: int, seed: int = 19) -> None:
    rows, truth = directory(customers, planted, seed)
    started = _clocks()
    profiles: list[Profile] = [profile_of_row(r, "CN") for r in rows]
    profiled = _clocks()
    pairs = list(candidate_pairs(profiles))
    blocked = _clocks()
    found = []
    for i, j in pairs:
        if not may_match(profiles[i], profiles[j]):
            continue
        match = compare(profiles[i], profiles[j])
        if match.score >= THRESHOLD:
            found.append(match)
    scored = _clocks()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    found_pairs = {frozenset((m.a, m.b)) for m in found}
    hits = len(truth & found_pairs)
    everything = customers * (customers - 1) // 2
    print(f"customers: {customers} (of which {planted} planted duplicates)")
    print(f"profiles:  {_spent(started, profiled)}")
    print(
        f"blocking:  {_spent(profiled, blocked)}, {len(pairs)} candidate pairs "
        f"({len(pairs) / everything:.4%} of all {everything} pairs)"
    )
    rate = len(pairs) / max(scored[1] - blocked[1], 1e-9)
    print(f"scoring:   {_spent(blocked, scored)}, {rate:,.0f} pairs per CPU second")
    print(f"total:     {_spent(started, scored)}, peak memory {peak / 2**20:.0f} MiB (process)")
    print(
        f"found:     {len(found)} pairs at score >= {THRESHOLD}: {hits} planted, "
        f"{len(found_pairs) - hits} others (same name and city, and the like)"
    )
    print(
        f"recall:    {hits}/{len(truth)} planted duplicates found ({hits / max(len(truth), 1):.1%})"
    )
    by_kind: dict[str, int] = {}
    for match in found:
        for piece in match.evidence:
            by_kind[piece.kind] = by_kind.get(piece.kind, 0) + 1
    print("evidence:  " + ", ".join(f"{k} {v}" for k, v in sorted(by_kind.items())))
