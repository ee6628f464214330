"""Prompt sources: where red-team (or replay) prompts come from, and loading them into ``Prompt`` items.

A source is one of: a file (``path``, JSONL / CSV / JSON / the benchmark formats in ``formats.FORMATS``), a Hugging
Face dataset (``hub``, loaded lazily through ``datasets``), a built-in seed set shipped with the package
(``builtin: seeds`` for red-team prompts, ``builtin: benign`` for helpfulness replay), or a public red-team set by
name (``benchmark: advbench``, see ``benchmark_files.PROMPT_SETS``), found like any benchmark file: in
``$ITERALIGN_BENCHMARKS``, else in the copy shipped with the package. In YAML a bare string is also accepted:
``builtin:seeds``, ``benchmark:advbench``, ``hub:Anthropic/hh-rlhf`` or a file path.

Loading is lazy (``iter_prompts`` is a generator reading line by line) and strict by default: a bad row raises
``DataError`` naming ``file:line`` and the problem; with ``on_error: skip`` it is skipped and counted in a
``LoadReport``.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iteralign.data.benchmark_files import PROMPT_SETS, locate
from iteralign.data.formats import FORMATS, Format, detect_format, record_category, record_text
from iteralign.data.records import DataError, Row, RowError, read_jsonl
from iteralign.data.seeds import seed_path
from iteralign.records import Intent, Prompt

log = logging.getLogger(__name__)

FormatName = Literal[
    "auto", "jsonl", "csv", "json", "nested", "harmfulqa", "catqa", "dangerousqa", "adversarialqa", "hh_rlhf",
    "advbench",
]


class PromptSourceConfig(BaseModel):
    """One source of prompts. Exactly one of ``path``, ``hub``, ``builtin`` or ``benchmark``."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(None, description="File to read (.jsonl, .jsonl.gz, .csv, .json or a benchmark file).")
    hub: str | None = Field(None, description="Hugging Face dataset name, e.g. 'Anthropic/hh-rlhf' (needs network).")
    hub_config: str | None = Field(None, description="Dataset configuration name passed to load_dataset.")
    hub_data_dir: str | None = Field(None, description="Data directory inside the dataset, e.g. 'red-team-attempts'.")
    split: str = Field("train", description="Dataset split to read from the hub.")
    builtin: Literal["seeds", "benign", "contrast"] | None = Field(
        None, description="Built-in set: 'seeds' (red-team prompts), 'benign' (helpfulness replay prompts) or "
        "'contrast' (benign prompts that sound risky, the look-alikes of two-sided alignment)."
    )
    benchmark: Literal[tuple(PROMPT_SETS)] | None = Field(  # type: ignore[valid-type]
        None, description=f"A public red-team set shipped with the package: {', '.join(PROMPT_SETS)} (SOURCES.md)."
    )
    format: FormatName = Field("auto", description="File format; 'auto' picks it from the file name.")
    field: str | None = Field(
        None, description="Field (JSON) or column (CSV) holding the prompt; default: the format's, else the first "
        "of prompt/text/question/goal/instruction/query/input (chosen/transcript are read as dialogues)."
    )
    dialogue: bool | None = Field(
        None, description="The field holds a 'Human: ... Assistant: ...' dialogue; take its first human turn."
    )
    category_field: str | None = Field(None, description="Field or column holding the prompt's category.")
    category: str | None = Field(None, description="Category for prompts whose record gives none.")
    intent: Intent | None = Field(
        None, description="What the prompts ask for: 'harmful' (a red-team request the model should refuse) or "
        "'benign' (one it should answer). A record's own 'intent' field wins. Unset: the built-in and named public "
        "sets declare theirs (see INTENTS); otherwise the judge's prompt-intent classifier decides per prompt.")
    name: str | None = Field(None, description="Label recorded as each prompt's source (default: file or dataset).")
    limit: int | None = Field(None, ge=1, description="Stop after this many prompts (reading stops there too).")
    on_error: Literal["raise", "skip"] = Field("raise", description="A malformed row: stop with an error, or skip it.")

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.startswith("builtin:"):
            return {"builtin": value.removeprefix("builtin:")}
        if value.startswith("benchmark:"):
            return {"benchmark": value.removeprefix("benchmark:")}
        if value.startswith("hub:"):
            return {"hub": value.removeprefix("hub:")}
        return {"path": value}

    @model_validator(mode="after")
    def _one_origin(self) -> "PromptSourceConfig":
        given = [k for k in ORIGINS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a prompt source needs exactly one of {', '.join(ORIGINS)} (got {given or 'none'})")
        return self

    @property
    def label(self) -> str:
        """What each prompt records as its source."""
        if self.name:
            return self.name
        if self.builtin:
            return f"builtin:{self.builtin}"
        if self.benchmark:
            return f"benchmark:{self.benchmark}"
        return f"hub:{self.hub}" if self.hub else Path(self.path or "").name


ORIGINS = ("path", "hub", "builtin", "benchmark")


@dataclass
class LoadReport:
    """What a load did: rows read, prompts loaded, rows skipped and the first few skip reasons."""

    source: str
    loaded: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)

    MAX_ERRORS = 20

    def skip(self, error: RowError) -> None:
        self.skipped += 1
        if len(self.errors) < self.MAX_ERRORS:
            self.errors.append(str(error))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iter_prompts(cfg: PromptSourceConfig | str | dict, report: LoadReport | None = None) -> Iterator[Prompt]:
    """Yield the prompts of one source, lazily. Pass a ``LoadReport`` to learn how many rows were skipped."""
    cfg = PromptSourceConfig.model_validate(cfg)
    report = report if report is not None else LoadReport(cfg.label)
    fmt, rows = _open_rows(cfg)
    fmt = dataclasses.replace(
        fmt,
        field=cfg.field or fmt.field,
        dialogue=fmt.dialogue if cfg.dialogue is None else cfg.dialogue,
        category_field=cfg.category_field or fmt.category_field,
    )
    prompts = (_to_prompt(row, cfg, fmt, report) for row in rows)
    for prompt in itertools.islice((p for p in prompts if p is not None), cfg.limit):
        report.loaded += 1
        yield prompt
    if report.skipped:
        log.warning("%s: skipped %d malformed rows (first: %s)", cfg.label, report.skipped, report.errors[0])


