"""Cost ledger and budget: prices, per-model usage, costs, and a budget that stops the loop cleanly and resumes."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from iteralign.cli import app
from iteralign.config import ConfigError, load_config
from iteralign.ledger import BudgetConfig, BudgetExceeded, exceeded, priced
from iteralign.loop import run_loop
from iteralign.roles import Roles
from iteralign.types import GenerationParams, user
from loop_helpers import calls, fingerprint, scripted_config

PRICES = {"openai:gpt-4o-mini@http://127.0.0.1:9/v1": {"prompt_per_1k": 0.5, "completion_per_1k": 0.5},
          "gpt-4o-mini": {"prompt_per_1k": 0.15, "completion_per_1k": 0.6},
          "openai:gpt-4o*": {"prompt_per_1k": 2.5, "completion_per_1k": 10.0},
          "scripted:*": {"prompt_per_1k": 1.0, "completion_per_1k": 2.0}}


def test_price_lookup_order():
    budget = BudgetConfig(prices=PRICES)
    assert budget.price_for("openai:gpt-4o-mini@http://127.0.0.1:9/v1").prompt_per_1k == 0.5  # exact spec
    assert budget.price_for("openai:gpt-4o-mini@http://other/v1").prompt_per_1k == 0.15  # exact name
    assert budget.price_for("openai:gpt-4o-2024-08-06").completion_per_1k == 10.0  # pattern
    assert budget.price_for("openai:o3") is None  # an API model without a price: unknown
    assert budget.price_for("offline:smollm2-135m-instruct").prompt_per_1k == 0  # local: free unless priced


def test_costs_and_limits():
    budget = BudgetConfig(prices=PRICES, max_cost_usd=0.01, max_tokens=5000)
    usage = {"openai:gpt-4o": {"calls": 3, "cache_hits": 2, "prompt_tokens": 1500, "completion_tokens": 500},
             "offline:smollm2-135m-instruct": {"calls": 4, "prompt_tokens": 100, "completion_tokens": 40},
             "openai:o3": {"calls": 1, "prompt_tokens": 10, "completion_tokens": 10}}
    out = priced(usage, budget)
    assert out["models"]["openai:gpt-4o"]["cost_usd"] == pytest.approx(1.5 * 2.5 + 0.5 * 10.0)
    assert out["models"]["offline:smollm2-135m-instruct"]["cost_usd"] == 0.0
    assert out["models"]["openai:o3"]["cost_usd"] is None and out["unpriced"] == ["openai:o3"]
    assert (out["calls"], out["cache_hits"], out["tokens"]) == (8, 2, 2160)
    assert out["cost_usd"] == pytest.approx(8.75)
    assert exceeded(budget, out) == ["8.75 USD spent, limit 0.01"]
    assert exceeded(BudgetConfig(max_tokens=2160, max_calls=9), out) == ["2160 tokens spent, limit 2160"]


def test_money_budget_needs_a_price_for_every_api_model(tmp_path):
    path = scripted_config(tmp_path, extra={"models.oracle": "openai:gpt-4o@http://127.0.0.1:9/v1",
                                            "budget.max_cost_usd": 1.0})
    with pytest.raises(ConfigError, match=r"no price: openai:gpt-4o@http://127.0.0.1:9/v1"):
        load_config(path)
    assert load_config(path, ["budget.prices={'gpt-4o': {prompt_per_1k: 1, completion_per_1k: 2}}"])


def test_roles_count_usage_per_model(tmp_path):
    cfg = load_config(scripted_config(tmp_path))
    roles = Roles(cfg.models, cfg.run)
    params = GenerationParams(max_new_tokens=8)
    roles.get(cfg.models.target).generate([user("how to build a gun"), user("hello")], params)
    roles.get(cfg.models.oracle).generate([user("Evaluate the following message: hi")], params)
    roles.get(cfg.models.target).generate([user("hello")], params)  # a cache hit
    usage = roles.usage()
    target, oracle = usage["models"][cfg.models.target.spec], usage["models"][cfg.models.oracle.spec]
    assert (target["calls"], target["cache_hits"], oracle["calls"]) == (2, 1, 1)
    for key in ("calls", "cache_hits", "prompt_tokens", "completion_tokens"):
        assert usage[key] == target[key] + oracle[key]
    roles.unload_all()  # before training: every model's memory freed, its counts kept, reloaded on next use
    assert not roles.get(cfg.models.target).loaded and not roles.get(cfg.models.oracle).loaded
    assert roles.usage() == usage
    roles.get(cfg.models.target).generate([user("a new prompt")], params)
    assert roles.get(cfg.models.target).loaded and roles.usage()["models"][cfg.models.target.spec]["calls"] == 3
    usage = roles.usage()
    roles.release(cfg.models.target)  # a released model's counts stay
    assert roles.usage() == usage


def _stages(run) -> dict:
    return json.loads((run / "manifest.json").read_text())["stages"]


def test_budget_stops_the_loop_cleanly_and_resumes(tmp_path):
    for sub in ("ref", "budget"):
        (tmp_path / sub).mkdir()
    reference = run_loop(load_config(scripted_config(tmp_path / "ref")))
    ref_calls, ref_ledger = calls(tmp_path / "ref"), json.loads((reference / "ledger.json").read_text())
    assert ref_ledger["run"]["calls"] == ref_calls and ref_ledger["stopped"] is None
    assert sum(s["calls"] for s in ref_ledger["stages"].values()) == ref_calls

    tmp = tmp_path / "budget"
    res = CliRunner().invoke(app, ["run", str(scripted_config(tmp)), "--set", "budget.max_calls=30"])
    assert res.exit_code == 3 and "budget reached" in res.output
    run = tmp / "runs" / "t"
    first = calls(tmp)
    assert 30 <= first < ref_calls  # stopped at the limit, overshooting by at most one batch (4)
    interrupted = {k: v for k, v in _stages(run).items() if v["status"] == "interrupted"}
    assert len(interrupted) == 1
    (key, entry), = interrupted.items()
    assert "budget reached: " in entry["reason"] and "calls spent, limit 30" in entry["reason"]
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["run"]["calls"] == first and ledger["stopped"].startswith("budget reached")
    assert ledger["stages"][key]["status"] == "interrupted"

    with pytest.raises(BudgetExceeded):  # the same budget again: stops before calling any model
        run_loop(load_config(scripted_config(tmp), ["budget.max_calls=30"]))
    assert calls(tmp) == first

    run_loop(load_config(scripted_config(tmp), ["budget.max_calls=1000"]))  # raised: resumes and finishes
    assert calls(tmp) == ref_calls  # no repeated work
    assert fingerprint(run) == fingerprint(reference)
    ledger = json.loads((run / "ledger.json").read_text())
    assert ledger["sessions"] == 3 and ledger["stopped"] is None and ledger["run"]["calls"] == ref_calls
    assert ledger["stages"][key]["status"] == "done" and "reason" not in _stages(run)[key]
    assert {k: s["calls"] for k, s in ledger["stages"].items()} == {k: s["calls"] for k, s in ref_ledger["stages"].items()}


def test_money_budget_stops_with_the_estimated_cost(tmp_path):
    prices = {"scripted:*": {"prompt_per_1k": 1.0, "completion_per_1k": 2.0}}
    path = scripted_config(tmp_path, extra={"budget.max_cost_usd": 0.2, "budget.prices": prices,
                                            "judge.judges": [{"kind": "refusal"}]})  # batches of similar cost
    with pytest.raises(BudgetExceeded, match="USD spent, limit 0.2"):
        run_loop(load_config(path))
    ledger = json.loads((tmp_path / "runs" / "t" / "ledger.json").read_text())
    run = ledger["run"]
    assert run["cost_usd"] == pytest.approx(run["prompt_tokens"] / 1000 + 2 * run["completion_tokens"] / 1000)
    assert 0.2 <= run["cost_usd"] < 0.4
    assert yaml.safe_load((tmp_path / "runs" / "t" / "config.yaml").read_text())["budget"]["max_cost_usd"] == 0.2
