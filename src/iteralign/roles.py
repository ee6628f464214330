"""Model roles for a run: target, oracle, judges, reviser. One ``ModelHandle`` per model config, one call cache,
the usage of every model summed for the ledger.

Roles that name the same model config share one handle (the default oracle is also the default judge). Handles load
their model on first use, so a resumed run whose stages are done loads nothing.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Callable

from pydantic import Field

from iteralign.judges import JudgeConfig, JudgeContext, JudgePanel, build_panel
from iteralign.models.base import ModelConfig
from iteralign.models.cache import CallCache
from iteralign.models.handle import ModelHandle
from iteralign.run import RunSettings
from iteralign.types import Strict


class ModelsConfig(Strict):
    target: ModelConfig = Field(description="The model being aligned.")
    oracle: ModelConfig = Field(description="The stronger model that proposes principles (and judges by default).")
    reviser: ModelConfig | None = Field(None, description="Who rewrites failed answers; default the target (paper).")


def default_cache_dir() -> Path:
    return Path(os.environ.get("ITERALIGN_CACHE", Path.home() / ".cache" / "iteralign"))


class Roles:
    """Hands out model handles; ``usage()`` sums the counters of every model handed out so far."""

    def __init__(self, models: ModelsConfig | None, settings: RunSettings | None = None) -> None:
        self.models = models
        settings = settings or RunSettings()
        path = settings.cache_path or default_cache_dir() / "calls.sqlite"
        self.cache = CallCache(path) if settings.cache else None
        self._handles: dict[str, ModelHandle] = {}
        self._retired: list[tuple[str, dict]] = []  # (spec, usage) of released models
        self.guard: Callable[[], None] | None = None  # the budget check (ledger.Ledger.check), see check_budget

    def get(self, model_cfg: ModelConfig) -> ModelHandle:
        key = model_cfg.model_dump_json()
        if key not in self._handles:
            self._handles[key] = ModelHandle(model_cfg, self.cache, self.check_budget)
        return self._handles[key]

    def check_budget(self) -> None:
        """Raise ``ledger.BudgetExceeded`` once the run's budget is spent: run before every batch of model calls
        that misses the cache, and before every stage. A no-op when no guard is installed."""
        if self.guard is not None:
            self.guard()

    def release(self, model_cfg: ModelConfig) -> None:
        """Drop a model (e.g. the previous iteration's target) and free its memory; its counts stay in the ledger."""
        handle = self._handles.pop(model_cfg.model_dump_json(), None)
        if handle is not None:
            self._retired.append((model_cfg.spec, vars(handle.usage).copy()))
            handle.close()
            gc.collect()

    def unload_all(self) -> None:
        """Free the memory of every loaded model (before training: the oracle and reviser are the largest); the
        handles and their counts stay, and each model reloads on its next use (seconds, from the converted cache)."""
        for handle in self._handles.values():
            handle.close()

    @property
    def target(self) -> ModelHandle:
        return self.get(self.models.target)

    @property
    def oracle(self) -> ModelHandle:
        return self.get(self.models.oracle)

    @property
    def reviser(self) -> ModelHandle:
        return self.get(self.models.reviser or self.models.target)

    def panel(self, judge_cfg: JudgeConfig, principles: list[str] | None = None) -> JudgePanel:
        """The judge panel; judges without a model of their own use the oracle; policy judges see ``principles``."""

        def model(cfg: ModelConfig | None) -> ModelHandle:
            if cfg is None and self.models is None:
                raise ValueError("this judge needs a model: give it `model:` or set models.oracle")
            return self.get(cfg or self.models.oracle)

        return build_panel(judge_cfg, JudgeContext(model, judge_cfg, list(principles or [])))

    def usage(self) -> dict:
        """Totals over all models: calls (to a model), cache hits, prompt and completion tokens; and the same counts
        per model spec under ``models`` (prices apply per model; see ``ledger``)."""
        rows = self._retired + [(h.cfg.spec, vars(h.usage)) for h in self._handles.values()]
        keys = ("calls", "cache_hits", "prompt_tokens", "completion_tokens")
        models: dict[str, dict] = {}
        for spec, row in rows:
            acc = models.setdefault(spec, dict.fromkeys(keys, 0))
            for k in keys:
                acc[k] += row.get(k, 0)
        return {**{k: sum(m[k] for m in models.values()) for k in keys}, "models": models}
