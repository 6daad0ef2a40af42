"""`crm demo`: load plausible, deterministic demo customers through the customer API.

`demo_customers()` is a pure function: the same count and seed always give the same
request bodies (Chinese and English companies and people across China, with industries,
regions, owners, tags and classifications spread the way a real book of business looks).
`load_demo()` registers them with `POST /customers` and then tags every fourth one with
`POST /customers/{id}/tags`, so the demo history holds more than registrations.
"""

import argparse
import asyncio
import contextlib
import os
import random
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

DEFAULT_COUNT = 60
DEFAULT_SEED = 7
FOLLOW_UP_TAG = "follow-up-2026q3"


def default_customer_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('CRM_CUSTOMER_PORT', '8001')}"


# Vocabulary ---------------------------------------------------------------------------

# city, city in English, region, region in English, telephone area code, postal prefix,
# streets, streets in English
_City = tuple[str, str, str, str, str, str, tuple[str, ...], tuple[str, ...]]
CITIES: tuple[_City, ...] = (
    ("上海", "Shanghai", "华东", "East China", "21", "200",
     ("浦东新区世纪大道", "静安区南京西路", "徐汇区漕溪北路", "闵行区虹梅路"),
     ("Century Avenue, Pudong", "West Nanjing Road, Jing'an")),
    ("杭州", "Hangzhou", "华东", "East China", "571", "310",
     ("西湖区文三路", "滨江区网商路", "余杭区文一西路"),
     ("Wensan Road, Xihu", "Binjiang Avenue")),
    ("南京", "Nanjing", "华东", "East China", "25", "210",
     ("鼓楼区中山路", "建邺区江东中路"),
     ("Zhongshan Road, Gulou", "Jiangdong Middle Road")),
    ("苏州", "Suzhou", "华东", "East China", "512", "215",
     ("工业园区星湖街", "姑苏区人民路"),
     ("Xinghu Street, SIP", "Renmin Road, Gusu")),
    ("北京", "Beijing", "华北", "North China", "10", "100",
     ("朝阳区建国路", "海淀区中关村大街", "东城区东长安街"),
     ("Jianguo Road, Chaoyang", "Zhongguancun Street, Haidian")),
    ("天津", "Tianjin", "华北", "North China", "22", "300",
     ("和平区南京路", "滨海新区第二大街"),
     ("Nanjing Road, Heping", "Second Avenue, TEDA")),
    ("深圳", "Shenzhen", "华南", "South China", "755", "518",
     ("南山区科技园南路", "福田区深南大道", "宝安区新安六路"),
     ("Shennan Boulevard, Futian", "Keyuan Road, Nanshan")),
    ("广州", "Guangzhou", "华南", "South China", "20", "510",
     ("天河区花城大道", "越秀区环市东路", "黄埔区科学大道"),
     ("Huacheng Avenue, Tianhe", "Huanshi East Road, Yuexiu")),
    ("成都", "Chengdu", "西南", "Southwest China", "28", "610",
     ("高新区天府大道", "锦江区红星路"),
     ("Tianfu Avenue, High-tech Zone", "Hongxing Road, Jinjiang")),
    ("重庆", "Chongqing", "西南", "Southwest China", "23", "400",
     ("渝中区民族路", "江北区北城天街"),
     ("Minzu Road, Yuzhong", "Beicheng Street, Jiangbei")),
    ("武汉", "Wuhan", "华中", "Central China", "27", "430",
     ("江汉区建设大道", "洪山区珞喻路"),
     ("Jianshe Avenue, Jianghan", "Luoyu Road, Hongshan")),
    ("西安", "Xi'an", "西北", "Northwest China", "29", "710",
     ("雁塔区高新路", "碑林区南大街"),
     ("Gaoxin Road, Yanta", "South Street, Beilin")),
)  # fmt: skip
CITY_WEIGHTS = (14, 7, 5, 5, 10, 3, 9, 8, 5, 3, 3, 2)

