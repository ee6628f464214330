"""The ``train:`` section (which objective each iteration trains with) and the job of one DPO run.

``objective``: ``sft`` trains on the kept revisions (and replay answers) as targets; ``dpo`` trains on preference
pairs, each kept revision chosen over the failed answer it replaces, for both failure kinds (a refusal over a harmful
compliance, an answer over an over-refusal); ``sft+dpo`` does SFT, then DPO from the SFT model, in one iteration.
DPO trains a LoRA adapter (the ``sft:`` section's LoRA settings, batch size, length and precision) whose reference is
the same weights before this round (TRL: the adapter disabled, or a frozen copy of a warm-started adapter): no second
model copy. Kept apart from ``stages/dpo.py`` (which imports torch and TRL), like ``sft_job``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from iteralign.records import PreferencePair
from iteralign.stages.sft_job import SFTConfig
from iteralign.types import Strict


class DPOSettings(Strict):
    beta: float = Field(0.1, gt=0, description="DPO's beta: how far the policy may move from the reference.")
    learning_rate: float = Field(5e-5, gt=0)
    epochs: float = Field(2.0, gt=0)
    loss_type: str = Field("sigmoid", description="TRL's DPO loss (sigmoid is the paper's; also ipo, hinge, ...).")
    sft_weight: float = Field(0.0, ge=0, description="Adds the chosen answers' negative log-likelihood (per token, "
                              "TRL's `sft` loss) with this weight: RPO (Pang et al. 2024). DPO alone may lower the "
                              "chosen answer's likelihood as long as the rejected one falls faster; this keeps the "
                              "revisions and the anchors' answers likely. 0: DPO alone.")
    anchors: bool = Field(True, description="Also prefer, for each benign red-team prompt the target answered well, "
                          "its answer over a refusal (the iteration's own, from its refusing revisions): the other "
                          "side of the refusals it learns, so that it does not learn to refuse the look-alikes "
                          "(training_data.anchor_pairs).")
    anchor_refusals: int = Field(1, ge=1, le=3, description="Each anchor's good answer is preferred over this many "
                                 "different refusals (of the iteration's three most frequent openings): more pairs "
                                 "on where not to refuse, against the same refusing pairs.")
    replay_anchors: bool = Field(False, description="With anchors, the replay answers (the untuned target's good "
                                 "answers to built-in benign prompts, half of them risky-sounding) make anchors too.")
    on_policy: bool = Field(False, description="After SFT, the tuned target answers again the prompts that have a good "
                            "answer (every pair's chosen one, and the replay answers judged aligned), judged by the "
                            "training filter; where it fails (complies with a harmful request, refuses a benign one), "
                            "the good answer is also preferred over its answer: rejected answers from the model DPO "
                            "trains, not only from the untuned one (training_data.on_policy_pairs; "
                            "iter-NNN/probe.*.jsonl).")


def loss_terms(dpo: DPOSettings) -> dict:
    """``DPOConfig``'s ``loss_type`` and ``loss_weights``: the DPO loss, and TRL's ``sft`` loss by ``sft_weight``."""
    if not dpo.sft_weight:
        return {"loss_type": [dpo.loss_type]}
    return {"loss_type": [dpo.loss_type, "sft"], "loss_weights": [1.0, dpo.sft_weight]}


class TrainConfig(Strict):
    objective: Literal["sft", "dpo", "sft+dpo"] = Field(
        "sft", description="sft: targets; dpo: preference pairs (revision over failed answer); sft+dpo: both, "
        "in order.")
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    lr_decay: float = Field(1.0, gt=0, le=1, description="Iteration i (from 0) trains at the configured SFT and DPO "
                            "learning rates times lr_decay**i. Later iterations warm-start from an adapter that has "
                            "already moved, and their failures are the harder, mostly harmful ones: at the full rate a "
                            "second iteration of the 135M overshoots into refusing safe prompts (RESULTS.md).")

    carry_over: bool = Field(False, description="Iteration i also trains on the kept revisions (and their preference "
                             "pairs) of iterations 0..i-1, a prompt's newest revision winning: what a later iteration "
                             "does not fail on any more is still in its data. Without it a later round sees mostly one "
                             "failure kind and can swing the target to the other; measured once on the 0.5B, where it "
                             "swung the other way instead (RESULTS.md, \"LoRA without dropout\").")

    def rates(self, sft: SFTConfig, iteration: int) -> tuple[SFTConfig, DPOSettings]:
        """The SFT and DPO settings iteration ``iteration`` trains with (learning rates decayed by ``lr_decay``)."""
        scale = self.lr_decay**iteration
        return (sft.model_copy(update={"learning_rate": sft.learning_rate * scale}),
                self.dpo.model_copy(update={"learning_rate": self.dpo.learning_rate * scale}))


class DPOJob(Strict):
    """Everything one DPO run needs (the same fields as ``SFTJob`` where they mean the same)."""

    base: str
    init_adapter: str | None = None
    pairs: list[PreferencePair]
    out_dir: str
    cfg: SFTConfig
    dpo: DPOSettings = Field(default_factory=DPOSettings)
    seed: int = 0
    trust_remote_code: bool = False
    chat_template: str | None = None
