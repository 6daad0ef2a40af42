"""Dependencies shared by the customer routes: the application (event store), the
running service (its keyring), the pool of the directory, the `If-Match` version."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.customer.application import CustomerApplication
from services.runtime.http.commands import ExpectedVersion
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime

__all__ = ["App", "Pool", "Runtime", "Version"]

Runtime = Annotated[ServiceRuntime, Depends(current_runtime)]
Pool = DatabasePool
Version = ExpectedVersion


def customer_application(rt: Runtime) -> CustomerApplication:
    assert isinstance(rt.application, CustomerApplication)
    return rt.application


App = Annotated[CustomerApplication, Depends(customer_application)]