INDUSTRIES = (
    "retail", "manufacturing", "software", "logistics", "healthcare", "education", "finance",
)  # fmt: skip
INDUSTRY_WEIGHTS = (18, 20, 16, 14, 10, 8, 10)
# How a Chinese company name says its trade, and the word for its web domain.
INDUSTRY_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "retail": (("贸易", "trade"), ("商贸", "trading"), ("百货", "retail")),
    "manufacturing": (
        ("精密机械", "machinery"),
        ("电子科技", "electronics"),
        ("新材料", "materials"),
    ),
    "software": (("软件", "soft"), ("信息技术", "it"), ("数据科技", "data")),
    "logistics": (("物流", "logistics"), ("供应链管理", "scm"), ("国际货运代理", "freight")),
    "healthcare": (("医疗器械", "medical"), ("健康科技", "health"), ("医药", "pharma")),
    "education": (("教育科技", "edu"), ("职业培训", "training")),
    "finance": (("投资管理", "capital"), ("融资租赁", "leasing"), ("保险经纪", "insurance")),
}
PARTNER_WORDS: dict[str, tuple[tuple[str, str], ...]] = {
    "retail": (("分销", "distribution"), ("电子商务", "ecommerce")),
    "software": (("系统集成", "si"), ("信息服务", "itservice")),
    "manufacturing": (("工业设备", "equipment"),),
}
BRANDS = (
    ("华信", "huaxin"), ("恒通", "hengtong"), ("瑞丰", "ruifeng"), ("博远", "boyuan"),
    ("金诚", "jincheng"), ("汇达", "huida"), ("鼎盛", "dingsheng"), ("安泰", "antai"),
    ("新源", "xinyuan"), ("宏图", "hongtu"), ("启明", "qiming"), ("云帆", "yunfan"),
    ("天成", "tiancheng"), ("嘉禾", "jiahe"), ("长风", "changfeng"), ("远景", "yuanjing"),
    ("众合", "zhonghe"), ("明辉", "minghui"), ("润泽", "runze"), ("正泰", "zhengtai"),
)  # fmt: skip
ENGLISH_COMPANIES = (
    ("Northwind Trading", "retail"),
    ("Harbor Logistics", "logistics"),
    ("Bluepeak Software", "software"),
    ("Evergreen Medical", "healthcare"),
    ("Summit Precision Manufacturing", "manufacturing"),
    ("Brightpath Education", "education"),
    ("Crescent Capital", "finance"),
    ("Orchid Retail Group", "retail"),
    ("Silverline Freight", "logistics"),
    ("Lumen Data Systems", "software"),
    ("Keystone Components", "manufacturing"),
    ("Redwood Health", "healthcare"),
)
INTERNAL_UNITS = (
    ("集团信息技术部", "software", "上海"),
    ("集团采购中心", "retail", "上海"),
    ("华南区域运营部", "logistics", "深圳"),
    ("Group Finance Shared Services", "finance", "Beijing"),
)
SURNAMES = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("林", "lin"), ("高", "gao"), ("罗", "luo"),
)  # fmt: skip
GIVEN_NAMES = (
    ("伟", "wei"), ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"),
    ("磊", "lei"), ("洋", "yang"), ("勇", "yong"), ("艳", "yan"), ("杰", "jie"),
    ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("秀英", "xiuying"), ("建华", "jianhua"),
    ("志强", "zhiqiang"), ("晓东", "xiaodong"), ("海燕", "haiyan"), ("丽娟", "lijuan"),
    ("国栋", "guodong"), ("雪梅", "xuemei"), ("子涵", "zihan"), ("浩然", "haoran"),
    ("思远", "siyuan"),
)  # fmt: skip
ENGLISH_GIVEN = (
    "Emily", "David", "Michael", "Sarah", "James", "Linda",
    "Kevin", "Grace", "Daniel", "Sophie", "Ryan", "Olivia",
)  # fmt: skip
ENGLISH_SURNAMES = (
    "Chen", "Wang", "Zhang", "Li", "Liu", "Wong",
    "Tan", "Smith", "Miller", "Brown", "Johnson", "Lee",
)  # fmt: skip
TITLES = (
    "总经理",
    "采购经理",
    "财务总监",
    "IT 主管",
    "运营总监",
    "市场经理",
    "行政主管",
    "销售总监",
)
ENGLISH_TITLES = (
    "General Manager", "Procurement Manager", "CFO", "IT Manager",
    "Operations Director", "Marketing Manager", "Office Manager", "Head of Sales",
)  # fmt: skip
OWNERS_BY_REGION = {
    "华东": ("李娜", "陈静"),
    "华北": ("刘洋",),
    "华南": ("王磊",),
}
OTHER_OWNERS = ("Kevin Xu", "Lisa Zhou")
PERSONAL_MAIL = ("qq.com", "163.com", "126.com", "outlook.com", "gmail.com")
SOURCE_TAGS = {
    "trade show": "trade-show-2026",
    "wechat": "wechat-lead",
    "webinar": "webinar-2026",
    "referral": "referral",
}


