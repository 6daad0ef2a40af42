"""The personal values of a contract's payload, read from the fields the contract marks.

`personal_strings(payload)` gives what a validation of the payload's dump would collect
(`contracts.personal.COLLECTING`): every string standing in a field marked `PERSONAL`,
in a nested model, list, tuple, set or dict value too. It reads them from the model
itself along paths worked out once per model class (which fields can hold personal
data, and what kind of value each holds), so sealing an event costs no validation
pass: the contract's own validation made the payload already.
"""

from __future__ import annotations

import functools
import types
import typing
from collections.abc import Callable
from typing import Annotated, Any, Union

from pydantic import BaseModel

from contracts.personal import carries_personal, is_personal_mark

Collect = Callable[[Any, list[str]], None]


def personal_strings(payload: BaseModel) -> list[str]:
    """The strings in the payload's personal fields, each as often as it stands there."""
    found: list[str] = []
    _collect_model(payload, found)
    return found


def all_strings(value: Any, found: list[str]) -> list[str]:
    """Every string in a dumped value (a dict's values, a list's items, nested), appended
    to `found`; dict keys are not values."""
    kind = type(value)
    if kind is str:
        found.append(value)
    elif kind is dict:
        for item in value.values():
            if type(item) is str:
                found.append(item)
            elif item is not None:
                all_strings(item, found)
    elif kind in (list, tuple, set, frozenset):
        for item in value:
            if type(item) is str:
                found.append(item)
            elif item is not None:
                all_strings(item, found)
    elif isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        all_strings(dict(value), found)
    elif isinstance(value, list | tuple | set | frozenset):
        all_strings(list(value), found)
    return found


def _collect_model(model: BaseModel, found: list[str]) -> None:
    for name, collect in _plan(type(model)):
        value = getattr(model, name)
        if value is not None:
            collect(value, found)


@functools.cache
def _plan(model: type[BaseModel]) -> tuple[tuple[str, Collect], ...]:
    """The fields of `model` that can hold personal data, with how to collect each."""
    plan = []
    for name, field in model.model_fields.items():
        annotation = (
            Annotated[(field.annotation, *field.metadata)] if field.metadata else field.annotation
        )
        if carries_personal(annotation):
            plan.append((name, _collector(annotation)))
    return tuple(plan)


def _collector(annotation: Any) -> Collect:
    """How to collect the personal strings of a value of `annotation` (which carries some)."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        base, *metadata = typing.get_args(annotation)
        inner = _collector(base) if carries_personal(base) else None
        if any(is_personal_mark(m) for m in metadata):
            return _personal_or(inner)
        assert inner is not None
        return inner
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _collect_nested_model
    if origin in (Union, types.UnionType):
        arms = [
            (arm, _collector(arm)) for arm in typing.get_args(annotation) if carries_personal(arm)
        ]
        return _union(arms)
    arguments = typing.get_args(annotation)
    if origin in (list, set, frozenset) or (
        origin is tuple and len(arguments) == 2 and arguments[1] is Ellipsis
    ):
        return _each(_collector(arguments[0]))
    if origin is tuple:
        return _positions(tuple(_collector(a) if carries_personal(a) else None for a in arguments))
    if origin is dict:
        return _values(_collector(arguments[1]))
    raise TypeError(f"no way to read personal values from a field of type {annotation!r}")


def _collect_nested_model(value: Any, found: list[str]) -> None:
    if isinstance(value, BaseModel):
        _collect_model(value, found)


def _personal_or(inner: Collect | None) -> Collect:
    def collect(value: Any, found: list[str]) -> None:
        if isinstance(value, str):
            found.append(value)
        elif inner is not None:
            inner(value, found)

    return collect


def _each(item: Collect) -> Collect:
    def collect(value: Any, found: list[str]) -> None:
        if isinstance(value, list | tuple | set | frozenset):
            for element in value:
                if element is not None:
                    item(element, found)

    return collect


def _positions(items: tuple[Collect | None, ...]) -> Collect:
    def collect(value: Any, found: list[str]) -> None:
        if isinstance(value, tuple):
            for element, item in zip(value, items, strict=False):
                if item is not None and element is not None:
                    item(element, found)

    return collect


def _values(item: Collect) -> Collect:
    def collect(value: Any, found: list[str]) -> None:
        if isinstance(value, dict):
            for element in value.values():
                if element is not None:
                    item(element, found)

    return collect


def _union(arms: list[tuple[Any, Collect]]) -> Collect:
    """A union's value is collected as the arm of its kind (a model's own class, a list,
    a dict, a string) says."""
    kinds = [(_kind(arm), collect) for arm, collect in arms]

    def collect(value: Any, found: list[str]) -> None:
        for kind, arm in kinds:
            if isinstance(value, kind):
                arm(value, found)
                return

    return collect


def _kind(annotation: Any) -> type | tuple[type, ...]:
    """The runtime class of values of `annotation` (which carries personal data): a
    model's class, a container's, else a string (a personal field's value)."""
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        kinds: list[type] = []
        for arm in typing.get_args(annotation):
            kind = _kind(arm)
            kinds.extend(kind if isinstance(kind, tuple) else (kind,))
        return tuple(kinds)
    if isinstance(origin, type):
        return origin
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return str
