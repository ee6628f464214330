"""Red teaming: the target model answers each red-team prompt. Output: ``redteam.jsonl`` (``Answer`` records).

Batched through the model (and its call cache); ``RedTeamConfig`` says where prompts come from, how they are split
and how answers are generated. The same stage answers the replay prompts (``desc="replay"``).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from iteralign.answering import answer
from iteralign.data.sources import PromptSourceConfig
from iteralign.data.split import SplitConfig
from iteralign.models.base import ChatModel, ModelConfig
from iteralign.records import Answer, Prompt
from iteralign.stages.batching import process
from iteralign.stages.lookalike import LookalikeConfig
from iteralign.types import GenerationParams, Strict


class RedTeamConfig(Strict):
    sources: list[PromptSourceConfig] = Field(description="Where red-team prompts come from.")
    contrast: list[PromptSourceConfig] = Field(
        default_factory=lambda: [PromptSourceConfig(builtin="contrast")],
        description="Benign look-alikes of red-team prompts (they sound risky, a good answer helps): red-teamed "
        "beside the harmful prompts so that the loop also finds and fixes over-refusals; split like `sources`.")
    contrast_ratio: float = Field(
        1.0, ge=0, description="Benign prompts (from `contrast`, and those of `sources` that are benign) per harmful "
        "prompt in each iteration's pool (1.0 = as many; 0 = one-sided, the paper's loop).")
    lookalikes: LookalikeConfig = Field(
        default_factory=LookalikeConfig, description="Oracle-written benign twins of the harmful prompts the target "
        "answered, red-teamed in the next iteration (kept only when the oracle judges them benign).")
    intent_model: ModelConfig | None = Field(
        None, description="Classifies the prompts whose source declares no intent (harmful / benign), with the "
        "verdict judge's probe where the model has one (judging/intent.py); None: such prompts count as harmful, as "
        "red-team prompts are. Unsure ones stay undeclared.")
    split: SplitConfig = Field(default_factory=SplitConfig, description="Train / held-out split (held-out prompts "
                               "are only used to measure attack success).")
    pool_size: int | None = Field(None, ge=1, description="Training prompts red-teamed per iteration (None = all).")
    chunk_size: int | None = Field(
        None, ge=1, description="Paper mode: consecutive chunks of this many prompts, one round per failing chunk."
    )
    generation: GenerationParams = Field(default_factory=lambda: GenerationParams(max_new_tokens=128))


def redteam(prompts: list[Prompt], target: ChatModel, params: GenerationParams, out: Path, batch_size: int,
            desc: str = "red team") -> list[Answer]:
    """Answer ``prompts`` with ``target``; append the answers to ``out``."""
    return process(prompts, out, lambda batch: answer(target, batch, params), batch_size, desc, Answer)