# Generator ----------------------------------------------------------------------------


def demo_customers(count: int, seed: int = DEFAULT_SEED) -> list[dict[str, Any]]:
    """`count` request bodies for `POST /customers`; the same arguments give the same list."""
    rng = random.Random(seed)
    names: set[str] = set()
    internal = list(INTERNAL_UNITS)
    customers = []
    for kind in _kinds(rng, count):
        if kind == "internal":
            customer = _internal(rng, internal.pop(0))
        elif kind == "consumer":
            customer = _consumer(rng, names)
        else:
            customer = _company(rng, names, partner=kind == "channel_partner")
        names.add(customer["name"])
        customers.append(customer)
    return customers


def _kinds(rng: random.Random, count: int) -> list[str]:
    """About 65% businesses, 20% consumers, 10% channel partners, a few internal units."""
    internal = min(len(INTERNAL_UNITS), round(count * 0.05))
    partners = round(count * 0.1)
    consumers = round(count * 0.2)
    kinds = ["internal"] * internal + ["channel_partner"] * partners + ["consumer"] * consumers
    kinds += ["business"] * max(0, count - len(kinds))
    rng.shuffle(kinds)
    return kinds


def _pick_city(rng: random.Random) -> _City:
    return rng.choices(CITIES, weights=CITY_WEIGHTS)[0]


def _mobile(rng: random.Random) -> str:
    prefix = f"1{rng.choice('35789')}{rng.randint(0, 9)}"
    return f"+86 {prefix} {rng.randint(0, 9999):04d} {rng.randint(0, 9999):04d}"


def _landline(rng: random.Random, city: _City) -> str:
    return f"+86 {city[4]} {rng.randint(2000, 8999)} {rng.randint(0, 9999):04d}"


def _postal_code(rng: random.Random, city: _City) -> str:
    return f"{city[5]}{rng.randint(0, 99):02d}0"


def _chinese_person(rng: random.Random) -> tuple[str, str, str]:
    """Name, surname in pinyin, given name in pinyin."""
    surname, surname_py = rng.choice(SURNAMES)
    given, given_py = rng.choice(GIVEN_NAMES)
    return surname + given, surname_py, given_py


def _english_person(rng: random.Random) -> tuple[str, str, str]:
    given, surname = rng.choice(ENGLISH_GIVEN), rng.choice(ENGLISH_SURNAMES)
    return f"{given} {surname}", surname.lower(), given.lower()


def _address(
    rng: random.Random, city: _City, label: str, *, english: bool, home: bool = False
) -> dict[str, Any]:
    if english:
        line1 = f"{rng.randint(1, 999)} {rng.choice(city[7])}"
        if home:
            line1 += f", Apt {rng.randint(1, 32)}{rng.randint(1, 4):02d}"
        name, region = city[1], city[3]
    else:
        line1 = f"{rng.choice(city[6])}{rng.randint(1, 999)}号"
        if home:
            line1 += f"{rng.randint(1, 30)}栋{rng.randint(1, 32)}{rng.randint(1, 4):02d}室"
        name, region = city[0], city[2]
    return {
        "label": label,
        "line1": line1,
        "city": name,
        "region": region,
        "postal_code": _postal_code(rng, city),
        "country": "CN",
    }


