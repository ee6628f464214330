"""The cost ledger and the budget: what a run has spent (calls, tokens, cache hits, dollars), and when to stop.

Every model call of a run goes through ``Roles`` (and its call cache), which counts calls and tokens per model spec.
The ledger prices those counts with the ``budget.prices`` table (per 1,000 prompt and completion tokens; a key is a
model spec or a name, exact or with ``*`` wildcards: ``openai:gpt-4o*``, ``gpt-4o-mini``) and writes
``ledger.json`` in the run folder: per-run totals, per-model rows and per-stage rows (from the manifest). Local
backends cost nothing unless priced; an API model without a price has an unknown cost, which is an error when a
money budget is set (a budget that cannot see a model's cost is no budget).

The budget (``max_tokens``, ``max_cost_usd``, ``max_calls``; unset = unlimited) counts everything the run has spent,
over all the sessions of a resumed run: ``ledger.json`` carries the earlier sessions' spend. ``Ledger.check`` runs
before every batch of model calls and before every stage; once a limit is reached it raises ``BudgetExceeded``,
the stage in progress is marked ``interrupted`` in the manifest (finished batches are kept), and rerunning with a
raised budget resumes there. A batch already sent finishes, so a run overshoots a limit by at most one batch.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from pydantic import BaseModel, ConfigDict, Field

from iteralign.run import StageInterrupted, write_json

if TYPE_CHECKING:
    from iteralign.run import RunDir

COUNTS = ("calls", "cache_hits", "prompt_tokens", "completion_tokens")
BILLED_BACKENDS = ("openai",)


class Price(BaseModel):
    """US dollars per 1,000 tokens."""

    model_config = ConfigDict(extra="forbid")
    prompt_per_1k: float = Field(ge=0, description="Price of 1,000 prompt (input) tokens.")
    completion_per_1k: float = Field(ge=0, description="Price of 1,000 completion (output) tokens.")


class BudgetConfig(BaseModel):
    """Hard limits for a run (None = unlimited) and the price table the cost estimate uses."""

    model_config = ConfigDict(extra="forbid")
    max_tokens: int | None = Field(None, ge=1, description="Stop once prompt + completion tokens reach this.")
    max_cost_usd: float | None = Field(None, gt=0, description="Stop once the estimated cost reaches this (USD).")
    max_calls: int | None = Field(None, ge=1, description="Stop once this many model calls (cache misses) were made.")
    prices: dict[str, Price] = Field(default_factory=dict, description="Model spec or name pattern ('*' wildcards) "
                                     "-> price; first exact match of spec, then of name, then first pattern.")

    def price_for(self, spec: str) -> Price | None:
        """The price of a model spec; local backends are free unless priced, unpriced API models are None."""
        name = model_name(spec)
        for key in (spec, name):
            if key in self.prices:
                return self.prices[key]
        for pattern, price in self.prices.items():
            if fnmatchcase(spec, pattern) or fnmatchcase(name, pattern):
                return price
        return None if spec.split(":", 1)[0] in BILLED_BACKENDS else Price(prompt_per_1k=0, completion_per_1k=0)

    def check_priced(self, specs: list[str]) -> None:
        """With a money budget, every API model must have a price; raise ValueError naming those that do not."""
        missing = sorted({s for s in specs if self.price_for(s) is None})
        if self.max_cost_usd is not None and missing:
            raise ValueError(f"budget.max_cost_usd is set but these models have no price: {', '.join(missing)}; "
                             "add budget.prices entries such as {'" + missing[0] + "': {prompt_per_1k: 0.0025, "
                             "completion_per_1k: 0.01}}")


def model_name(spec: str) -> str:
    """``openai:gpt-4o@http://host/v1`` -> ``gpt-4o``: the part of a spec a price table usually names."""
    return spec.split(":", 1)[-1].split("@", 1)[0]