def load_prompts(cfg: PromptSourceConfig | str | dict, report: LoadReport | None = None) -> list[Prompt]:
    """All prompts of one source, as a list (see ``iter_prompts``)."""
    return list(iter_prompts(cfg, report))


def load_sources(cfgs: Iterable[PromptSourceConfig | str | dict]) -> tuple[list[Prompt], list[LoadReport]]:
    """Prompts of several sources, concatenated in order, with one report per source (for the run folder)."""
    prompts: list[Prompt] = []
    reports: list[LoadReport] = []
    for cfg in cfgs:
        cfg = PromptSourceConfig.model_validate(cfg)
        report = LoadReport(cfg.label)
        prompts.extend(iter_prompts(cfg, report))
        reports.append(report)
    return prompts, reports


def _to_prompt(row: Row | RowError, cfg: PromptSourceConfig, fmt: Format, report: LoadReport) -> Prompt | None:
    """Turn a row into a ``Prompt``, or handle its error by ``cfg.on_error`` (raise, or skip and count)."""
    if isinstance(row, Row):
        try:
            text = record_text(row.record, fmt.field, fmt.dialogue).strip()
            if not text:
                raise ValueError("empty prompt")
            category = row.category or record_category(row.record, fmt.category_field) or cfg.category
            return Prompt.make(text, category, cfg.label, _row_intent(row, cfg), **_row_meta(row, cfg))
        except ValueError as exc:
            row = RowError(row.where, str(exc))
    if cfg.on_error == "raise":
        raise DataError(f"{row} (set on_error: skip to skip malformed rows)")
    report.skip(row)
    return None


#: The intent of the sets the package ships, when the source entry does not say (HH-RLHF's prompts are mixed).
INTENTS: dict[str, Intent] = {"builtin:seeds": "harmful", "builtin:benign": "benign", "builtin:contrast": "benign",
                              "benchmark:advbench": "harmful", "benchmark:harmfulqa": "harmful",
                              "benchmark:dangerousqa": "harmful", "benchmark:catqa": "harmful",
                              "benchmark:adversarialqa": "harmful"}