def _classification(rng: random.Random, kind: str, weights: Sequence[int]) -> dict[str, Any]:
    tier = rng.choices(("vip", "important", "ordinary"), weights=weights)[0]
    stage = {
        "vip": lambda: rng.choices(("returning", "loyal"), weights=(1, 3))[0],
        "important": lambda: rng.choices(("new", "returning", "loyal"), weights=(2, 3, 2))[0],
        "ordinary": lambda: rng.choices(
            ("potential", "new", "returning", "loyal"), weights=(4, 3, 2, 1)
        )[0],
    }[tier]()
    behaviour_weights = {"vip": (4, 2, 3, 1), "important": (2, 3, 4, 2), "ordinary": (1, 3, 4, 4)}
    behaviour: str | None = rng.choices(
        ("lighthouse", "follower", "rational", "bargain_seeking"),
        weights=behaviour_weights[tier],
    )[0]
    if stage == "potential" and rng.random() < 0.6:
        behaviour = None  # not known yet
    if kind == "channel_partner":
        level = rng.choices(("partner", "proactive"), weights=(4, 1))[0]
    elif stage == "potential":
        level = rng.choice(("basic", "passive"))
    elif tier == "vip":
        level = rng.choices(("proactive", "partner"), weights=(3, 1))[0]
    elif tier == "important":
        level = rng.choice(("responsive", "proactive"))
    else:
        level = rng.choices(("basic", "passive", "responsive"), weights=(3, 3, 2))[0]
    return {
        "importance_tier": tier,
        "loyalty_stage": stage,
        "value_behaviour": behaviour,
        "relationship_level": level,
    }


def _channel_preferences(rng: random.Random, *, english: bool) -> dict[str, list[str]]:
    channels = ("email", "phone", "wechat", "sms", "mail")
    weights = (6, 4, 2, 1, 1) if english else (3, 5, 8, 2, 1)
    preferred: list[str] = []
    for _ in range(rng.choice((1, 2, 2, 3))):
        remaining = [(c, w) for c, w in zip(channels, weights, strict=True) if c not in preferred]
        preferred.append(rng.choices([c for c, _ in remaining], [w for _, w in remaining])[0])
    opted_out: list[str] = []
    if rng.random() < 0.3:
        candidates = [c for c in ("sms", "mail", "phone") if c not in preferred]
        if candidates:
            opted_out.append(rng.choice(candidates))
    return {"preferred": preferred, "opted_out": opted_out}


def _tags(
    rng: random.Random, source: str, classification: dict[str, Any], industry: str | None
) -> list[str]:
    tags: list[str] = []
    if source in SOURCE_TAGS:
        tags.append(SOURCE_TAGS[source])
    if classification["importance_tier"] == "vip":
        tags.append("key-account")
        if classification["value_behaviour"] == "lighthouse":
            tags.append("strategic")
    if classification["value_behaviour"] == "bargain_seeking":
        tags.append("price-sensitive")
    if classification["loyalty_stage"] in ("returning", "loyal") and rng.random() < 0.25:
        tags.append("renewal-due")
    if industry == "software" and rng.random() < 0.3:
        tags.append("pilot")
    if industry == "manufacturing" and rng.random() < 0.3:
        tags.append("export")
    return tags


def _owner(rng: random.Random, region: str, *, english: bool) -> str:
    if english:
        return rng.choice(OTHER_OWNERS)
    return rng.choice(OWNERS_BY_REGION.get(region, OTHER_OWNERS))


