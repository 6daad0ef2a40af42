"""Dependencies shared by the sales routes: the application, the pool, who may work
which opportunity."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import Depends

from services.runtime.http.commands import ExpectedVersion
from services.runtime.http.security import Caller, Forbidden
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime
from services.sales.application import SalesApplication

__all__ = ["App", "Caller", "OwnOpportunity", "Pool", "Version", "check_owner"]


def sales_application(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> SalesApplication:
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
