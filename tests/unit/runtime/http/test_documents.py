"""The API documents tell the truth: every operation of every service names the
refusals it can answer with their JSON body, the CSV form of every list that has one,
and `/metrics` as text; a method a path does not take answers 405 naming, in `Allow`,
every method it takes."""

from __future__ import annotations

import json

import pytest
from fastapi import FastAPI
from pydantic import BaseModel

from services.runtime.http.authorization import api_routes, is_public
from tests.support.auth import bearer
from tests.support.http import in_process_client
from tests.support.routes import DEFINITIONS, app_of, operations

ERROR = {"$ref": "#/components/schemas/ErrorAnswer"}


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_every_operation_names_the_refusals_it_can_answer(name: str) -> None:
    document = app_of(DEFINITIONS[name]).openapi()
    assert "ErrorAnswer" in document["components"]["schemas"]
    for method, path, operation in operations(app_of(DEFINITIONS[name])):
        expected = {"400"}
        if not is_public(path):
            expected |= {"401", "403", "422", "429"}
            if "{" in path:
                expected.add("404")
            if method not in ("GET", "HEAD"):
                expected |= {"409", "413"}
        responses = operation["responses"]
        assert expected <= set(responses), f"{method} {path} lacks {expected - set(responses)}"
        for status in expected:
            content = responses[status]["content"]["application/json"]
            assert content["schema"] == ERROR, f"{method} {path} {status}"


def commands_naming_ids(app: FastAPI) -> set[tuple[str, str]]:
    """Every command whose body model holds an id (a UUID, as pydantic describes it)."""
    found = set()
    for route in api_routes(app):
        body = route.route.body_field
        model = None if body is None else body.field_info.annotation
        if not isinstance(model, type) or not issubclass(model, BaseModel):
            continue
        if '"uuid"' in json.dumps(model.model_json_schema()):
            found.add((route.method, route.path))
    return found


def test_a_command_whose_body_names_an_id_documents_404() -> None:
    """Nothing with that id is a 404, as for an id in the path (`POST /customer-merges`
    answered an undocumented 404 for a survivor that does not exist)."""
    checked = set()
    for definition in DEFINITIONS.values():
        app = app_of(definition)
        documented = {(m, p): o for m, p, o in operations(app)}
        for method, path in commands_naming_ids(app):
            assert "404" in documented[(method, path)]["responses"], f"{method} {path}"
            checked.add(f"{method} {path}")
    assert {"POST /customer-merges", "POST /opportunities"} <= checked, sorted(checked)


@pytest.mark.parametrize("name", sorted(DEFINITIONS))
def test_csv_answers_and_metrics_are_declared_as_they_are_sent(name: str) -> None:
    checked = 0
    for method, path, operation in operations(app_of(DEFINITIONS[name])):
        formats = [p for p in operation.get("parameters", []) if p["name"] == "format"]
        ok = operation["responses"].get("200", {}).get("content", {})
        if path.endswith(".csv"):
            assert list(ok) == ["text/csv"], f"{method} {path}: {list(ok)}"
            checked += 1
        elif formats and "csv" in formats[0]["schema"].get("enum", []):
            assert {"application/json", "text/csv"} <= set(ok), f"{method} {path}: {list(ok)}"
            checked += 1
        if path == "/metrics":
            assert list(ok) == ["text/plain"]
    assert checked > 0


async def test_a_method_the_path_does_not_take_answers_405_naming_every_method() -> None:
    async with in_process_client(app_of(DEFINITIONS["analytics"])) as client:
        response = await client.delete("/segments", headers=bearer())
        assert response.status_code == 405
        assert response.headers["Allow"] == "GET, POST"
        assert "GET, POST" in response.json()["error"]
        fixed = await client.put("/segments/rule-language", headers=bearer())
        assert fixed.status_code == 405  # not PUT /segments/{segment} for `rule-language`
        assert fixed.headers["Allow"] == "GET"
        unknown = await client.get("/no-such-route", headers=bearer())
        assert unknown.status_code == 404 and unknown.json()["error"]
