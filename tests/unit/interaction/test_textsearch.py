"""Keyword search keys (`services.interaction.textsearch`): grams for short keywords, the
trigram index for longer ones."""

from __future__ import annotations

from services.interaction.textsearch import (
    keyword_clause,
    keyword_clauses,
    search_grams,
    search_text,
)


def test_short_keywords_use_the_gram_array_and_longer_ones_the_trigram_index() -> None:
    text = search_text("ＶＩＰ客户投诉", "Email about AI, 5G 套餐")
    grams = search_grams(text)
    assert {"投诉", "诉", "客户", "p客", "ai", "5g", "套餐"} <= set(grams)
    assert "em" not in grams  # two letters inside a word are not a word
    assert keyword_clause("投诉") == ("search_grams @> ARRAY[{}]::text[]", "投诉")
    assert keyword_clause("VIP客户") == ("search_text LIKE {} ESCAPE '\\'", "%vip客户%")
    assert keyword_clause("100%")[1] == "%100\\%%"


def test_every_short_chinese_substring_of_a_text_is_among_its_grams() -> None:
    text = search_text("年度合同续签洽谈 VIP客户", "客户希望增加华南区配送服务。下周提交报价")
    grams = set(search_grams(text))
    for length in (1, 2):
        for start in range(len(text) - length + 1):
            piece = text[start : start + length]
            if any("\u4e00" <= c <= "\u9fff" for c in piece) and " " not in piece:
                assert piece in grams, piece


def test_several_words_must_all_occur_each_served_by_its_index() -> None:
    assert keyword_clauses("发票  抬头") == [
        ("search_grams @> ARRAY[{}]::text[]", "发票"),
        ("search_grams @> ARRAY[{}]::text[]", "抬头"),
    ]
    assert keyword_clauses("增值税 发票 AI") == [
        ("search_text LIKE {} ESCAPE '\\'", "%增值税%"),
        ("search_grams @> ARRAY[{}]::text[]", "发票"),
        ("search_grams @> ARRAY[{}]::text[]", "ai"),
    ]
    assert keyword_clauses("   ") == []
