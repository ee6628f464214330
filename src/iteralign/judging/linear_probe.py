"""Linear probes on a judge model's hidden states, shipped as JSON files in ``judging/probes/``.

A probe is a logistic regression ``sigmoid(w . (h - mean) / scale + bias)`` on features ``h`` of a conversation's
hidden states after one decoder layer or several side by side: the state at the last token, or states averaged or
maximised over the conversation's tokens after its shared opening (``pool``, ``skip``; ``models.hf_labels``). It
belongs to one model's weights: it is used only when the judge model's spec matches the probe's and no adapter sits on
top. Three kinds ship:

- intent probes (``probes/*.json``, ``judging.intent``): the request alone; P(harmful);
- verdict probes (``probes/verdict/*.json``, ``judging.verdict_probe``): the request and the reply under the
  ``judge_response`` question; P(unaligned);
- honesty probes (``probes/honesty/*.json``, ``judging.verdict_probe``): the same states as the verdict probe's;
  P(dishonest) of an answer to a benign request.

The training scripts (``scripts/train_intent_probe.py``, ``scripts/train_verdict_probe.py``) record their data, layers
and cross-validated figures in the file's ``provenance``.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

PROBES = Path(__file__).parent / "probes"


class LinearProbe(BaseModel):
    """A linear probe: ``sigmoid(w . (h - mean) / scale + bias)`` on the hidden states after ``layer`` (a list: those
    layers' states concatenated in that order), read each way in ``pool`` in turn: ``last`` (the last token), ``mean``
    or ``max`` (over the tokens from position ``skip`` on: the conversation after the opening all of the probe's
    conversations share)."""

    model_config = ConfigDict(extra="forbid")
    model: str
    layer: int | list[int]
    pool: list[Literal["last", "mean", "max"]] = ["last"]
    skip: int = 0
    mean: list[float]
    scale: list[float]
    weights: list[float]
    bias: float
    provenance: dict[str, Any] = {}

    def reads(self) -> tuple:
        """What the probe reads (layers, pool, skip): probes that read the same can share one forward pass."""
        return self.layer, tuple(self.pool), self.skip

    def features(self, model: Any, conversations: list[list[dict]],
                 opening: list[dict] | None = None) -> list[list[float]]:
        """Per conversation, the features this probe reads from ``model`` (one forward pass each). A last-token probe
        asks only for layers, which every backend with hidden states answers. ``opening``: the conversations'
        question with its blanks empty, whose shared part the backend runs once (``hf_labels.hidden_features``);
        each conversation then runs alone, so its features do not depend on the others."""
        pooling = () if self.pool == ["last"] and not self.skip else (self.pool, self.skip)
        if opening is None:
            return model.hidden_states(conversations, self.layer, *pooling)
        return model.hidden_states(conversations, self.layer, *pooling, opening=opening)

    def p(self, hidden: list[float]) -> float:
        """The probe's probability for one hidden state."""
        if len(hidden) != len(self.weights):
            raise ValueError(f"probe for {self.model} expects {len(self.weights)} features, got {len(hidden)}")
        z = self.bias + sum(w * (h - m) / s for w, h, m, s in zip(self.weights, hidden, self.mean, self.scale))
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def find_probe(model_name: str, folder: str | Path = PROBES) -> LinearProbe | None:
    """The probe in ``folder`` trained on ``model_name`` (a spec such as ``offline:qwen2.5-coder-0.5b-instruct``), if
    any; read once per folder and model."""
    return _read_probe(model_name, str(folder))


@lru_cache(maxsize=None)
def _read_probe(model_name: str, folder: str) -> LinearProbe | None:
    for path in sorted(Path(folder).glob("*.json")):
        probe = LinearProbe.model_validate(json.loads(path.read_text(encoding="utf-8")))
        if probe.model == model_name:
            return probe
    return None


def probe_for(model: Any, folder: Path = PROBES) -> LinearProbe | None:
    """The probe in ``folder`` to use with ``model``: one trained on its weights (same spec, no adapter on top), and
    only if the backend gives hidden states."""
    probe = find_probe(getattr(model, "name", ""), folder)
    if probe is None or getattr(getattr(model, "cfg", None), "adapter", None):
        return None
    try:
        has_hidden = callable(getattr(model, "hidden_states", None))
    except Exception:  # noqa: BLE001 - a lazy model that fails to load says so at its first real call
        return None
    return probe if has_hidden else None
