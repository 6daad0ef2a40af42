"""Dependencies shared by the sales routes: the application, the pool, who may work
which opportunity, and whose deals a caller reads (`Visibility`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import Depends

from services.runtime.errors import NotFound
from services.runtime.http.authorization import Caller, Forbidden
from services.runtime.http.commands import ExpectedVersion
from services.runtime.http.roles import Principal
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime
from services.sales.application import SalesApplication
from services.sales.settings import SalesSettings, VisibilityRule

__all__ = [
    "App",
    "Caller",
    "OwnOpportunity",
    "Pool",
    "ReadableOpportunity",
    "Version",
    "Visibility",
    "Visible",
    "check_owner",
]


Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]


def sales_application(rt: Runtime) -> SalesApplication:
    assert isinstance(rt.application, SalesApplication)
    return rt.application


App = Annotated[SalesApplication, Depends(sales_application)]
Pool = DatabasePool
Version = ExpectedVersion

ANY_OWNER = "opportunities:write-any"


def check_owner(caller: Caller, owner: str, what: str) -> None:
    """Sales reps work their own opportunities; `opportunities:write-any` works anyone's."""
    if owner != caller.subject and not caller.may(ANY_OWNER):
        raise Forbidden(
            f"{what} belongs to {owner!r}, not to you ({caller.subject!r}); working someone "
            f"else's opportunities needs the permission {ANY_OWNER!r}"
        )


async def writable_opportunity(opportunity_id: UUID, caller: Caller, app: App) -> None:
    """Refuse a command on an opportunity the caller may not work (from the event store,
    so an owner change takes effect at once)."""
    if caller.may(ANY_OWNER):
        return
    opportunity = await asyncio.to_thread(app.opportunity, opportunity_id)
    check_owner(caller, opportunity.owner, f"opportunity {opportunity_id}")


OwnOpportunity = Depends(writable_opportunity)
"""Route dependency: the caller may work this opportunity."""


# Who reads which deals -------------------------------------------------------------------

READ_TEAM = "opportunities:read-team"
READ_ANY = "opportunities:read-any"


@dataclass(frozen=True)
class Visibility:
    """Whose deals a caller reads, as owner sets (None: everyone's).

    `deals` bounds every route that shows single deals (lists, exports, one opportunity,
    its history and past states, contracts); `figures` bounds the aggregates (pipeline,
    analyses). Under the rule `all` everyone reads everything; otherwise a caller reads
    their own deals, `opportunities:read-team` their teams' deals, and
    `opportunities:read-any` everyone's. Under `team` a caller's figures cover their
    teams; under `own` a rep's figures cover only their own deals.
    """

    deals: frozenset[str] | None
    figures: frozenset[str] | None

    @classmethod
    def of(cls, caller: Principal, rule: VisibilityRule, teammates: frozenset[str]) -> Visibility:
        if rule == "all" or caller.may(READ_ANY):
            return cls(deals=None, figures=None)
        if caller.may(READ_TEAM):
            return cls(deals=teammates, figures=teammates)
        own = frozenset({caller.subject})
        return cls(deals=own, figures=teammates if rule == "team" else own)

    def shows(self, owner: str) -> bool:
        """Whether a deal of `owner` may be shown to the caller."""
        return self.deals is None or owner in self.deals

    def check(self, owner: str, opportunity_id: UUID) -> None:
        """404, as for an opportunity that does not exist, when the caller may not see
        it: a hidden deal's existence is not told either."""
        if not self.shows(owner):
            raise NotFound(f"no opportunity with id {opportunity_id}")


def visibility(
    rt: Annotated[ServiceRuntime, Depends(current_runtime)], caller: Caller
) -> Visibility:
    settings = rt.settings
    if isinstance(settings, SalesSettings):
        rule = settings.sales_visibility
        return Visibility.of(caller, rule, settings.teammates(caller.subject))
    default: VisibilityRule = SalesSettings.model_fields["sales_visibility"].default
    return Visibility.of(caller, default, frozenset({caller.subject}))  # an app without teams


Visible = Annotated[Visibility, Depends(visibility)]
"""A route parameter: whose deals the caller reads."""


async def readable_opportunity(opportunity_id: UUID, visible: Visible, app: App) -> None:
    """404 for an opportunity the caller may not read (its owner from the event store)."""
    if visible.deals is None:
        return
    opportunity = await asyncio.to_thread(app.opportunity, opportunity_id)
    visible.check(opportunity.owner, opportunity_id)


ReadableOpportunity = Depends(readable_opportunity)
"""Route dependency: the caller may read this opportunity."""
