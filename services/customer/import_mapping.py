"""The column mapping of a customer import, and what it makes of one record: pure.

A mapping file (YAML or JSON; its format is documented in `docs/api.md`, "Importing
customers") says which column of the file holds which customer field, how the values of a
column translate to the CRM's vocabularies, which column holds the key the file's system
gives its customers (the external key: a reference `source` + `source_customer_id`), and
the default region of phone numbers. `Mapping.row` turns one record (a CSV row as
header → cell, or one JSON object) into an `ImportRow` of clean values
(`services.customer.normalisation`), or refuses it with a reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from contracts.customer import (
    CustomerKind,
    ImportanceTier,
    LoyaltyStage,
    RelationshipLevel,
    ValueBehaviour,
)
from contracts.references import SourceName
from contracts.values import Line, Text, one_line
from services.customer.normalisation import (
    Refused,
    clean_email,
    clean_phone,
    clean_text,
    split_values,
)

Record = AnyMapping[str, Any]
"""One record of the file: a CSV row (header → cell) or a JSON object."""

VOCABULARIES: dict[str, tuple[str, ...]] = {
    "kind": tuple(CustomerKind),
    "importance_tier": tuple(ImportanceTier),
    "loyalty_stage": tuple(LoyaltyStage),
    "value_behaviour": tuple(ValueBehaviour),
    "relationship_level": tuple(RelationshipLevel),
}
PROFILE = ("name", "kind", "industry", "region", "source_channel", "owner")
CLASSIFICATION = ("importance_tier", "loyalty_stage", "value_behaviour", "relationship_level")
TAG_LIMIT = 50
_UNDECODED = re.compile("[\udc80-\udcff]")
"""The longest tag (`contracts.customer.Tag`)."""


def _lines(values: dict[str, str]) -> dict[str, str]:
    """Each word and its translation one line of text (refused here, naming the field)."""
    return {one_line(given): one_line(meant) for given, meant in values.items()}


Translations = Annotated[dict[str, str], AfterValidator(_lines)]


def _column_shorthand(value: Any) -> Any:
    return {"column": value} if isinstance(value, str) else value


class Column(BaseModel):
    """Where one value comes from: a `column` of the file or a constant `value`;
    `default` when the column is empty; `values` translates what the column holds (after
    cleaning, compared case-insensitively) into the CRM's words. A plain string is short
    for `{column: <string>}`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: Line | None = None
    value: Line | None = None
    default: Line | None = None
    values: Translations = Field(default_factory=dict)
    separators: Line | None = Field(
        default=None,
        description="For lists (tags, phones, e-mails): the characters that separate "
        "several values in one cell; the mapping's `separators` when not given.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> Column:
        if (self.column is None) == (self.value is None):
            raise ValueError("give either `column` or `value`")
        return self


Source = Annotated[Column, BeforeValidator(_column_shorthand, json_schema_input_type=Column | Line)]
"""A value's source: a `Column`, or a column's name as the shorthand (documented as either)."""


class ContactColumns(BaseModel):
    """A contact person: the customer's name when `name` is not given or empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Source | None = None
    title: Source | None = None
    phones: list[Source] = Field(default_factory=list)
    emails: list[Source] = Field(default_factory=list)


class AddressColumns(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    label: Line = Field(min_length=1, max_length=50, description="office, billing, shipping...")
    line1: Source
    line2: Source | None = None
    city: Source
    region: Source | None = None
    postal_code: Source | None = None
    country: Source = Field(description="ISO 3166-1 alpha-2 after `values`.")


class ReferenceColumn(BaseModel):
    """Another system's id of the customer, in `column`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceName
    column: Line


class Mapping(BaseModel):
    """How the records of one file become customers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["csv", "jsonl"] | None = Field(
        default=None, description="Taken from the file's extension when not given."
    )
    encoding: Literal["auto", "utf-8", "gb18030"] = "auto"
    delimiter: Text = Field(default=",", min_length=1, max_length=1, description="`\\t` for TSV.")
    default_region: str = Field(
        default="CN", pattern=r"^[A-Z]{2}$", description="Of phone numbers without +country."
    )
    separators: Line = Field(default=";,", min_length=1)
    key: ReferenceColumn | None = Field(
        default=None,
        description="The external key: the system the file comes from and the column with "
        "its customer ids. A row whose key names a customer updates that customer.",
    )
    name: Source | None = None
    kind: Source | None = None
    industry: Source | None = None
    region: Source | None = None
    source_channel: Source | None = None
    owner: Source | None = None
    tags: list[Source] = Field(default_factory=list)
    importance_tier: Source | None = None
    loyalty_stage: Source | None = None
    value_behaviour: Source | None = None
    relationship_level: Source | None = None
    contacts: list[ContactColumns] = Field(default_factory=list)
    addresses: list[AddressColumns] = Field(default_factory=list)
    references: list[ReferenceColumn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _labels_unique(self) -> Mapping:
        labels = [a.label for a in self.addresses]
        if len(labels) != len(set(labels)):
            raise ValueError("each address needs its own label")
        return self

    # What the mapping reads ------------------------------------------------------------

    def columns(self) -> set[str]:
        """Every column the mapping names (each must be in a CSV file's header)."""
        named: set[str] = set()

        def visit(value: Any) -> None:
            if isinstance(value, Column | ReferenceColumn) and value.column is not None:
                named.add(value.column)
            elif isinstance(value, BaseModel):
                for name in type(value).model_fields:
                    visit(getattr(value, name))
            elif isinstance(value, list):
                for item in value:
                    visit(item)

        visit(self)
        return named

    def fingerprint(self) -> str:
        """Names the mapping's content: an import resumed with another one is refused."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()

    # One record --------------------------------------------------------------------------

    def key_of(self, record: Record) -> tuple[str, str] | None:
        """The record's external key, if it has a readable one (for the report of a row
        refused for another reason)."""
        if self.key is None:
            return None
        try:
            found = _Reader(record, self.separators).one(_column(self.key.column), "key")
        except Refused:
            return None
        return (self.key.source, found) if found else None

    def row(self, number: int, record: Record) -> ImportRow:
        """The clean row of `record`; `Refused` with the first problem found."""
        reader = _Reader(record, self.separators)
        profile: dict[str, str] = {}
        for name in PROFILE:
            value = reader.one(getattr(self, name), name)
            if value is not None:
                profile[name] = _in_vocabulary(value, name, getattr(self, name))
        classification = {}
        for name in CLASSIFICATION:
            value = reader.one(getattr(self, name), name)
            if value is not None:
                classification[name] = _in_vocabulary(value, name, getattr(self, name))
        tags = []
        for source in self.tags:
            for tag in reader.many(source, "tag"):
                tags.append(_fitting(tag, "tag", TAG_LIMIT, source))
        key = None
        if self.key is not None:
            found = reader.one(_column(self.key.column), self.key.column)
            if found is not None:
                key = (self.key.source, _fitting(found, "key", 128, None))
        references = []
        for reference in self.references:
            found = reader.one(_column(reference.column), reference.column)
            if found is not None:
                references.append(
                    {
                        "source": reference.source,
                        "source_customer_id": _fitting(found, reference.column, 128),
                    }
                )
        return ImportRow(
            number=number,
            key=key,
            profile=profile,
            classification=classification,
            tags=list(dict.fromkeys(tags)),
            contacts=[
                c for m in self.contacts if (c := self._contact(reader, m, profile)) is not None
            ],
            addresses=[a for m in self.addresses if (a := _address(reader, m)) is not None],
            references=references,
        )

    def _contact(
        self, reader: _Reader, columns: ContactColumns, profile: dict[str, str]
    ) -> dict[str, Any] | None:
        phones = [
            phone
            for source in columns.phones
            for raw in reader.many(source, "phone")
            if (phone := clean_phone(raw, self.default_region, _named(source, "phone")))
        ]
        emails = [
            email
            for source in columns.emails
            for raw in reader.many(source, "email")
            if (email := clean_email(raw, _named(source, "email")))
        ]
        name = reader.one(columns.name, "contact name")
        title = reader.one(columns.title, "title")
        if name is None and not (phones or emails or title):
            return None
        name = name or profile.get("name")
        if name is None:
            raise Refused(
                "missing field",
                f"a contact with phones or e-mails needs a name: "
                f"{_named(columns.name, 'the contact name')} and the customer name are empty",
            )
        return {
            "name": name,
            "title": title,
            "phones": list(dict.fromkeys(phones)),
            "emails": list(dict.fromkeys(emails)),
        }


@dataclass(frozen=True)
class ImportRow:
    """One record, cleaned: what it says of one customer. Only what the record gives is
    here: an empty cell changes nothing of an existing customer."""

    number: int
    key: tuple[str, str] | None
    """(source, source_customer_id): the external key naming the customer."""
    profile: dict[str, str] = field(default_factory=dict)
    classification: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    contacts: list[dict[str, Any]] = field(default_factory=list)
    addresses: list[dict[str, Any]] = field(default_factory=list)
    references: list[dict[str, str]] = field(default_factory=list)
    """Other systems' ids of the customer (the key's reference is not among them)."""

    @property
    def key_reference(self) -> dict[str, str] | None:
        if self.key is None:
            return None
        return {"source": self.key[0], "source_customer_id": self.key[1]}

    def all_references(self) -> list[dict[str, str]]:
        key = self.key_reference
        return [key, *(r for r in self.references if r != key)] if key else list(self.references)


def load_mapping(text: str | bytes, what: str = "the mapping") -> Mapping:
    """The mapping in `text` (YAML, of which JSON is a part); `ValueError` saying what is
    wrong with it."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"{what} is neither YAML nor JSON: {' '.join(str(exc).split())}") from None
    if not isinstance(document, dict):
        raise ValueError(f"{what} must be a mapping of settings (an object), not {document!r}")
    return parse_mapping(document, what)


