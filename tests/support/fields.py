"""Every text, date and JSON field of every contract and HTTP request body, found by
introspection so that a field added tomorrow is walked too."""

from __future__ import annotations

import enum
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from fastapi.routing import iter_route_contexts
from pydantic import AfterValidator, AwareDatetime, BaseModel
from pydantic.networks import EmailStr

from contracts.envelope import EventEnvelope
from contracts.registry import all_event_models, inbound_models
from tests.support.routes import DEFINITIONS, app_of

Kind = Literal["text", "day", "moment", "json"]
Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Leaf:
    model: type[BaseModel]
    path: Path
    """Where the value sits: field names, and 0 for an element of a list."""
    kind: Kind
    checks: tuple[Callable[..., Any], ...] = ()
    """The functions of the `AfterValidator`s on the way to the value."""

    def __str__(self) -> str:
        return f"{self.model.__name__}.{'.'.join(str(p) for p in self.path)}"

    def document(self, value: Any) -> dict[str, Any]:
        """A document holding `value` at this leaf and nothing else."""
        holder: Any = value
        for step in reversed(self.path):
            holder = [holder] if isinstance(step, int) else {step: holder}
        document: dict[str, Any] = holder
        return document


Found = tuple[Path, Kind, tuple[Callable[..., Any], ...]]


def _checks(metadata: Any) -> tuple[Callable[..., Any], ...]:
    return tuple(item.func for item in metadata if isinstance(item, AfterValidator))


def _leaves(
    annotation: Any, path: Path, seen: frozenset[type], checks: tuple[Callable[..., Any], ...]
) -> Iterator[Found]:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        yield from _leaves(inner, path, seen, checks + _checks(metadata))
    elif origin in (Union, types.UnionType):
        for argument in get_args(annotation):
            yield from _leaves(argument, path, seen, checks)
    elif origin in (list, tuple, set, frozenset):
        yield from _leaves(get_args(annotation)[0], (*path, 0), seen, ())
    elif origin is dict or annotation is dict:
        yield path, "json", checks
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation not in seen:
            for name, info in annotation.model_fields.items():
                yield from _leaves(
                    info.annotation, (*path, name), seen | {annotation}, _checks(info.metadata)
                )
    elif annotation in (datetime, AwareDatetime):
        yield path, "moment", checks
    elif annotation is date:
        yield path, "day", checks
    elif isinstance(annotation, type) and (
        issubclass(annotation, EmailStr)
        or (issubclass(annotation, str) and not issubclass(annotation, enum.Enum))
    ):
        yield path, "text", checks


def leaves(model: type[BaseModel]) -> list[Leaf]:
    return [Leaf(model, *found) for found in _leaves(model, (), frozenset(), ())]


def request_bodies() -> dict[str, type[BaseModel]]:
    """The body model of every route of every service, by `METHOD path`."""
    bodies: dict[str, type[BaseModel]] = {}
    for definition in DEFINITIONS.values():
        for route in iter_route_contexts(app_of(definition).routes):
            dependant = getattr(getattr(route, "route", route), "dependant", None)
            for parameter in dependant.body_params if dependant else ():
                annotation = parameter.field_info.annotation
                for model in (annotation, *get_args(annotation)):  # `Body | None` too
                    if not (isinstance(model, type) and issubclass(model, BaseModel)):
                        continue
                    method = sorted(route.methods or ())[0]
                    bodies[f"{definition.name} {method} {route.path}"] = model
    return bodies


def contract_models() -> list[type[BaseModel]]:
    """The envelope, every event payload and every inbound message."""
    return [EventEnvelope, *all_event_models(), *inbound_models().values()]
