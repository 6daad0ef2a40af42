"""Dependencies shared by the sales routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from services.runtime.http import ExpectedVersion
from services.runtime.service import DatabasePool, ServiceRuntime, current_runtime
from services.sales.application import SalesApplication


def sales_application(rt: Annotated[ServiceRuntime, Depends(current_runtime)]) -> SalesApplication:
    assert isinstance(rt.application, SalesApplication)
    return rt.application


App = Annotated[SalesApplication, Depends(sales_application)]
Pool = DatabasePool
Version = ExpectedVersion
