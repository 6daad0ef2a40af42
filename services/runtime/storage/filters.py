"""The WHERE clause of a list query, built from optional filters, shared by every query.

    where = Where()
    where.equal("o.owner", filters.owner)          # skipped when the value is None
    where.add("o.product_names @> ARRAY[{}]::text[]", filters.product)
    where.after(("o.opened_at", "o.opportunity_id"), position, descending=True)
    rows = await db.fetch(f"SELECT ... WHERE {where.sql} ... LIMIT {where.parameter(limit)}",
                          *where.values)

Each `{}` in a condition becomes a numbered parameter (`$n`); values never enter the SQL
text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def escape_like(text: str) -> str:
    """`text` matched literally inside a LIKE pattern (with `ESCAPE '\\'`)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _absent(value: Any) -> bool:
    if value is None or value is False:
        return True
    return isinstance(value, str | list | tuple) and len(value) == 0


class Where:
    """Conditions joined by AND, with their values as numbered parameters."""

    def __init__(self, values: list[Any] | None = None) -> None:
        self.clauses: list[str] = []
        self.values: list[Any] = values if values is not None else []

    def parameter(self, value: Any) -> str:
        """A parameter holding `value`, for SQL outside the conditions (LIMIT, a join)."""
        self.values.append(value)
        return f"${len(self.values)}"

    def condition(self, sql: str) -> Where:
        """A condition without values."""
        self.clauses.append(sql)
        return self

    def add(self, sql: str, *values: Any) -> Where:
        """The condition `sql`, each `{}` in it a parameter of the next of `values`; skipped
        when the first value is None, empty or False (an absent filter)."""
        if values and _absent(values[0]):
            return self
        self.clauses.append(sql.format(*(self.parameter(v) for v in values)))
        return self

    def equal(self, column: str, value: Any) -> Where:
        """`column` equal to `value`, or to one of several (a list: e.g. the customers of
        a merge group, `services.runtime.customer_aliases.merge_group`)."""
        if isinstance(value, list):
            return self.add(f"{column} = ANY({{}})", value)
        return self.add(f"{column} = {{}}", value)

    def compare(self, column: str, operator: str, value: Any) -> Where:
        return self.add(f"{column} {operator} {{}}", value)

    def after(
        self,
        columns: Sequence[str],
        position: Sequence[Any] | None,
        *,
        descending: bool = False,
        casts: Sequence[str] = (),
    ) -> Where:
        """Rows past `position` in the order of `columns` (keyset paging); nothing when
        there is no position yet. `casts` gives a parameter's type where PostgreSQL cannot
        infer it (e.g. `("", "uuid")`)."""
        if position is None:
            return self
        kinds = [*casts, *[""] * (len(columns) - len(casts))]
        parameters = ", ".join(
            self.parameter(value) + (f"::{kind}" if kind else "")
            for value, kind in zip(position, kinds, strict=False)
        )
        operator = "<" if descending else ">"
        self.clauses.append(f"({', '.join(columns)}) {operator} ({parameters})")
        return self

    @property
    def sql(self) -> str:
        return " AND ".join(self.clauses) or "TRUE"
