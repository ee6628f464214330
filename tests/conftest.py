"""Shared test fixtures. Sections belong to the modules they serve; add yours additively."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

# --- OpenAI-compatible server (serve.py, models/openai_api.py) ---------------------------------------------------

SCRIPTED_RULES = """\
rules:
  - match: "(?i)bomb|poison"
    reply: "I can't help with that."
default: "Sure, here is a short answer about {prompt}"
"""


@dataclass
class Served:
    """A running server: its base URL (``http://127.0.0.1:<port>/v1``) and its ``ServerState`` (faults, stats)."""

    url: str
    state: object


@pytest.fixture
def scripted_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(SCRIPTED_RULES, encoding="utf-8")
    return path


@pytest.fixture
def scripted_server(scripted_rules: Path):
    """A fresh OpenAI-compatible server over a scripted model, on a free loopback port, stopped after the test."""
    from iteralign.models.scripted import ScriptedModel
    from iteralign.serve import create_app, running_server

    app = create_app(ScriptedModel.from_file(scripted_rules), name="scripted-test")
    with running_server(app) as url:
        yield Served(url, app.state.iteralign)


# --- real small model (models/hf.py, models/offline.py) ----------------------------------------------------------


@pytest.fixture(scope="session")
def smol_path() -> Path:
    """SmolLM2-135M-Instruct converted to safetensors, in the normal cache (``$ITERALIGN_CACHE`` or
    ``~/.cache/iteralign``) so that it is converted once (~20 s) and reused by every later test run."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from iteralign.models.offline import ensure_converted

    return ensure_converted("smollm2-135m-instruct")


# --- loop tests (tests/loop_helpers.py) ------------------------------------------------------------------------
import sys as _sys

_sys.path.insert(0, str(Path(__file__).parent))


# --- backends contract and vLLM glue (tests/test_backend_contract.py, tests/test_vllm_glue.py) --------------------


@pytest.fixture(scope="session")
def smol_hf(smol_path: Path):
    """The 135M model on the transformers backend in float32 on CPU (batched greedy == one-at-a-time there)."""
    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel

    return HFModel.load(str(smol_path), ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu"))


@pytest.fixture(scope="session")
def smol_adapter(smol_path: Path, tmp_path_factory) -> Path:
    """A random (not zero-initialised) rank-4 LoRA adapter for the 135M model: changes outputs, costs ~2 s."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(str(smol_path), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                        task_type="CAUSAL_LM")
    path = tmp_path_factory.mktemp("adapter") / "adapter"
    get_peft_model(base, config).save_pretrained(str(path))
    return path


# --- scheduling: longest first ----------------------------------------------------------------------------------


def pytest_collection_modifyitems(items: list) -> None:
    """Tests marked ``heavy(seconds)`` run first, longest first; the rest keep their order after them. Under
    pytest-xdist's work stealing (`make test`) a worker that runs dry takes the *last* pending tests of the other, so
    with the long ones first the suite ends on short tests on both workers instead of one worker finishing a
    minute-long test alone (BENCHMARKS.md, "In two workers"). The order is the same in every worker, as xdist needs."""

    def seconds(item) -> float:
        mark = item.get_closest_marker("heavy")
        if mark is None:
            return 0.0
        if len(mark.args) != 1 or not isinstance(mark.args[0], (int, float)):
            raise pytest.UsageError(f"{item.nodeid}: mark it heavy(SECONDS), its time under make test, not {mark}")
        return float(mark.args[0])

    items.sort(key=lambda item: -seconds(item))  # stable: equal hints keep the collection's order