def _company(rng: random.Random, taken: set[str], *, partner: bool) -> dict[str, Any]:
    english = rng.random() < 0.18
    while True:
        city = _pick_city(rng)
        if english:
            base, industry = rng.choice(ENGLISH_COMPANIES)
            group = f"{base} Partners" if partner else base
            name = f"{group} ({city[1]}) Co., Ltd."
            domain = base.split()[0].lower() + ".com"
            region = city[3]
        else:
            words = PARTNER_WORDS if partner else INDUSTRY_WORDS
            industry = rng.choices(
                [i for i in INDUSTRIES if i in words],
                [w for i, w in zip(INDUSTRIES, INDUSTRY_WEIGHTS, strict=True) if i in words],
            )[0]
            brand, brand_py = rng.choice(BRANDS)
            word, word_py = rng.choice(words[industry])
            suffix = "股份有限公司" if rng.random() < 0.2 else "有限公司"
            name = f"{city[0]}{brand}{word}{suffix}"
            domain = f"{brand_py}-{word_py}.com.cn"
            region = city[2]
        if name not in taken:
            break
    source = rng.choices(
        ("trade show", "wechat", "website", "referral", "cold call", "partner", "webinar"),
        weights=(5, 3 if not english else 1, 4, 4, 2, 3 if not partner else 0, 2),
    )[0]
    kind = "channel_partner" if partner else "business"
    classification = _classification(rng, kind, (3, 5, 2) if partner else (3, 6, 11))
    contacts = []
    for _ in range(rng.choices((1, 2, 3), weights=(3, 4, 2))[0]):
        person, surname_py, given_py = (_english_person if english else _chinese_person)(rng)
        phones = [_mobile(rng)]
        if rng.random() < 0.4:
            phones.append(_landline(rng, city))
        contacts.append(
            {
                "name": person,
                "title": rng.choice(ENGLISH_TITLES if english else TITLES),
                "phones": phones,
                "emails": [f"{given_py}.{surname_py}@{domain}"]
                if english
                else [f"{surname_py}.{given_py}@{domain}"],
            }
        )
    addresses = [_address(rng, city, "office", english=english)]
    if rng.random() < 0.35:
        addresses.append(_address(rng, city, "billing", english=english))
    if industry in ("retail", "manufacturing", "logistics") and rng.random() < 0.5:
        addresses.append(_address(rng, _pick_city(rng), "shipping", english=english))
    return {
        "name": name,
        "kind": kind,
        "industry": industry,
        "region": region,
        "source_channel": source,
        "owner": _owner(rng, city[2], english=english),
        "tags": _tags(rng, source, classification, industry),
        "contacts": contacts,
        "addresses": addresses,
        "classification": classification,
        "channel_preferences": _channel_preferences(rng, english=english),
    }


def _consumer(rng: random.Random, taken: set[str]) -> dict[str, Any]:
    english = rng.random() < 0.15
    city = _pick_city(rng)
    while True:
        name, surname_py, given_py = (_english_person if english else _chinese_person)(rng)
        if name not in taken:
            break
    source = rng.choices(("wechat", "website", "referral", "walk-in"), weights=(5, 3, 3, 2))[0]
    classification = _classification(rng, "consumer", (1, 3, 14))
    email = f"{surname_py}.{given_py}{rng.randint(1, 99)}@{rng.choice(PERSONAL_MAIL)}"
    contact = {
        "name": name,
        "title": None,
        "phones": [_mobile(rng)],
        "emails": [email] if rng.random() < 0.7 else [],
    }
    potential = classification["loyalty_stage"] == "potential"
    return {
        "name": name,
        "kind": "consumer",
        "industry": None,
        "region": city[3] if english else city[2],
        "source_channel": source,
        "owner": None if potential else _owner(rng, city[2], english=english),
        "tags": _tags(rng, source, classification, None),
        "contacts": [contact],
        "addresses": []
        if potential
        else [_address(rng, city, "shipping", english=english, home=True)],
        "classification": classification,
        "channel_preferences": _channel_preferences(rng, english=english),
    }


def _internal(rng: random.Random, unit: tuple[str, str, str]) -> dict[str, Any]:
    name, industry, city_name = unit
    english = name.isascii()
    city = next(c for c in CITIES if city_name in (c[0], c[1]))
    person, surname_py, given_py = (_english_person if english else _chinese_person)(rng)
    return {
        "name": name,
        "kind": "internal",
        "industry": industry,
        "region": city[3] if english else city[2],
        "source_channel": "internal",
        "owner": _owner(rng, city[2], english=english),
        "tags": ["internal"],
        "contacts": [
            {
                "name": person,
                "title": "Head of Department" if english else "部门负责人",
                "phones": [_landline(rng, city)],
                "emails": [f"{surname_py}.{given_py}@crm-group.com.cn"],
            }
        ],
        "addresses": [_address(rng, city, "office", english=english)],
        "classification": {
            "importance_tier": "important",
            "loyalty_stage": "loyal",
            "value_behaviour": "rational",
            "relationship_level": "partner",
        },
        "channel_preferences": {"preferred": ["email", "wechat"], "opted_out": []},
    }


