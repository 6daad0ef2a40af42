"""Duplicate detection: when two customer records are probably one customer. Pure; no I/O.

A record is compared through its `Profile`: the normalised values that can name a
customer. Two profiles are scored (`compare`) by the evidence they share, each piece with
a weight, combined as independent clues (`1 - Π(1 - weight)`), so that one strong clue
or several weak ones make a likely duplicate, and the evidence is listed:

- exact matches on normalised keys: an external reference (`source/id`), an e-mail
  address (case-folded), a phone number (E.164, whatever format it was typed in);
- a fuzzy match of the names (rapidfuzz), after `fold_name`: full-width to half-width,
  case-folded, punctuation dropped, company suffixes (有限公司, 股份有限公司, 集团, Co.,
  Ltd., Inc., LLC, GmbH, ...) left out. Chinese names are compared character by
  character, Latin ones word by word in any order ("Zhang Wei" is "Wei Zhang");
- what supports a name match: the same city, the same street address, a contact person
  of the same name.

A name alone is not enough (two customers called 王氏贸易 may be two); a name and a city,
an address or a contact person (other than the customer itself) are, and so is any exact
key. A short name (张伟) says less: it takes a phone, an e-mail, or an address and a city.

Comparing every pair of a directory is O(n²); `candidate_pairs` compares only records
that share blocking keys (`blocking_keys`): one strong key (an exact key, the folded name,
the name with a city) or two weak ones (two consecutive Chinese characters of the name,
the first four letters of a Latin word of it). A key shared by more than `MAX_BLOCK`
records (a bigram like 上海, a word like "trad") says too little to be worth its pairs
and is left out; the exact keys and the name-with-city key still bring such records
together. Among the candidates, `may_match` skips those that cannot reach the threshold
before `compare` scores the rest.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rapidfuzz import fuzz

from services.customer.domain import placeholder_name
from services.customer.search import e164

THRESHOLD = 0.75
"""The score from which two records are a possible duplicate."""
MAX_BLOCK = 50
"""The most records a blocking key brings together; a larger block is left out."""
NAME_MATCH = 0.85
"""The least name similarity that counts as evidence."""

WEIGHTS = {
    "reference": 0.99,
    "email": 0.9,
    "phone": 0.85,
    "name": 0.7,
    "address": 0.4,
    "contact": 0.35,
    "city": 0.2,
}
"""How much each kind of evidence says (`name`: for identical names; a similar one says
proportionally less)."""
WEAK_KEYS = ("bigram:", "word:")
"""Blocking keys that say little alone (`are_candidates`)."""
SHORT_NAME = 4
SHORT_WEIGHT = 0.5
"""A name of fewer characters (a Chinese person's 张伟, a company's initials) is shared by
many: it says less."""

CHINESE_SUFFIXES = (
    "集团股份有限公司",
    "集团有限责任公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "总公司",
    "公司",
    "集团",
    "股份",
)
LATIN_SUFFIXES = frozenset(
    {
        *("co", "company", "corp", "corporation", "inc", "incorporated", "llc", "llp", "lp"),
        *("ltd", "limited", "plc", "gmbh", "ag", "kg", "sa", "sarl", "srl", "spa", "bv", "nv"),
        *("pte", "pty", "oy", "ab", "as", "group", "holdings"),
    }
)
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


@functools.lru_cache(maxsize=16384)  # cities and contact names come again and again
def fold_name(name: str) -> str:
    """`name` as names are compared: half-width, case-folded, punctuation and company
    suffixes left out, words separated by one space."""
    text = _PUNCTUATION.sub(" ", unicodedata.normalize("NFKC", name).casefold())
    words = text.split()
    while len(words) > 1 and words[-1] in LATIN_SUFFIXES:
        words.pop()
    text = " ".join(words)
    stripped = True
    while stripped:
        stripped = False
        for suffix in CHINESE_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)].rstrip()
                stripped = True
                break
    return text


def is_chinese(folded: str) -> bool:
    return _CJK.search(folded) is not None


def name_similarity(a: str, b: str, cutoff: float = 0) -> float:
    """How alike two folded names are, 0 to 1: Chinese character by character, Latin word
    by word in any order; 0 below `cutoff`."""
    if not a or not b:
        return 0.0
    if is_chinese(a) or is_chinese(b):
        ratio = fuzz.ratio(a.replace(" ", ""), b.replace(" ", ""), score_cutoff=cutoff * 100)
    else:
        ratio = fuzz.token_sort_ratio(a, b, score_cutoff=cutoff * 100)
    return float(ratio) / 100


@dataclass(frozen=True)
class Profile:
    """What of a customer record can tell it is another: its normalised values."""

    ref: str
    """The record: a customer id, or an import's row (`row 12`)."""
    name: str
    display_name: str = ""
    emails: frozenset[str] = frozenset()
    phones: frozenset[str] = frozenset()
    references: frozenset[str] = frozenset()
    cities: frozenset[str] = frozenset()
    streets: frozenset[str] = frozenset()
    contact_names: frozenset[str] = frozenset()

    def as_dict(self) -> dict[str, Any]:
        """The profile as JSON holds it (`from_dict` reads it back)."""
        return {
            name: sorted(value) if isinstance(value, frozenset) else value
            for name, value in vars(self).items()
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Profile:
        return cls(
            ref=values["ref"],
            name=values["name"],
            display_name=values["display_name"],
            emails=frozenset(values["emails"]),
            phones=frozenset(values["phones"]),
            references=frozenset(values["references"]),
            cities=frozenset(values["cities"]),
            streets=frozenset(values["streets"]),
            contact_names=frozenset(values["contact_names"]),
        )


@dataclass(frozen=True)
class Evidence:
    kind: str
    detail: str
    weight: float

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "weight": round(self.weight, 3)}


