"""Who may do what: the permissions, the roles that grant them, and the verified caller
(`Principal`) whose roles a token names. `authorization.py` enforces them on every route."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PERMISSIONS: dict[str, str] = {
    "customers:read": "customer records, the directory, their history and references",
    "customers:write": "change the customers the caller owns (their `owner` is the caller)",
    "customers:write-any": "register customers and change anyone's",
    "customers:write-contact": "change contact persons, addresses and channel consent of "
    "the customers the caller owns",
    "customers:write-contact-any": "change anyone's contact persons, addresses and channel consent",
    "customers:import": "import customers from files (`/customer-imports`): create and "
    "change any customer a file names",
    "duplicates:review": "the queue of possible duplicate customers (`/duplicates`): read "
    "it and dismiss pairs",
    "customers:merge": "merge customers into one survivor (`POST /customer-merges`)",
    "customers:unmerge": "undo a merge of customers (`POST /customer-merges/{merge_id}/undo`)",
    "interactions:read": "interactions, timelines, tickets, satisfaction, contact plans",
    "interactions:write": "log and correct interactions, survey answers, feedback, plans",
    "tickets:write": "open, assign, answer, escalate, resolve, reopen and close tickets",
    "opportunities:read": "opportunities, pipeline and sales analyses, contracts, purchases "
    "(own deals; figures as `CRM_SALES_VISIBILITY` allows)",
    "opportunities:read-team": "the deals and figures of the caller's sales teams",
    "opportunities:read-any": "every deal and figure, whatever `CRM_SALES_VISIBILITY` says",
    "opportunities:write": "open and work opportunities the caller owns",
    "opportunities:write-any": "work anyone's opportunities",
    "analytics:read": "analytics views (segments, churn, customer 360)",
    "segments:write": "define and change segments",
    "models:write": "fit the predictive models now (`POST /models/fit`)",
    "audit:read": "the audit log (GET /audit)",
    "admin": "erasure of a customer and subject-access exports",
    "keys:read": "customers' keys, to open sealed personal fields of consumed events",
    "inbound:write": "send other systems' facts (purchases, call logs, messages, survey "
    "answers) over HTTP, as on the inbound topics",
}
"""Every permission, with what it allows."""

_SUPPORT = frozenset(
    {
        "customers:read",
        "customers:write-contact",
        "interactions:read",
        "interactions:write",
        "tickets:write",
        "analytics:read",
    }
)

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "support_agent": _SUPPORT | {"customers:write-contact-any"},
    "sales_rep": _SUPPORT | {"customers:write", "opportunities:read", "opportunities:write"},
    "manager": frozenset(
        {
            "customers:read",
            "interactions:read",
            "opportunities:read",
            "opportunities:read-team",
            "opportunities:write",
            "opportunities:write-any",
            "analytics:read",
            "segments:write",
            "models:write",
            "duplicates:review",
        }
    ),
    "administrator": frozenset(PERMISSIONS),
    "integration": frozenset(
        {
            "customers:read",
            "customers:write",
            "customers:write-any",
            "customers:write-contact",
            "customers:write-contact-any",
            "customers:import",
            "interactions:write",
            "tickets:write",
            "keys:read",
            "inbound:write",
        }
    ),
}
"""What each role may do; a token's permissions are the union over its roles."""

ROLES = tuple(ROLE_PERMISSIONS)


@dataclass(frozen=True)
class Principal:
    """The verified caller of a request."""

    subject: str
    roles: tuple[str, ...]
    permissions: frozenset[str]

    def may(self, permission: str) -> bool:
        return permission in self.permissions


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    granted: set[str] = set()
    for role in roles:
        granted |= ROLE_PERMISSIONS.get(role, frozenset())
    return frozenset(granted)
