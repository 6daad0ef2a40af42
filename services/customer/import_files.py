"""Reading the records of an import file as a stream: CSV (UTF-8 with or without a byte
order mark, GB18030 as Chinese spreadsheets save it; the encoding detected or given) and
JSON lines. Nothing is read whole: records come one at a time, so a file of a million
rows takes the memory of one.

A record that cannot be read (a CSV row with another number of cells than the header, a
line that is not a JSON object) comes as a `Refused` for its row; the other rows go on.
A file that cannot be read at all (no header, a column the mapping names missing) raises
`FileRefused` before any row.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO

import orjson

from services.customer.import_mapping import Mapping, Record
from services.customer.normalisation import Refused

SAMPLE_BYTES = 1 << 20
"""How much of a file the encoding is detected from."""
FORMATS = {".csv": "csv", ".txt": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


class FileRefused(ValueError):
    """The file cannot be imported at all; the message says why."""


@dataclass(frozen=True)
class Item:
    """One record of the file: `number` counts records from 1 (after a CSV header)."""

    number: int
    record: Record | None
    refused: Refused | None = None


def format_of(name: str | None, mapping: Mapping, given: str | None = None) -> str:
    """The format named, the mapping's, or the one the file's extension says."""
    chosen = given or mapping.format or FORMATS.get(PurePath(name or "").suffix.lower())
    if chosen not in ("csv", "jsonl"):
        raise FileRefused(
            f"cannot tell the format of {name!r}: name it (csv or jsonl) in the mapping's "
            "`format` or with --format"
        )
    return chosen


def _shown(text: str) -> str:
    """`text` with the bytes its encoding could not decode shown as U+FFFD."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def detect_encoding(sample: bytes) -> str:
    """utf-8-sig for a UTF-8 byte order mark, utf-8 for text that decodes as UTF-8, and
    gb18030 (which every byte sequence of Chinese Windows text is) otherwise."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


class RecordStream:
    """The records of a seekable binary file, in order; `position` is how far (bytes)."""

    def __init__(
        self, binary: BinaryIO, mapping: Mapping, *, format: str, encoding: str | None = None
    ) -> None:
        self._binary = binary
        self.format = format
        self.mapping = mapping
        chosen = encoding or mapping.encoding
        if format == "jsonl":
            chosen = "utf-8-sig"
        elif chosen == "auto":
            start = binary.tell()
            chosen = detect_encoding(binary.read(SAMPLE_BYTES))
            binary.seek(start)
        elif chosen == "utf-8":
            chosen = "utf-8-sig"  # a byte order mark is never part of the first column
        self.encoding = chosen
        self.header: list[str] = []
        self._text: io.TextIOWrapper | None = None
        """Kept while the stream lives: a text wrapper closes its file when it goes."""
        self._items = self._csv() if format == "csv" else self._jsonl()

    def position(self) -> int:
        return self._binary.tell()

    def __iter__(self) -> Iterator[Item]:
        return self._items

    # -------------------------------------------------------------------------------------

    def _csv(self) -> Iterator[Item]:
        text = self._text = io.TextIOWrapper(
            self._binary, encoding=self.encoding, errors="surrogateescape", newline=""
        )
        reader = csv.reader(text, delimiter=self.mapping.delimiter)
        try:
            self.header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise FileRefused("the file is empty: a CSV file starts with a header row") from None
        except csv.Error as exc:
            raise FileRefused(f"the header row is not CSV: {exc}") from None
        self._check_header()
        return self._csv_rows(reader, len(self.header))

    def _check_header(self) -> None:
        missing = sorted(self.mapping.columns() - set(self.header))
        if missing:
            shown = ", ".join(_shown(name) for name in self.header)
            garbled = (
                "; is the file in another encoding?" if shown != ", ".join(self.header) else ""
            )
            raise FileRefused(
                f"the mapping names columns the file does not have: {', '.join(missing)}; "
                f"the file's columns (read as {self.encoding}): {shown}{garbled}"
            )
        named = self.mapping.columns()
        twice = sorted({c for c in self.header if c in named and self.header.count(c) > 1})
        if twice:
            raise FileRefused(f"the header has these columns more than once: {', '.join(twice)}")

    def _csv_rows(self, reader: Iterator[list[str]], width: int) -> Iterator[Item]:
        number = 0
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise FileRefused(f"the file is not CSV after record {number}: {exc}") from None
            number += 1
            if not any(cell.strip() for cell in cells):
                continue  # an empty line: nothing to import, its number kept
            if len(cells) != width:
                yield Item(
                    number,
                    None,
                    Refused(
                        "malformed row",
                        f"the row has {len(cells)} cells and the header {width}",
                    ),
                )
                continue
            yield Item(number, dict(zip(self.header, cells, strict=True)))

    def _jsonl(self) -> Iterator[Item]:
        number = 0
        for line in self._binary:
            number += 1
            if number == 1 and line.startswith(codecs.BOM_UTF8):
                line = line[len(codecs.BOM_UTF8) :]
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield Item(number, None, Refused("malformed row", f"the line is not JSON: {exc}"))
                continue
            if not isinstance(record, dict):
                yield Item(number, None, Refused("malformed row", "the line is not a JSON object"))
                continue
            yield Item(number, record)