def parse_mapping(document: Any, what: str = "the mapping") -> Mapping:
    from pydantic import ValidationError

    try:
        return Mapping.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(f"{what} is not valid: {problems}") from None


# ---------------------------------------------------------------------------------------


class _Reader:
    """Reads the values a mapping names from one record, cleaned."""

    def __init__(self, record: Record, separators: str) -> None:
        self._record = record
        self._separators = separators

    def _raw(self, column: str) -> Any:
        if column in self._record:
            return self._record[column]
        value: Any = self._record
        for part in column.split("."):  # a nested value of a JSON object: a.b
            if not isinstance(value, AnyMapping) or part not in value:
                return None
            value = value[part]
        return value

    def _cells(self, source: Column) -> list[str]:
        if source.value is not None:
            return [source.value]
        assert source.column is not None
        raw = self._raw(source.column)
        if raw is None:
            return []
        if isinstance(raw, list):
            return [_scalar(item, source.column) for item in raw if item is not None]
        return [_scalar(raw, source.column)]

    def one(self, source: Column | None, what: str) -> str | None:
        if source is None:
            return None
        where = _named(source, what)
        cells = self._cells(source)
        if cells:
            _check_encoding(cells[0], where)
        value = clean_text(cells[0], where) if cells else None
        if value is None and source.default is not None:
            value = clean_text(source.default, where)
        return _translated(value, source)

    def many(self, source: Column, what: str) -> list[str]:
        where = _named(source, what)
        separators = source.separators or self._separators
        found = []
        for cell in self._cells(source):
            _check_encoding(cell, where)
            for part in split_values(cell, separators):
                value = _translated(clean_text(part, where, limit=254), source)
                if value is not None:
                    found.append(value)
        if not found and source.default is not None:
            found = [source.default]
        return found