@dataclass(frozen=True)
class Match:
    """Two records that may be one customer: their score and why."""

    a: str
    b: str
    score: float
    evidence: tuple[Evidence, ...] = field(default=())

    def evidence_dicts(self) -> list[dict[str, Any]]:
        return [e.as_dict() for e in self.evidence]


def _folded_text(value: str | None) -> str:
    return " ".join(unicodedata.normalize("NFKC", value or "").casefold().split())


def _phones(raw: Iterable[str], region: str) -> set[str]:
    """E.164 forms of possible numbers (not only valid ones: a number of a new range is
    still the same number however it is typed)."""
    return {number for value in raw if (number := e164(value, region))}


def _emails(raw: Iterable[str]) -> set[str]:
    """E-mail addresses as compared: half-width, case-folded (what reaches a customer was
    checked as an address already, by the contract or the import)."""
    return {folded for value in raw if (folded := _folded_text(value))}


def profile_of(
    ref: str,
    name: str,
    *,
    contacts: Iterable[Mapping[str, Any]] = (),
    addresses: Iterable[Mapping[str, Any]] = (),
    references: Iterable[Mapping[str, str]] = (),
    region: str = "CN",
    cleaned: bool = False,
) -> Profile:
    """The profile of a record: a directory row, a registration (whose values may be
    typed in any format; `region` reads phone numbers without a country code), or an
    import row (`cleaned`: its e-mails are case-folded and its phones in E.164 already)."""
    contacts = list(contacts)
    addresses = list(addresses)
    emails = [e for c in contacts for e in c.get("emails") or ()]
    phones = [p for c in contacts for p in c.get("phones") or ()]
    folded = fold_name(name)
    return Profile(
        ref=ref,
        name=folded,
        display_name=name,
        emails=frozenset(emails if cleaned else _emails(emails)),
        phones=frozenset(phones if cleaned else _phones(phones, region)),
        references=frozenset(f"{r['source']}/{r['source_customer_id']}" for r in references),
        cities=frozenset(c for a in addresses if (c := fold_name(a.get("city") or ""))),
        streets=frozenset(s for a in addresses if (s := _folded_text(a.get("line1")))),
        contact_names=frozenset(
            n for c in contacts if (n := fold_name(c.get("name") or "")) and n != folded
        ),
    )


def compare(a: Profile, b: Profile) -> Match:
    """The score of `a` and `b` being one customer, with the evidence."""
    evidence: list[Evidence] = []
    for kind, mine, theirs in (
        ("reference", a.references, b.references),
        ("email", a.emails, b.emails),
        ("phone", a.phones, b.phones),
    ):
        shared = sorted(mine & theirs)
        if shared:
            evidence.append(Evidence(kind, ", ".join(shared), WEIGHTS[kind]))
    similarity = name_similarity(a.name, b.name)
    if similarity >= NAME_MATCH:
        detail = (
            f"same name {a.name!r}"
            if similarity == 1
            else f"similar names {a.name!r} and {b.name!r} ({similarity:.2f})"
        )
        weight = WEIGHTS["name"] if len(a.name.replace(" ", "")) >= SHORT_NAME else SHORT_WEIGHT
        evidence.append(Evidence("name", detail, weight * similarity))
    for kind, mine, theirs, what in (
        ("city", a.cities, b.cities, "same city"),
        ("address", a.streets, b.streets, "same address"),
        ("contact", a.contact_names, b.contact_names, "same contact person"),
    ):
        shared = sorted(mine & theirs)
        if shared:
            evidence.append(Evidence(kind, f"{what} {', '.join(shared)}", WEIGHTS[kind]))
    missing = 1.0
    for piece in evidence:
        missing *= 1 - piece.weight
    return Match(a.ref, b.ref, round(1 - missing, 3), tuple(evidence))


