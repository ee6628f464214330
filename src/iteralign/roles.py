"""Model roles for a run: target, oracle, judges, reviser. Loads each model once, shares one call cache, counts usage.

Roles that name the same model config share one loaded instance (the default oracle is also the default judge).
Every model is wrapped in ``CachedChatModel`` so the run's ledger (calls, tokens, cache hits) comes from one place.
"""

from __future__ import annotations

import gc
import json
import os
from pathlib import Path
from typing import Callable

from iteralign.config import JudgeConfig, RunConfig
from iteralign.judges import Judge, JudgePanel, PaperJudge, PolicyJudge, RefusalJudge
from iteralign.models.base import ModelConfig
from iteralign.models.cache import CachedChatModel, CallCache, cached
from iteralign.models.lazy import LazyModel


def default_cache_dir() -> Path:
    return Path(os.environ.get("ITERALIGN_CACHE", Path.home() / ".cache" / "iteralign"))


class Roles:
    """Hands out models, loaded on first use (``LazyModel``: at the first call that reaches the model, not at
    ``get``); ``usage()`` sums the counters of every model handed out so far."""

    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        path = cfg.run.cache_path or default_cache_dir() / "calls.sqlite"
        self.cache = CallCache(path) if cfg.run.cache else None
        self._loaded: dict[str, CachedChatModel] = {}
        self._retired: list[tuple[str, dict]] = []  # (spec, usage) of released models
        self.guard: Callable[[], None] | None = None  # the budget check (ledger.Ledger.check), see check_budget

    def get(self, model_cfg: ModelConfig) -> CachedChatModel:
        key = model_cfg.model_dump_json()
        if key not in self._loaded:
            # loaded on first use: a resumed run whose stages are done never reads the weights
            model = cached(LazyModel(model_cfg), self.cache if model_cfg.cache else None)
            model.guard = self.check_budget
            self._loaded[key] = model
        return self._loaded[key]

    def check_budget(self) -> None:
        """Raise ``ledger.BudgetExceeded`` once the run's budget is spent: run before every batch of model calls
        that misses the cache, and before every stage. A no-op when no guard is installed."""
        if self.guard is not None:
            self.guard()

    def release(self, model_cfg: ModelConfig) -> None:
        """Drop a model (e.g. the previous iteration's target) and free its memory; its counts stay in the ledger."""
        model = self._loaded.pop(model_cfg.model_dump_json(), None)
        if model is not None:
            self._retired.append((model_cfg.spec, vars(model.usage).copy()))
            model.close()
            gc.collect()

    @property
    def oracle(self) -> CachedChatModel:
        return self.get(self.cfg.models.oracle)

    def panel(self, judge_cfg: JudgeConfig, principles: list[str] | None = None) -> JudgePanel:
        """The judge panel; policy judges see ``principles`` (the current constitution)."""
        judges: list[Judge] = []
        for spec in judge_cfg.judges:
            if spec.kind == "refusal":
                judges.append(RefusalJudge())
                continue
            model = self.get(spec.model or self.cfg.models.oracle)
            kw = {"retries": judge_cfg.retries, "max_new_tokens": judge_cfg.max_new_tokens}
            judges.append(PaperJudge(model, **kw) if spec.kind == "paper" else PolicyJudge(model, principles, **kw))
        return JudgePanel(judges, judge_cfg.combine)

    def usage(self) -> dict:
        """Totals over all models: calls (to a model), cache hits, prompt and completion tokens; and the same counts
        per model spec under ``models`` (prices apply per model; see ``ledger``)."""
        rows = self._retired + [(json.loads(key)["spec"], vars(m.usage)) for key, m in self._loaded.items()]
        keys = ("calls", "cache_hits", "prompt_tokens", "completion_tokens")
        models: dict[str, dict] = {}
        for spec, row in rows:
            acc = models.setdefault(spec, dict.fromkeys(keys, 0))
            for k in keys:
                acc[k] += row.get(k, 0)
        return {**{k: sum(m[k] for m in models.values()) for k in keys}, "models": models}
