"""Scoring of possible duplicates: names in Chinese and Latin script, company suffixes,
full-width characters, exact keys, the evidence, and blocking."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from services.customer.duplicates import (
    THRESHOLD,
    WEIGHTS,
    Profile,
    are_candidates,
    blocking_keys,
    candidate_pairs,
    compare,
    find_duplicates,
    fold_name,
    may_match,
    profile_of,
)
from services.customer.normalisation import full_width


@pytest.mark.parametrize(
    ("name", "folded"),
    [
        ("上海华信贸易有限公司", "上海华信贸易"),
        ("上海华信贸易有限责任公司", "上海华信贸易"),
        ("华信集团股份有限公司", "华信"),
        ("深圳云帆科技集团", "深圳云帆科技"),
        ("广州恒汇食品股份", "广州恒汇食品"),
        ("Acme Trading Co., Ltd.", "acme trading"),
        ("ACME TRADING INC", "acme trading"),
        ("Müller Maschinenbau GmbH", "müller maschinenbau"),
        ("Blue Harbor LLC", "blue harbor"),
        (full_width("ABC Trading Co., Ltd."), "abc trading"),
        ("公司", "公司"),
        ("Limited", "limited"),
    ],
)
def test_names_are_folded_without_company_suffixes(name: str, folded: str) -> None:
    assert fold_name(name) == folded


def test_a_company_with_and_without_its_suffix_in_the_same_city_is_a_duplicate() -> None:
    office = [{"label": "office", "line1": "世纪大道 100 号", "city": "上海"}]
    a = profile_of("a", "上海华信贸易有限公司", addresses=office)
    b = profile_of("b", "上海华信贸易", addresses=[{**office[0], "line1": "别处 1 号"}])
    match = compare(a, b)
    assert match.score >= THRESHOLD
    assert [e.kind for e in match.evidence] == ["name", "city"]


def test_the_same_name_alone_is_not_enough() -> None:
    assert compare(profile_of("a", "张伟"), profile_of("b", "张伟")).score < THRESHOLD


def test_a_phone_in_another_format_is_the_same_phone() -> None:
    a = profile_of("a", "李娜", contacts=[{"name": "李娜", "phones": ["+86 139 1234 5678"]}])
    b = profile_of("b", "Li Na", contacts=[{"name": "Li Na", "phones": ["139-1234-5678"]}])
    match = compare(a, b)
    assert match.score >= THRESHOLD
    assert match.evidence[0].kind == "phone"
    assert match.evidence[0].detail == "+8613912345678"


def test_an_email_in_other_case_and_width_is_the_same_email() -> None:
    a = profile_of("a", "王芳", contacts=[{"name": "王芳", "emails": ["Wang.Fang@Example.COM"]}])
    b = profile_of(
        "b", "王芳工作室", contacts=[{"name": "x", "emails": [full_width("wang.fang@example.com")]}]
    )
    match = compare(a, b)
    assert match.score >= THRESHOLD
    assert ("email", "wang.fang@example.com") in [(e.kind, e.detail) for e in match.evidence]


def test_an_external_reference_is_the_strongest_evidence() -> None:
    reference = [{"source": "erp", "source_customer_id": "C-1"}]
    match = compare(
        profile_of("a", "甲", references=reference), profile_of("b", "乙", references=reference)
    )
    assert match.score >= 0.99
    assert match.evidence[0].kind == "reference"


def test_latin_names_match_in_any_word_order_and_case() -> None:
    home = [{"line1": "1 Main Street", "city": "Shanghai"}]
    a = profile_of("a", "Zhang Wei", addresses=home)
    b = profile_of("b", "WEI ZHANG", addresses=[{"line1": "elsewhere", "city": "SHANGHAI"}])
    match = compare(a, b)
    assert match.score >= THRESHOLD
    assert [e.kind for e in match.evidence] == ["name", "city"]


def test_a_person_is_not_their_own_contact_person_twice() -> None:
    a = profile_of("a", "Zhang Wei", contacts=[{"name": "Zhang Wei"}])
    b = profile_of("b", "Zhang Wei", contacts=[{"name": "Zhang Wei"}])
    assert [e.kind for e in compare(a, b).evidence] == ["name"]


def test_a_similar_chinese_name_with_the_same_address_is_a_duplicate() -> None:
    address = [{"line1": "天河路 385 号", "city": "广州"}]
    a = profile_of("a", "广州天河恒信电子有限公司", addresses=address)
    b = profile_of("b", "广州天河恒信电子厂", addresses=address)
    match = compare(a, b)
    assert match.score >= THRESHOLD
    assert {e.kind for e in match.evidence} == {"name", "city", "address"}
    assert "similar names" in match.evidence[0].detail


def test_different_customers_in_one_city_are_not_duplicates() -> None:
    city = [{"line1": "x", "city": "上海"}]
    a = profile_of("a", "上海华信贸易有限公司", addresses=city)
    b = profile_of("b", "上海云图软件有限公司", addresses=city)
    assert compare(a, b).score < THRESHOLD


def test_blocking_brings_together_what_may_match_and_only_that() -> None:
    profiles = [
        profile_of("0", "上海华信贸易有限公司"),
        profile_of("1", "华信贸易"),
        profile_of("2", "北京云图软件"),
        profile_of("3", "Acme Trading Co., Ltd."),
        profile_of("4", "ACME Tradng"),
    ]
    pairs = set(candidate_pairs(profiles))
    assert pairs == {(0, 1), (3, 4)}
    assert "bigram:华信" in blocking_keys(profiles[0])


def test_a_key_too_many_share_brings_no_pairs() -> None:
    # sixty names that share only 上海华 (the bigrams 上海 and 海华)
    profiles = [profile_of(str(i), f"上海华{chr(0x4E00 + 2 * i)}") for i in range(60)]
    assert list(candidate_pairs(profiles, max_block=50)) == []
    assert len(list(candidate_pairs(profiles, max_block=60))) == 60 * 59 // 2


def test_one_common_bigram_or_word_alone_brings_no_pair() -> None:
    profiles = [
        profile_of("0", "上海华信贸易"),
        profile_of("1", "上海云图"),
        profile_of("2", "华信贸易"),
    ]
    # 上海 alone does not pair the first two; 华信, 信贸 and 贸易 pair the first and third
    assert list(candidate_pairs(profiles)) == [(0, 2)]


def test_find_duplicates_lists_the_best_first() -> None:
    phone = [{"name": "张伟", "phones": ["13800138000"]}]
    found = find_duplicates(
        [
            profile_of("a", "华信", contacts=phone),
            profile_of("b", "华信贸易", contacts=phone, references=[]),
            profile_of("c", "完全不同"),
        ]
    )
    assert [(m.a, m.b) for m in found] == [("a", "b")]


def test_without_an_exact_key_or_a_name_nothing_reaches_the_threshold() -> None:
    """What lets scans skip such pairs (`may_match`)."""
    supporting = 1.0
    for kind in ("city", "address", "contact"):
        supporting *= 1 - WEIGHTS[kind]
    assert 1 - supporting < THRESHOLD
    place = [{"line1": "天河路 385 号", "city": "广州"}]
    contact = [{"name": "张伟"}]
    a = profile_of("a", "甲公司", addresses=place, contacts=contact)
    b = profile_of("b", "乙工厂", addresses=place, contacts=contact)
    assert not may_match(a, b)
    assert compare(a, b).score < THRESHOLD


def test_a_profile_survives_its_json_form() -> None:
    profile = profile_of(
        "a",
        "上海华信贸易有限公司",
        contacts=[{"name": "张伟", "phones": ["13800138000"], "emails": ["Z@H.cn"]}],
        addresses=[{"line1": "世纪大道 100 号", "city": "上海"}],
        references=[{"source": "erp", "source_customer_id": "C-1"}],
    )
    assert Profile.from_dict(json.loads(json.dumps(profile.as_dict()))) == profile


def test_the_candidate_pairs_are_those_sharing_a_strong_key_or_two_weak_ones() -> None:
    rng = random.Random(7)
    names = ["bigram:a", "bigram:b", "bigram:c", "word:x", "word:y", "name:n", "email:e", "ref:r"]
    for _ in range(200):
        keys = [set(rng.sample(names, rng.randint(0, 5))) for _ in range(rng.randint(0, 40))]
        max_block = rng.choice([2, 4, 50])
        sizes = {k: sum(k in ks for ks in keys) for k in names}
        expected = [
            (i, j)
            for i, j in itertools.combinations(range(len(keys)), 2)
            if are_candidates([k for k in keys[i] & keys[j] if sizes[k] <= max_block])
        ]
        profiles = [profile_of(str(i), "") for i in range(len(keys))]
        assert list(candidate_pairs(profiles, max_block, keys=keys)) == expected