# Loader -------------------------------------------------------------------------------


class DemoLoadError(RuntimeError):
    """The customer service refused a demo request."""


def _check(response: "httpx.Response", what: str) -> dict[str, Any]:
    if response.status_code >= 300:
        raise DemoLoadError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


async def directory_is_empty(
    customer_url: str, client: "httpx.AsyncClient | None" = None, token: str | None = None
) -> bool:
    """Whether the customer directory lists no customer at all."""
    import httpx

    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, headers=_bearer(token))
            )
        response = await client.get(f"{customer_url.rstrip('/')}/customers", params={"limit": 1})
        return not _check(response, "GET /customers")["items"]


async def load_demo(
    customer_url: str,
    count: int = DEFAULT_COUNT,
    *,
    seed: int = DEFAULT_SEED,
    client: "httpx.AsyncClient | None" = None,
    progress: Callable[[int, int], None] | None = None,
    token: str | None = None,
) -> list[str]:
    """Register `demo_customers(count, seed)`; returns the new customer ids in order.

    Sends `token` when it opens its own client (a given client carries its own)."""
    import httpx

    base = customer_url.rstrip("/")
    ids: list[str] = []
    async with contextlib.AsyncExitStack() as stack:
        if client is None:
            client = await stack.enter_async_context(
                httpx.AsyncClient(timeout=30, headers=_bearer(token))
            )
        customers = demo_customers(count, seed)
        for index, body in enumerate(customers):
            created = _check(
                await client.post(f"{base}/customers", json=body),
                f"POST /customers for {body['name']}",
            )
            customer_id = str(created["customer_id"])
            if index % 4 == 1:
                _check(
                    await client.post(
                        f"{base}/customers/{customer_id}/tags",
                        json={"tag": FOLLOW_UP_TAG},
                        headers={"If-Match": f'"{created["version"]}"'},
                    ),
                    f"POST /customers/{customer_id}/tags",
                )
            ids.append(customer_id)
            if progress is not None:
                progress(index + 1, len(customers))
    return ids


# Subcommand ---------------------------------------------------------------------------


def register(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = subparsers.add_parser(
        "demo",
        help="load demo customers through the customer service API",
        description="Register deterministic demo customers (Chinese and English companies "
        "and consumers) through the customer service's HTTP API. Loads them every time it "
        "runs; `crm up` loads them only into an empty directory.",
    )
    parser.add_argument(
        "--customer-url",
        default=default_customer_url(),
        help="customer service base URL (default: %(default)s, port from CRM_CUSTOMER_PORT)",
    )
    parser.add_argument(
        "--count", type=int, default=DEFAULT_COUNT, help="customers to register (default: 60)"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="random seed of the generator (default: 7)"
    )
    parser.add_argument(
        "--token",
        default=None,
        help="bearer token allowed to register customers (default: CRM_TOKEN, else an "
        "administrator token from the secret `crm up` keeps in ./.crm)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import httpx

    from local.tokens import TokenError, cli_token

    if args.count < 0:
        print("crm demo: error: --count must not be negative", file=sys.stderr)
        return 2
    try:
        token = cli_token(args.token)
    except TokenError as error:
        print(f"crm demo: error: {error}", file=sys.stderr)
        return 2

    def progress(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"  {done}/{total} customers registered", flush=True)

    try:
        ids = asyncio.run(
            load_demo(args.customer_url, args.count, seed=args.seed, progress=progress, token=token)
        )
    except httpx.TransportError as error:
        print(
            f"crm demo: error: cannot reach the customer service at {args.customer_url} "
            f"({error!r}); is `crm up` running?",
            file=sys.stderr,
        )
        return 1
    except DemoLoadError as error:
        print(f"crm demo: error: {error}", file=sys.stderr)
        return 1
    print(f"Loaded {len(ids)} demo customers into {args.customer_url}.")
    return 0
