"""Generates the committed JSON Schema of every event: `python -m contracts.jsonschema`.

One file per event type and version, describing the whole envelope with its payload, and
one per inbound topic, describing the plain document other systems publish there.
A test fails when the committed files differ from what the models generate.
"""

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from contracts.envelope import EventEnvelope, EventPayload, example_envelope
from contracts.registry import all_event_models, inbound_models

SCHEMA_DIR = Path(__file__).parent / "schemas"


def schema_filename(model: type[EventPayload]) -> str:
    return f"{model.event_type}.v{model.schema_version}.schema.json"


def event_schema(model: type[EventPayload]) -> dict[str, Any]:
    schema = EventEnvelope[model].model_json_schema()  # type: ignore[valid-type]
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"{model.event_type} v{model.schema_version}"
    schema["description"] = (model.__doc__ or model.event_type).strip()
    properties = schema["properties"]
    properties["event_type"]["const"] = model.event_type
    properties["schema_version"]["const"] = model.schema_version
    schema["examples"] = [example_envelope(model)]
    return schema


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def inbound_schema(topic: str, model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = f"{model.__name__} on {topic}"
    return schema


def expected_files() -> dict[str, str]:
    files = {schema_filename(m): render(event_schema(m)) for m in all_event_models()}
    for topic, model in inbound_models().items():
        files[f"{topic}.schema.json"] = render(inbound_schema(topic, model))
    return files


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    expected = expected_files()
    for stale in SCHEMA_DIR.glob("*.schema.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (SCHEMA_DIR / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(expected)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
