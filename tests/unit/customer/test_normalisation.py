"""Cleaning of imported values: every rule on the values a messy spreadsheet holds, and
the reason a refused value gets."""

from __future__ import annotations

import pytest

from services.customer.normalisation import (
    REASONS,
    Refused,
    clean_email,
    clean_phone,
    clean_text,
    full_width,
    match_keys,
    split_values,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  上海华信贸易有限公司  ", "上海华信贸易有限公司"),
        (full_width("Huaxin Trading"), "Huaxin Trading"),  # ideographic space too
        (f"浦东新区世纪大道{full_width('100')}号", "浦东新区世纪大道100号"),
        ("Zhang \t  Wei\r\n", "Zhang Wei"),  # whitespace of every kind collapsed
        ("ﾃｽﾄ", "テスト"),  # half-width katakana to their usual form
        ("\u00a0ACME\u2003Co.,\u3000Ltd.", "ACME Co., Ltd."),
        ("   ", None),
        ("", None),
        (None, None),
    ],
)
def test_text_is_trimmed_collapsed_and_made_half_width(raw: str | None, clean: str | None) -> None:
    assert clean_text(raw, "name") == clean


@pytest.mark.parametrize("control", ["\x00", "\x07", "\x1b", "\x7f", "\x85", "\ud800"])
def test_a_control_character_is_refused_with_where_it_is(control: str) -> None:
    with pytest.raises(Refused) as refused:
        clean_text(f"华信{control}贸易", "name")
    assert refused.value.reason == "control character"
    assert "name" in refused.value.detail
    assert f"U+{ord(control):04X}" in refused.value.detail


def test_text_longer_than_its_field_allows_is_refused() -> None:
    assert clean_text("x" * 200, "name") == "x" * 200
    with pytest.raises(Refused) as refused:
        clean_text("x" * 201, "name")
    assert refused.value.reason == "too long"
    assert "200" in refused.value.detail


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("  Zhang.Wei@HuaXin.Example ", "zhang.wei@huaxin.example"),
        (full_width("ZHANG@huaxin.example"), "zhang@huaxin.example"),
        ("li.na+crm@example.com", "li.na+crm@example.com"),
    ],
)
def test_emails_are_trimmed_and_case_folded(raw: str, clean: str) -> None:
    assert clean_email(raw, "email") == clean


@pytest.mark.parametrize("raw", ["zhang.wei", "zhang@", "@huaxin.example", "a b@c.example", "x@y"])
def test_a_malformed_email_is_refused(raw: str) -> None:
    with pytest.raises(Refused) as refused:
        clean_email(raw, "邮箱")
    assert refused.value.reason == "bad email"
    assert "邮箱" in refused.value.detail and raw in refused.value.detail


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+86 138 0013 8000", "+8613800138000"),
        ("13800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("0086 138 0013 8000", "+8613800138000"),
        ("(021) 6888 8888", "+862168888888"),
        ("021-68888888", "+862168888888"),
        (full_width("138 0013 8000"), "+8613800138000"),
        ("+1 650-253-0000", "+16502530000"),  # a country code wins over the default region
        ("+44 20 7946 0958", "+442079460958"),
    ],
)
def test_phone_numbers_become_e164_with_the_default_region(raw: str, e164: str) -> None:
    assert clean_phone(raw, "CN", "手机") == e164


def test_the_default_region_decides_numbers_without_a_country_code() -> None:
    assert clean_phone("(650) 253-0000", "US", "phone") == "+16502530000"


@pytest.mark.parametrize("raw", ["12345", "138001380001234", "call me", "+86 000 0000 0000"])
def test_a_number_that_is_no_phone_number_is_refused(raw: str) -> None:
    with pytest.raises(Refused) as refused:
        clean_phone(raw, "CN", "手机")
    assert refused.value.reason == "bad phone"
    assert "手机" in refused.value.detail and raw in refused.value.detail


def test_cells_holding_several_values_are_split() -> None:
    cell = f"a; b{full_width(';')}c,d{full_width(',')}e/ f、g\n h"
    assert split_values(cell, ";,/") == ["a", "b", "c", "d", "e", "f", "g", "h"]
    assert split_values(" ; ", ";") == []
    assert split_values(None, ";") == []


def test_match_keys_are_the_normalised_emails_and_phones() -> None:
    keys = match_keys(
        emails=["Zhang@HuaXin.example", "zhang@huaxin.example"],
        phones=["138 0013 8000", "+86 138-0013-8000"],
        region="CN",
    )
    assert keys == ["email:zhang@huaxin.example", "phone:+8613800138000"]


def test_full_width_text_is_what_cleaning_undoes() -> None:
    typed = full_width("ACME Co., Ltd. 138-0013")
    assert typed != "ACME Co., Ltd. 138-0013"
    assert clean_text(typed, "name") == "ACME Co., Ltd. 138-0013"


def test_every_reason_is_named_in_the_fixed_set() -> None:
    assert {"control character", "too long", "bad email", "bad phone"} <= set(REASONS)
    with pytest.raises(ValueError, match="unknown reason"):
        Refused("something else", "detail")
