"""Streaming readers for prompt files: JSONL (optionally gzip-compressed), CSV and JSON.

Each reader yields ``Row`` (a record and where it came from) or ``RowError`` (a bad row and why). Readers never raise
for a bad row, so that the caller decides, in one place and by config, whether a bad row stops the load or is skipped
and counted. File-level problems (a missing file, a JSON document that does not parse) raise ``DataError``.

JSONL and CSV are read line by line from a binary stream, so a 1 GB file costs one line of memory and ``limit``
stops reading early. A JSON document is parsed whole (that is what JSON allows); use JSONL for very large sets.
"""

from __future__ import annotations

import csv
import gzip
import zlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = "\ufeff"


class DataError(ValueError):
    """Bad input data: the message names the file and the line (or item) and what is wrong."""


@dataclass(frozen=True)
class Row:
    """One record read from a source; ``where`` is ``file:line`` (or ``file: item N``) for error messages."""

    where: str
    record: Any
    category: str | None = None
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RowError:
    """A row that could not be read; ``where`` locates it as ``Row.where`` does."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def open_binary(path: Path) -> IO[bytes]:
    """Open ``path`` for reading bytes, transparently decompressing gzip (detected by its magic bytes)."""
    try:
        with open(path, "rb") as probe:
            magic = probe.read(2)
        return gzip.open(path, "rb") if magic == _GZIP_MAGIC else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a file") from None


def decoded_lines(path: Path) -> Iterator[tuple[int, str | RowError]]:
    """Yield ``(line number, text)`` for each line, or ``(line number, RowError)`` for a line that is not UTF-8.

    A byte-order mark at the start of the file is dropped (Excel writes one into CSV exports).
    """
    with open_binary(path) as stream:
        try:
            for number, raw in enumerate(stream, start=1):
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    yield number, RowError(f"{path}:{number}", f"invalid UTF-8 at byte {exc.start} of the line")
                    continue
                yield number, (text[1:] if number == 1 and text.startswith(_BOM) else text)
        except (OSError, EOFError, zlib.error) as exc:  # truncated or corrupt gzip
            raise DataError(f"{path}: cannot read: {exc}") from exc


def read_jsonl(path: Path) -> Iterator[Row | RowError]:
    """One JSON value per line; blank lines are ignored."""
    for number, line in decoded_lines(path):
        if isinstance(line, RowError):
            yield line
            continue
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            yield Row(where, json.loads(line))
        except json.JSONDecodeError as exc:
            yield RowError(where, f"invalid JSON: {exc.msg} (column {exc.colno})")
        except (ValueError, RecursionError) as exc:  # an integer over 4300 digits, nesting deeper than the stack
            yield RowError(where, f"unreadable JSON: {type(exc).__name__}: {str(exc)[:120]}")


def read_csv(path: Path) -> Iterator[Row | RowError]:
    """CSV with a header row; each row becomes a dict keyed by the header. Quoted multi-line fields are allowed.

    A row with a different number of columns than the header is a ``RowError``; broken quoting stops the read with a
    ``DataError`` (the reader cannot resynchronise after it).
    """
    state = {"line": 0}
    bad: list[RowError] = []

    def lines() -> Iterator[str]:
        for number, line in decoded_lines(path):
            state["line"] = number
            if isinstance(line, RowError):
                bad.append(line)
            else:
                yield line

    reader = csv.reader(lines(), strict=True)
    header: list[str] | None = None
    last_end = 0
    try:
        for values in reader:
            start, last_end = last_end + 1, state["line"]
            yield from bad
            bad.clear()
            if not values:
                continue
            if header is None:
                header = [name.strip() for name in values]
                continue
            if len(values) != len(header):
                yield RowError(f"{path}:{start}", f"expected {len(header)} columns ({', '.join(header)}), "
                               f"found {len(values)}")
                continue
            yield Row(f"{path}:{start}", dict(zip(header, values)))
    except csv.Error as exc:
        raise DataError(f"{path}:{state['line']}: malformed CSV: {exc}") from exc
    yield from bad


JsonShape = Literal["any", "list", "nested"]


def read_json(path: Path, shape: JsonShape = "any") -> Iterator[Row | RowError]:
    """A JSON document holding prompts: a list (of strings or objects), or a mapping ``{topic: [questions]}`` or
    ``{topic: {subtopic: [questions]}}`` (HarmfulQA, CatQA), whose topic becomes the prompt's category.

    ``shape`` makes a named format insist on its structure, for a clearer error when the wrong file is given.
    """
    with open_binary(path) as stream:
        raw = stream.read()
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}:{line}: invalid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: unreadable JSON: {type(exc).__name__}: {str(exc)[:120]}") from None
    expected = {"list": list, "nested": dict}.get(shape, (list, dict))
    if not isinstance(data, expected):
        wanted = {"list": "a list", "nested": "a mapping {topic: {subtopic: [questions]}}"}.get(
            shape, "a list or a mapping"
        )
        raise DataError(f"{path}: expected {wanted} at the top level, found {type(data).__name__}")
    if isinstance(data, list):
        for index, item in enumerate(data, start=1):
            yield Row(f"{path}: item {index}", item)
    else:
        yield from _nested_rows(path, data)


def _nested_rows(path: Path, data: dict) -> Iterator[Row | RowError]:
    """Walk ``{topic: [questions]}`` or ``{topic: {subtopic: [questions]}}``; category = topic."""
    for topic, value in data.items():
        groups = value.items() if isinstance(value, dict) else [(None, value)]
        for subtopic, items in groups:
            label = f"{topic} / {subtopic}" if subtopic is not None else str(topic)
            if not isinstance(items, list):
                yield RowError(f"{path}: {label}", f"expected a list of questions, found {type(items).__name__}")
                continue
            meta = {"subtopic": str(subtopic).rstrip(":").strip()} if subtopic is not None else {}
            for index, item in enumerate(items, start=1):
                yield Row(f"{path}: {label} item {index}", item, category=str(topic), meta=meta)
