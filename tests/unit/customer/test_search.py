"""What the directory's search finds people by: names, e-mails, phones in any format."""

from __future__ import annotations

import re

import pytest

from services.customer.normalisation import full_width
from services.customer.search import search_patterns, search_text_of

ROW = {
    "name": "上海华信贸易有限公司",
    "contacts": [
        {
            "name": "Zhang Wei",
            "phones": ["+86 138 0013 8000", "(021) 6888 8888"],
            "emails": ["Zhang.Wei@HuaXin.example"],
        }
    ],
}


def finds(query: str) -> bool:
    text = search_text_of(ROW, "CN")
    for pattern in search_patterns(query, "CN"):
        body = re.escape(pattern.strip("%")).replace("\\\\\\\\", "\\\\")
        if re.search(body, text, re.IGNORECASE):
            return True
    return False


@pytest.mark.parametrize(
    "query",
    [
        "华信",
        "zhang wei",
        full_width("Zhang"),
        "zhang.wei@huaxin",
        "138 0013 8000",
        "+86-138-0013-8000",
        "0086 13800138000",
        "13800138000",
        "0013 8000",
        "(021) 68888888",
    ],
)
def test_a_customer_is_found_by_its_people(query: str) -> None:
    assert finds(query)


@pytest.mark.parametrize("query", ["李娜", "139 1234 5678", "someone@else.example"])
def test_others_do_not_find_it(query: str) -> None:
    assert not finds(query)


def test_phones_are_kept_in_e164() -> None:
    assert "+8613800138000" in search_text_of(ROW, "CN").split("\n")
