"""Dependencies shared by the customer routes: the application (event store), the
running service (its keyring), the pool of the directory, the `If-Match` version, and
who may change which customer."""

from __future__ import annotations

import asyncio
from typing import Annotated
from uuid import UUID

from fastapi import Depends
from fastapi.params import Depends as DependsParam

from services.customer.application import CustomerApplication
from services.runtime.http.authorization import Caller, Forbidden
from services.runtime.http.commands import ExpectedVersion
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime

__all__ = ["App", "OwnContactDetails", "OwnCustomer", "Pool", "Runtime", "Version"]

Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]
Pool = DatabasePool
Version = ExpectedVersion


def customer_application(rt: Runtime) -> CustomerApplication:
    assert isinstance(rt.application, CustomerApplication)
    return rt.application


App = Annotated[CustomerApplication, Depends(customer_application)]


def changeable(permission: str) -> DependsParam:
    """Route dependency of a change the route declares as `permission`: the caller may
    make it to a customer they own (its `owner` is their token's subject), and to anyone's
    with `<permission>-any`. The owner is read from the event store, so a handover takes
    effect at once."""
    anyone = f"{permission}-any"

    async def check(customer_id: UUID, caller: Caller, app: App) -> None:
        if caller.may(anyone):
            return
        customer = await asyncio.to_thread(app.customer, customer_id)  # 404 when unknown
        if customer.owner != caller.subject:
            owner = repr(customer.owner) if customer.owner else "nobody"
            raise Forbidden(
                f"customer {customer_id} is owned by {owner}, not by you ({caller.subject!r}); "
                f"changing anyone's needs the permission {anyone!r}"
            )

    return Depends(check)


OwnCustomer = changeable("customers:write")
"""Profile, classification, tags, references: of the caller's own customers, or anyone's
with `customers:write-any`."""
OwnContactDetails = changeable("customers:write-contact")
"""Contact persons, addresses and channel consent: of the caller's own customers, or
anyone's with `customers:write-contact-any`."""