def may_match(a: Profile, b: Profile) -> bool:
    """Whether `a` and `b` can reach `THRESHOLD` at all: without an exact key in common
    or similar names, city, address and contact together stay below it. Cheaper than
    `compare`, for scans."""
    return bool(
        a.references & b.references
        or a.emails & b.emails
        or a.phones & b.phones
        or name_similarity(a.name, b.name, cutoff=NAME_MATCH)
    )


def exact_keys(profile: Profile) -> set[str]:
    return {
        *(f"ref:{r}" for r in profile.references),
        *(f"email:{e}" for e in profile.emails),
        *(f"phone:{p}" for p in profile.phones),
    }


def blocking_keys(profile: Profile) -> set[str]:
    """The keys that bring `profile` together with the records it may duplicate."""
    keys = exact_keys(profile)
    name = profile.name
    if not name:
        return keys
    keys.add(f"name:{name.replace(' ', '')}")
    keys.update(f"name-city:{name.replace(' ', '')}|{city}" for city in profile.cities)
    if is_chinese(name):
        letters = name.replace(" ", "")
        keys.update(f"bigram:{letters[i : i + 2]}" for i in range(len(letters) - 1))
    else:
        keys.update(f"word:{word[:4]}" for word in name.split() if len(word) >= 2)
    return keys


def is_weak(key: str) -> bool:
    """A key that brings records together only with another: a bigram or a word."""
    return key.startswith(WEAK_KEYS)


def are_candidates(shared: Iterable[str]) -> bool:
    """Whether records sharing the keys `shared` are compared: one strong key (an exact
    key, the name, the name with a city), or two weak ones (names alike enough to match
    share several bigrams or words; one alone is mostly a common 上海 or "trading")."""
    weak = 0
    for key in shared:
        if not is_weak(key):
            return True
        weak += 1
    return weak >= 2


def candidate_pairs(
    profiles: list[Profile],
    max_block: int = MAX_BLOCK,
    keys: Sequence[set[str]] | None = None,
) -> Iterator[tuple[int, int]]:
    """Pairs of indexes into `profiles` that share keys (`are_candidates`) of blocks no
    larger than `max_block`, each pair once, the smaller index first; `keys`: each
    profile's `blocking_keys`, when the caller has them already."""
    blocks: dict[str, list[int]] = defaultdict(list)
    for index, profile in enumerate(profiles):
        for key in blocking_keys(profile) if keys is None else keys[index]:
            blocks[key].append(index)
    strong: set[tuple[int, int]] = set()
    weak_keys: dict[int, list[list[int]]] = defaultdict(list)
    """Each profile's weak blocks (each block's members in the order of `profiles`)."""
    for key, members in blocks.items():
        if not 2 <= len(members) <= max_block:
            continue
        if is_weak(key):
            for member in members:
                weak_keys[member].append(members)
        else:
            strong.update(itertools.combinations(members, 2))
    for first, weak_blocks in weak_keys.items():
        if len(weak_blocks) < 2:
            continue
        shared: Counter[int] = Counter()  # the later profiles sharing a weak key, how often
        for members in weak_blocks:
            shared.update(members[bisect.bisect_right(members, first) :])
        strong.update((first, second) for second, count in shared.items() if count >= 2)
    yield from sorted(strong)


def find_duplicates(
    profiles: list[Profile], threshold: float = THRESHOLD, max_block: int = MAX_BLOCK
) -> list[Match]:
    """Every pair of `profiles` scoring at least `threshold`, best first."""
    matches = []
    for i, j in candidate_pairs(profiles, max_block):
        if not may_match(profiles[i], profiles[j]):
            continue
        match = compare(profiles[i], profiles[j])
        if match.score >= threshold:
            matches.append(match)
    return sorted(matches, key=lambda m: (-m.score, m.a, m.b))


def profile_of_row(row: Mapping[str, Any], region: str) -> Profile:
    """The profile of a directory row (`services.customer.projections`). An erased
    customer has none to compare; a first sighting's placeholder name is no name."""
    references = row.get("customer_references") or []
    name = row["name"]
    if name in {placeholder_name(r["source"], r["source_customer_id"]) for r in references}:
        name = ""
    return profile_of(
        str(row["customer_id"]),
        name,
        contacts=row.get("contacts") or (),
        addresses=row.get("addresses") or (),
        references=references,
        region=region,
    )
