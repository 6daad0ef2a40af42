"""What a caller may do: each route declares the one permission it needs, on the route:
`@router.get(..., dependencies=[requires("customers:read")])`. A route that declares none
is refused to everyone (`refuse_undeclared`), so a forgotten declaration fails closed,
and the route-by-role test names it. The public paths (`PUBLIC_PATHS`: health, metrics,
API documents) need no token at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

import fastapi.routing
from fastapi import Depends, Request
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.runtime.errors import CommandRejected
from services.runtime.http.authentication import Unauthenticated
from services.runtime.http.roles import PERMISSIONS, ROLE_PERMISSIONS, ROLES, Principal

PUBLIC_PATHS = frozenset(
    {
        "/health/live",
        "/health/ready",
        "/metrics",
        "/asyncapi.json",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
    }
)
"""Paths answered without a token: probes, metrics and the API documents."""


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS


class Forbidden(CommandRejected):
    status_code = 403


# Authorization --------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A JWT whose `sub` is the caller and whose `roles` name CRM roles.",
)


def principal_of(request: Request) -> Principal:
    principal = request.scope.get("state", {}).get("principal")
    if not isinstance(principal, Principal):
        raise Unauthenticated("no verified bearer token", token_given=False)
    return principal


class Requirement:
    """The permission a route needs (a dependency; its presence declares it)."""

    def __init__(self, permission: str) -> None:
        if permission not in PERMISSIONS:
            raise ValueError(f"unknown permission {permission!r}; add it to PERMISSIONS")
        self.permission = permission

    async def __call__(
        self,
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
    ) -> Principal:
        principal = principal_of(request)
        if not principal.may(self.permission):
            roles = ", ".join(principal.roles) or "none"
            raise Forbidden(
                f"this needs the permission {self.permission!r}; your roles ({roles}) lack it"
            )
        return principal

    def __repr__(self) -> str:
        return f"requires({self.permission!r})"


def requires(permission: str) -> DependsParam:
    """Declare the permission a route needs: `dependencies=[requires("tickets:write")]`.
    (Which reads are audited follows from what the route answers: `audit.py`.)"""
    return Depends(Requirement(permission))


def route_requirement(route: Any) -> Requirement | None:
    """The permission a route declared, if any."""
    for dependency in getattr(route, "dependencies", ()):
        if isinstance(dependency.dependency, Requirement):
            return dependency.dependency
    return None


@dataclass(frozen=True)
class RouteInfo:
    method: str
    path: str
    requirement: Requirement | None
    route: APIRoute


def api_routes(app: Any) -> Iterator[RouteInfo]:
    """Every API route of `app` (routers included) with the permission it declares."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)  # FastAPI >= 0.160
    for route in iterate(app.routes) if iterate is not None else app.routes:
        api_route = getattr(route, "route", route)
        if isinstance(api_route, APIRoute):
            for method in sorted(route.methods or ()):
                yield RouteInfo(method, route.path, route_requirement(route), api_route)


def document_permissions(app: Any) -> None:
    """Name each operation's permission in the OpenAPI document (`x-required-permission`
    and a sentence in its description), so API users know which role to ask for."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema: dict[str, Any] = build()
        for route in api_routes(app):
            operation = schema["paths"].get(route.path, {}).get(route.method.lower())
            if operation is None or route.requirement is None:
                continue
            if "x-required-permission" in operation:
                continue  # the cached document is documented already
            permission = route.requirement.permission
            roles = ", ".join(r for r in ROLES if permission in ROLE_PERMISSIONS[r])
            operation["x-required-permission"] = permission
            sentence = f"Needs the permission `{permission}` (roles: {roles})."
            operation["description"] = f"{operation.get('description', '')}\n\n{sentence}".strip()
        return schema

    app.openapi = openapi


async def refuse_undeclared(request: Request) -> None:
    """App-wide dependency: a route that declares no permission is refused to everyone
    (and so is a request whose route cannot be told: this fails closed)."""
    route = request.scope.get("route")
    path = getattr(route, "path", None)
    if path is not None and is_public(path):
        return
    if route is None or route_requirement(route) is None:
        raise Forbidden(
            f"{request.method} {path or request.url.path} declares no permission, so it is "
            "refused to everyone; declare one with requires(...)"
        )


Caller = Annotated[Principal, Depends(principal_of)]
"""A route parameter carrying the verified caller."""
