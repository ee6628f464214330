"""``constitution.yaml``: a human-readable, hand-editable file of principles, and its strict loader.

Layout: a comment header explaining how to edit, then ``principles:`` with one mapping per principle; long texts are
folded block scalars, multi-line ones literal blocks, failure ids a one-line list. A user may write an entry as a bare
string or omit every field but ``text`` (ids are assigned). Loading a wrong file fails with ``ConstitutionError``
naming the file, the line and the entry (number and id) and the field. Comments are for the reader: a save (the loop
writes the file after every proposal stage) does not keep them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from iteralign.constitution.store import Constitution, Principle, next_principle_id

HEADER = """\
# iteralign constitution: the principles the loop has proposed (origin: proposed) or you wrote (origin: user).
# Edit freely, then rerun:  status: pinned    -> always shown to the reviser
#                           status: disabled  -> never used, and never re-added by a later proposal
#                           kind: permit      -> a rule of what to answer (kind: restrict: what to refuse)
# Add your own: a new entry with just `text:` (or a bare string); ids are assigned on load.
"""

FIELD_ORDER = ("id", "text", "kind", "status", "origin", "iteration", "uses", "source_failure_ids", "created")
_FOLD_AT = 80


class ConstitutionError(ValueError):
    """A constitution file that cannot be read; the message names file, line, entry and field."""


class _Folded(str):
    pass


class _Literal(str):
    pass


class _FlowList(list):
    pass


class _Dumper(yaml.SafeDumper):
    """Safe dumper with block scalars for long texts and one-line lists for ids."""


# YAML treats these as line breaks: in plain or block scalars they would come back as spaces or newlines.
_BREAKS = frozenset("\r\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if _BREAKS & set(value) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Folded, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style=">"))
_Dumper.add_representer(_Literal, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))
_Dumper.add_representer(_FlowList, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def _entry(principle: Principle) -> dict[str, Any]:
    data = principle.model_dump()
    text = data["text"]
    if _BREAKS & set(text):
        pass  # stays a double-quoted scalar, which escapes them
    elif "\n" in text:
        data["text"] = _Literal(text)
    elif len(text) > _FOLD_AT:
        data["text"] = _Folded(text)
    data["source_failure_ids"] = _FlowList(data["source_failure_ids"])
    return {key: data[key] for key in FIELD_ORDER if data[key] is not None}


def dumps(constitution: Constitution) -> str:
    """The YAML text of a constitution (header comment included)."""
    body = yaml.dump(
        {"principles": [_entry(p) for p in constitution]},
        Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, default_flow_style=False,
    )
    return HEADER + body


def save(constitution: Constitution, path: str | Path) -> None:
    """Write atomically (temporary file in the same folder, then ``os.replace``): a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dumps(constitution))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, similarity_threshold: float = 0.6) -> Constitution:
    """Read ``constitution.yaml``; a missing ``principles`` key or an empty file is an empty constitution."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConstitutionError(f"{path}: file not found") from None
    except UnicodeDecodeError as exc:
        raise ConstitutionError(f"{path}: invalid UTF-8 at byte {exc.start}") from None
    return loads(text, path, similarity_threshold)


def loads(text: str, path: str | Path = "<string>", similarity_threshold: float = 0.6) -> Constitution:
    """Parse constitution YAML; ``path`` is only used in error messages."""
    try:
        data = yaml.safe_load(text)
        lines = _entry_lines(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConstitutionError(f"{where}: invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    except (ValueError, RecursionError) as exc:  # an integer over 4300 digits, nesting deeper than the stack
        raise ConstitutionError(f"{path}: unreadable YAML: {type(exc).__name__}: {str(exc)[:120]}") from None
    entries = _entries(data, path)
    principles = _validate(entries, lines, path)
    return Constitution(principles, similarity_threshold)


def _entries(data: Any, path: str | Path) -> list[Any]:
    """The list of principle entries in the parsed document."""
    if data is None:
        return []
    if isinstance(data, list):
        return data
    if not isinstance(data, dict):
        raise ConstitutionError(f"{path}: expected a mapping with a 'principles' list, found {type(data).__name__}")
    unknown = [str(k) for k in data if k != "principles"]
    if unknown:
        raise ConstitutionError(f"{path}: unknown top-level key {unknown[0]!r} (expected only 'principles')")
    entries = data.get("principles") or []
    if not isinstance(entries, list):
        raise ConstitutionError(f"{path}: 'principles' must be a list, found {type(entries).__name__}")
    return entries


def _validate(entries: list[Any], lines: list[int], path: str | Path) -> list[Principle]:
    """Turn entries into principles; ids missing from entries are assigned after the given ones are known."""
    seen: dict[str, int] = {}
    parsed: list[dict[str, Any]] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{path}:{lines[number - 1]}" if number <= len(lines) else str(path)
        if isinstance(entry, str):
            entry = {"text": entry}
        if not isinstance(entry, dict):
            raise ConstitutionError(f"{where}: principle #{number}: expected a mapping or a string, "
                                    f"found {type(entry).__name__}")
        entry_id = entry.get("id")
        if entry_id is not None:
            if str(entry_id) in seen:
                raise ConstitutionError(f"{where}: principle #{number}: duplicate id {entry_id!r} "
                                        f"(also principle #{seen[str(entry_id)]})")
            seen[str(entry_id)] = number
        parsed.append(entry)
    principles: list[Principle] = []
    for number, entry in enumerate(parsed, start=1):
        where = f"{path}:{lines[number - 1]}" if number <= len(lines) else str(path)
        entry = dict(entry)
        if entry.get("id") is None:
            entry["id"] = next_principle_id(seen)
            seen[entry["id"]] = number
        try:
            principles.append(Principle.model_validate(entry))
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "entry"
            raise ConstitutionError(f"{where}: principle #{number} (id {entry['id']}): field {field!r}: "
                                    f"{error['msg']}") from None
    return principles


def _entry_lines(text: str) -> list[int]:
    """1-based line of each entry of the principles list (for error messages); empty if the layout is unexpected."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if isinstance(root, yaml.MappingNode):
        root = next((value for key, value in root.value if key.value == "principles"), None)
    if not isinstance(root, yaml.SequenceNode):
        return []
    return [item.start_mark.line + 1 for item in root.value]