def _row_intent(row: Row, cfg: PromptSourceConfig) -> Intent | None:
    """A record's own ``intent`` field, else the source entry's, else the shipped set's (``INTENTS``)."""
    own = row.record.get("intent") if isinstance(row.record, dict) else None
    if own is not None:
        if own not in ("harmful", "benign"):
            raise ValueError(f"field 'intent' is {own!r}, expected 'harmful' or 'benign'")
        return own
    origin = f"builtin:{cfg.builtin}" if cfg.builtin else f"benchmark:{cfg.benchmark}" if cfg.benchmark else None
    return cfg.intent or INTENTS.get(origin or "")


def _row_meta(row: Row, cfg: PromptSourceConfig) -> dict[str, Any]:
    """Extra fields kept with the prompt: the subtopic of nested files, the attack style or look-alike type of the
    built-in sets."""
    meta = dict(row.meta)
    if cfg.builtin and isinstance(row.record, dict):
        meta.update({k: row.record[k] for k in ("style", "type") if k in row.record})
    return meta


def _open_rows(cfg: PromptSourceConfig) -> tuple[Format, Iterator[Row | RowError]]:
    """The format and the row iterator of a source."""
    if cfg.builtin:
        return Format(read_jsonl, field="text", category_field="category"), read_jsonl(seed_path(cfg.builtin))
    if cfg.benchmark:
        return _benchmark_rows(cfg)
    if cfg.hub:
        name = "hh_rlhf" if cfg.format == "auto" and cfg.hub.lower().startswith("anthropic/hh-rlhf") else cfg.format
        fmt = FORMATS.get(name, Format(read_jsonl))
        if name == "hh_rlhf" and cfg.hub_data_dir == "red-team-attempts":
            fmt = Format(read_jsonl, field="transcript", dialogue=True)
        return fmt, _hub_rows(cfg)
    path = Path(os.path.expanduser(cfg.path or ""))
    try:
        name = detect_format(path) if cfg.format == "auto" else cfg.format
    except ValueError as exc:
        raise DataError(str(exc)) from None
    fmt = FORMATS[name]
    return fmt, fmt.reader(path)


def _benchmark_rows(cfg: PromptSourceConfig) -> tuple[Format, Iterator[Row | RowError]]:
    """A named public set: the first local copy (``$ITERALIGN_BENCHMARKS``, the packaged copy), else its hub data set."""
    entry = PROMPT_SETS[cfg.benchmark]
    found, tried = locate(entry.relpath)
    fmt = FORMATS[entry.format if cfg.format == "auto" else cfg.format]
    if found is not None:
        return fmt, fmt.reader(found.path)
    if entry.hub is None:
        raise DataError(f"benchmark:{cfg.benchmark}: no copy of {entry.relpath} found (tried {'; '.join(tried)})")
    hub_cfg = cfg.model_copy(update={"benchmark": None, "hub": entry.hub, "field": cfg.field or entry.hub_field})
    return Format(read_jsonl), _hub_rows(hub_cfg)


def _hub_rows(cfg: PromptSourceConfig) -> Iterator[Row | RowError]:
    """Rows of a Hugging Face dataset; a clear ``DataError`` when it cannot be fetched (offline, wrong name)."""
    try:
        import datasets
    except ImportError as exc:  # pragma: no cover - datasets is a core dependency
        raise DataError(f"hub:{cfg.hub}: the 'datasets' package is needed to read from the hub") from exc
    where = f"hub:{cfg.hub}[{cfg.split}]"
    try:
        dataset = datasets.load_dataset(cfg.hub, cfg.hub_config, data_dir=cfg.hub_data_dir, split=cfg.split)
    except Exception as exc:  # datasets raises many types: ConnectionError, FileNotFoundError, DatasetNotFoundError...
        offline = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("HF_DATASETS_OFFLINE")
        hint = ("The hub is disabled (HF_HUB_OFFLINE/HF_DATASETS_OFFLINE is set) and the data set is not cached"
                if offline else "Check the name and your network connection")
        raise DataError(f"{where}: cannot load data set: {type(exc).__name__}: {exc}. {hint}; or download it and "
                        f"point `path` at a local copy") from exc
    for index, record in enumerate(dataset, start=1):
        yield Row(f"{where} row {index}", record)
