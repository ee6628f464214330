"""The prompt file formats: which reader each uses, and how a prompt's text is taken out of a record.

A format is a row of ``FORMATS``: a reader, a default field and whether the field holds a dialogue (HH-RLHF) whose
first human turn is the prompt. Adding a format is adding a row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from iteralign.data.records import Row, RowError, read_csv, read_json, read_jsonl

#: Fields tried, in order, when a record is an object and no ``field`` is configured.
CANDIDATE_FIELDS = ("prompt", "text", "question", "goal", "instruction", "query", "input")
#: Fields that hold a whole ``Human: ... Assistant: ...`` dialogue (HH-RLHF ``chosen``, red-team ``transcript``).
DIALOGUE_FIELDS = ("chosen", "transcript")

_HUMAN = re.compile(r"(?:^|\n)\s*Human:\s?")
_NEXT_TURN = re.compile(r"\n\s*(?:Assistant|Human):")


@dataclass(frozen=True)
class Format:
    """How to read one file format."""

    reader: Callable[[Path], Iterator[Row | RowError]]
    field: str | None = None
    dialogue: bool = False
    category_field: str | None = None


FORMATS: dict[str, Format] = {
    "jsonl": Format(read_jsonl),
    "csv": Format(read_csv),
    "json": Format(read_json),
    "nested": Format(partial(read_json, shape="nested")),
    "harmfulqa": Format(partial(read_json, shape="nested")),
    "catqa": Format(partial(read_json, shape="nested")),
    "dangerousqa": Format(partial(read_json, shape="list")),
    "adversarialqa": Format(partial(read_json, shape="list")),
    "hh_rlhf": Format(read_jsonl, field="chosen", dialogue=True),
    "advbench": Format(read_csv, field="goal"),
}

_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".json": "json"}


def detect_format(path: Path) -> str:
    """Pick a format from the file name (``.jsonl``, ``.jsonl.gz``, ``.csv``, ``.json``); error if unknown."""
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    if suffixes and suffixes[-1] in _SUFFIXES:
        return _SUFFIXES[suffixes[-1]]
    raise ValueError(f"{path}: cannot tell the format from the file name; set format to one of {', '.join(FORMATS)}")


def first_human_turn(dialogue: str) -> str:
    """The first ``Human:`` turn of an Anthropic-style ``\\n\\nHuman: ...\\n\\nAssistant: ...`` dialogue."""
    start = _HUMAN.search(dialogue)
    if start is None:
        raise ValueError("no 'Human:' turn in the dialogue")
    rest = dialogue[start.end():]
    end = _NEXT_TURN.search(rest)
    return (rest[: end.start()] if end else rest).strip()


def record_text(record: Any, field: str | None, dialogue: bool) -> str:
    """The prompt held by ``record`` (a string, or an object with ``field``); ``ValueError`` says what is wrong."""
    if isinstance(record, str):
        if field is not None:
            raise ValueError(f"expected an object with field {field!r}, found a string")
        return record
    if not isinstance(record, dict):
        raise ValueError(f"expected an object or a string, found {type(record).__name__}")
    key = field or _guess_field(record)
    if key not in record:
        raise ValueError(f"missing field {key!r} (fields: {', '.join(map(str, record)) or 'none'})")
    value = record[key]
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} is {type(value).__name__}, expected a string")
    if dialogue or (field is None and key in DIALOGUE_FIELDS):
        return first_human_turn(value)
    return value


def record_category(record: Any, category_field: str | None) -> str | None:
    """The category held by ``record[category_field]`` (scalars are turned into strings; null means none)."""
    if category_field is None:
        return None
    if not isinstance(record, dict):
        raise ValueError(f"expected an object with category field {category_field!r}, found {type(record).__name__}")
    if category_field not in record:
        raise ValueError(f"missing category field {category_field!r} (fields: {', '.join(map(str, record))})")
    value = record[category_field]
    if value is None:
        return None
    if not isinstance(value, (str, int, float, bool)):
        raise ValueError(f"category field {category_field!r} is {type(value).__name__}, expected a string")
    return str(value)


def _guess_field(record: dict) -> str:
    for key in CANDIDATE_FIELDS + DIALOGUE_FIELDS:
        if key in record:
            return key
    raise ValueError(
        f"no prompt field found (fields: {', '.join(map(str, record)) or 'none'}); "
        f"set `field` to the one holding the prompt"
    )
