"""The demo customers (pure): `demo_customers(count, seed)` gives the same request bodies
for `POST /customers` for the same arguments, with industries, regions, owners, tags and
classifications spread the way a real book of business looks."""

import random
from collections.abc import Sequence
from typing import Any

from local.demo.customer_vocabulary import (
    BRANDS,
    CITIES,
    CITY_WEIGHTS,
    ENGLISH_COMPANIES,
    ENGLISH_GIVEN,
    ENGLISH_SURNAMES,
    ENGLISH_TITLES,
    GIVEN_NAMES,
    INDUSTRIES,
    INDUSTRY_WEIGHTS,
    INDUSTRY_WORDS,
    INTERNAL_UNITS,
    OTHER_OWNERS,
    OWNERS_BY_REGION,
    PARTNER_WORDS,
    PERSONAL_MAIL,
    SOURCE_TAGS,
    SURNAMES,
    TITLES,
    City,
)

DEFAULT_SEED = 7


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


def _pick_city(rng: random.Random) -> City:
    return rng.choices(CITIES, weights=CITY_WEIGHTS)[0]


def _mobile(rng: random.Random) -> str:
    prefix = f"1{rng.choice('35789')}{rng.randint(0, 9)}"
    return f"+86 {prefix} {rng.randint(0, 9999):04d} {rng.randint(0, 9999):04d}"


def _landline(rng: random.Random, city: City) -> str:
    return f"+86 {city[4]} {rng.randint(2000, 8999)} {rng.randint(0, 9999):04d}"


def _postal_code(rng: random.Random, city: City) -> str:
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
    rng: random.Random, city: City, label: str, *, english: bool, home: bool = False
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