class BudgetExceeded(StageInterrupted):
    """The run reached a budget limit: it stops cleanly (state saved) and resumes when rerun with a higher one."""

    def __init__(self, message: str, ledger: "Ledger") -> None:
        super().__init__(message)
        self.ledger = ledger

    def recorded(self) -> None:
        self.ledger.write(stopped=str(self))  # now with the interrupted stage's row


def add_counts(a: dict, b: dict) -> dict:
    return {k: a.get(k, 0) + b.get(k, 0) for k in COUNTS}


def priced(models: dict[str, dict], budget: BudgetConfig) -> dict[str, Any]:
    """Totals, tokens and cost of per-model counts, with the per-model rows; unknown costs are listed."""
    rows, total, unpriced = {}, dict.fromkeys(COUNTS, 0), []
    cost = 0.0
    for spec, counts in sorted(models.items()):
        price = budget.price_for(spec)
        row = {k: counts.get(k, 0) for k in COUNTS}
        row["cost_usd"] = None if price is None else round(
            row["prompt_tokens"] / 1000 * price.prompt_per_1k + row["completion_tokens"] / 1000 * price.completion_per_1k, 6)
        if price is None and row["calls"]:
            unpriced.append(spec)
        cost += row["cost_usd"] or 0.0
        rows[spec] = row
        total = add_counts(total, row)
    return {**total, "tokens": total["prompt_tokens"] + total["completion_tokens"], "cost_usd": round(cost, 6),
            "unpriced": unpriced, "models": rows}


def exceeded(budget: BudgetConfig, spent: dict) -> list[str]:
    """The limits ``spent`` has reached, as readable reasons (empty = within budget)."""
    reasons = []
    for limit, value, what in ((budget.max_calls, spent["calls"], "calls"), (budget.max_tokens, spent["tokens"], "tokens"),
                               (budget.max_cost_usd, spent["cost_usd"], "USD")):
        if limit is not None and value >= limit:
            reasons.append(f"{value:g} {what} spent, limit {limit:g}")
    return reasons


class Ledger:
    """A run's spend: earlier sessions (from ``ledger.json``) plus this session's ``usage()`` (``Roles.usage``)."""

    def __init__(self, budget: BudgetConfig, run: "RunDir", usage: Callable[[], dict]) -> None:
        self.budget = budget
        self.run = run
        self.usage = usage
        self.path = Path(run.path) / "ledger.json"
        previous = json.loads(self.path.read_text()) if self.path.exists() else {}
        self.earlier: dict[str, dict] = previous.get("run", {}).get("models", {})
        self.session = previous.get("sessions", 0) + 1

    def spent(self) -> dict[str, Any]:
        """Everything the run has spent so far, priced."""
        now = self.usage().get("models", {})
        models = {spec: add_counts(self.earlier.get(spec, {}), now.get(spec, {})) for spec in {*self.earlier, *now}}
        return priced(models, self.budget)

    def write(self, stopped: str | None = None) -> dict[str, Any]:
        """Write ``ledger.json``: budget, per-run totals and models, per-stage rows from the manifest."""
        stages = {}
        for key, entry in self.run.manifest.data.get("stages", {}).items():
            usage = entry.get("usage_total")  # set by RunDir.stage (the "final" entry is a session total)
            if usage:
                row = priced(usage.get("models", {}), self.budget)
                stages[key] = {"status": entry.get("status"), **{k: row[k] for k in (*COUNTS, "tokens", "cost_usd")}}
        data = {"budget": self.budget.model_dump(mode="json", exclude={"prices"}), "sessions": self.session,
                "stopped": stopped, "run": self.spent(), "stages": stages}
        write_json(self.path, data)
        return data

    def check(self) -> None:
        """Record the spend; raise ``BudgetExceeded`` when a limit is reached (called before each batch and stage)."""
        spent = self.spent()
        reasons = exceeded(self.budget, spent)
        if reasons:
            message = "budget reached: " + "; ".join(reasons)
            self.write(stopped=message)
            raise BudgetExceeded(message, self)
        self.write()