@functools.lru_cache(maxsize=256)
def _column(name: str) -> Column:
    """The plain column `name` (made once: read for every record)."""
    return Column(column=name)


def _scalar(value: Any, column: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Refused("invalid value", f"{column} holds {json.dumps(value)[:80]}, not text")
    return str(value)


def _check_encoding(text: str, where: str) -> None:
    """Bytes the file's encoding could not decode are kept as surrogate escapes
    (U+DC80..U+DCFF) by the reader: refused here with the reason that says so."""
    if _UNDECODED.search(text) is not None:
        raise Refused(
            "bad encoding",
            f"{where} holds bytes that are not text in the file's encoding "
            "(give the encoding: utf-8 or gb18030)",
        )


def _named(source: Column | None, what: str) -> str:
    return source.column if source is not None and source.column is not None else what


def _translated(value: str | None, source: Column) -> str | None:
    if value is None or not source.values:
        return value
    folded = value.casefold()
    for given, meant in source.values.items():
        if given.casefold() == folded:
            return meant
    return value


def _in_vocabulary(value: str, name: str, source: Column | None) -> str:
    words = VOCABULARIES.get(name)
    if words is None:
        return value
    folded = value.casefold()
    if folded in words:
        return folded
    raise Refused(
        "unknown value",
        f"{_named(source, name)} {value!r} is not a {name.replace('_', ' ')} "
        f"({', '.join(words)}); translate it with `values` in the mapping",
    )


def _fitting(value: str, what: str, limit: int, source: Column | None = None) -> str:
    if len(value) > limit:
        raise Refused(
            "too long", f"{_named(source, what)} has {len(value)} characters; at most {limit} fit"
        )
    return value


def _address(reader: _Reader, columns: AddressColumns) -> dict[str, Any] | None:
    values = {
        name: reader.one(getattr(columns, name), name)
        for name in ("line1", "line2", "city", "region", "postal_code", "country")
    }
    given = {k: v for k, v in values.items() if v is not None and k != "country"}
    if not given:
        return None
    missing = [n for n in ("line1", "city", "country") if values[n] is None]
    if missing:
        names = ", ".join(_named(getattr(columns, n), n) for n in missing)
        raise Refused("missing field", f"the {columns.label} address needs {names}")
    country = str(values["country"]).upper()
    if len(country) != 2 or not country.isascii() or not country.isalpha():
        raise Refused(
            "unknown value",
            f"{_named(columns.country, 'country')} {values['country']!r} is not an ISO 3166 "
            "country code (CN, US...); translate it with `values` in the mapping",
        )
    postal = values["postal_code"]
    if postal is not None and len(postal) > 20:
        raise Refused("too long", f"the {columns.label} address's postal code is over 20")
    return {"label": columns.label, **values, "country": country}
