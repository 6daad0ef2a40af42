"""Every route of every service, as the permission tests walk them.

Services are discovered from `services/*/service.py` (each with a `DEFINITION`), routes
from each app's OpenAPI document, and the permission each route declares
(`requires(...)`) from the app's routes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from fastapi import FastAPI

import services
from services.runtime.http.security import Requirement, api_routes
from services.runtime.service import ServiceDefinition, build_app
from services.runtime.settings import ServiceSettings
from tests.support.auth import app_keys

SERVICES_DIR = Path(services.__file__).parent


def service_definitions() -> dict[str, ServiceDefinition]:
    found = {}
    for path in sorted(SERVICES_DIR.glob("*/service.py")):
        module = importlib.import_module(f"services.{path.parent.name}.service")
        definition = getattr(module, "DEFINITION", None)
        if isinstance(definition, ServiceDefinition):
            found[definition.name] = definition
    return found


DEFINITIONS = service_definitions()
SETTINGS = ServiceSettings(**app_keys(), rate_limit_per_minute=0)
"""Settings of an app built in-process without its runtime (no database, no broker)."""


def app_of(definition: ServiceDefinition, settings: ServiceSettings = SETTINGS) -> FastAPI:
    return build_app(definition, settings)


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every route in the OpenAPI document."""
    return [
        (method.upper(), path, operation)
        for path, item in app.openapi()["paths"].items()
        for method, operation in item.items()
    ]


def requirement_of(app: FastAPI, method: str, path: str) -> Requirement | None:
    for route in api_routes(app):
        if (route.method, route.path) == (method, path):
            return route.requirement
    raise AssertionError(f"{method} {path} is in the OpenAPI document but not a route")
