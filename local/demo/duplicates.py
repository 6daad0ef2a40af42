"""A few deliberate duplicates among the demo customers (pure), as they creep into every
real directory, for the queue of possible duplicates (`GET /duplicates`) to find:

- a consumer registered again with their mobile number typed another way;
- a Chinese company registered again without 有限公司, at an address in the same city,
  with one of its contact persons;
- a company with a Latin name registered again without "Co., Ltd.", its buyer's e-mail
  address in capitals.

`demo_duplicates(customers)` gives, for the request bodies `demo_customers` made, the
bodies of the duplicates and the index of the customer each duplicates.
"""

from __future__ import annotations

from typing import Any


def _consumer_again(original: dict[str, Any]) -> dict[str, Any]:
    phone = original["contacts"][0]["phones"][0]
    national = phone.removeprefix("+86").replace(" ", "")
    typed = f"0086-{national[:3]}-{national[3:7]}-{national[7:]}"
    return {
        "name": original["name"],
        "kind": "consumer",
        "source_channel": "walk-in",
        "contacts": [{"name": original["name"], "phones": [typed]}],
    }


def _company_without_suffix(original: dict[str, Any]) -> dict[str, Any]:
    office = original["addresses"][0]
    return {
        "name": original["name"].removesuffix("股份有限公司").removesuffix("有限公司"),
        "kind": original["kind"],
        "industry": original["industry"],
        "source_channel": "website",
        "contacts": [{"name": original["contacts"][0]["name"]}],
        "addresses": [{**office, "line1": f"{office['city']}某路 8 号"}],
    }


def _company_email_in_capitals(original: dict[str, Any]) -> dict[str, Any]:
    contact = original["contacts"][0]
    return {
        "name": original["name"].removesuffix(" Co., Ltd."),
        "kind": original["kind"],
        "source_channel": "webinar",
        "contacts": [{"name": "Purchasing", "emails": [contact["emails"][0].upper()]}],
    }


def demo_duplicates(customers: list[dict[str, Any]]) -> list[tuple[int, dict[str, Any]]]:
    """(index of the original in `customers`, body of its duplicate), one of each kind
    the demo customers allow."""
    found: list[tuple[int, dict[str, Any]]] = []
    kinds = [
        (
            lambda c: c["kind"] == "consumer" and c["contacts"] and c["contacts"][0]["phones"],
            _consumer_again,
        ),
        (
            lambda c: (
                c["kind"] == "business"
                and c["name"].endswith("有限公司")
                and c["addresses"]
                and c["contacts"]
            ),
            _company_without_suffix,
        ),
        (
            lambda c: (
                c["name"].endswith(" Co., Ltd.") and c["contacts"] and c["contacts"][0]["emails"]
            ),
            _company_email_in_capitals,
        ),
    ]
    for fits, duplicate in kinds:
        index = next((i for i, c in enumerate(customers) if fits(c)), None)
        if index is not None:
            found.append((index, duplicate(customers[index])))
    return found
