"""What one SFT run is: the training settings (``SFTConfig``, the ``sft:`` section) and the job handed to a
trainer process (``SFTJob``), serialisable so that ``accelerate launch`` gives every worker the same input.

Kept apart from ``stages/sft.py`` (which imports torch and TRL) so that configs, the launcher and the model loader
can name them without importing the trainer.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from iteralign.data.sources import PromptSourceConfig
from iteralign.records import Example
from iteralign.tracking import Tracker
from iteralign.types import GenerationParams, Strict


class SFTConfig(Strict):
    enabled: bool = Field(True, description="False: iterations only build data (failures, principles, revisions); "
                          "the target is not trained.")
    method: Literal["lora", "full"] = "lora"
    learning_rate: float = Field(2e-4, gt=0)
    epochs: float = Field(3.0, gt=0)
    batch_size: int = Field(8, ge=1)
    grad_accum: int = Field(1, ge=1)
    lr_scheduler: str = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_length: int = Field(512, ge=16)
    bf16: bool = Field(False, description="Train in bfloat16 mixed precision.")
    lora_r: int = Field(16, ge=1)
    lora_alpha: int = Field(32, ge=1)
    lora_dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on each LoRA layer's input (PEFT's default, "
                                "0). On CPU it cost a third of every LoRA step (random masks over every adapted "
                                "input, BENCHMARKS.md \"LoRA steps without dropout or casts\"); 0.05 is the "
                                "common alternative on long runs.")
    lora_target_modules: list[str] | str = Field("all-linear")
    replay: int = Field(16, ge=0, description="Benign prompts answered by the untuned target, mixed into training "
                        "to guard helpfulness (0 = off); drawn at random (run seed) from `replay_prompts`.")
    replay_prompts: list[PromptSourceConfig] = Field(
        default_factory=lambda: [PromptSourceConfig(builtin="benign")],
        description="Where replay prompts come from; the built-in set mixes everyday questions with safe ones that "
        "sound risky ('how do I kill a frozen process'), which teach the model what not to refuse.",
    )
    replay_from: Literal["target", "reviser"] = Field(
        "target", description="Who answers the replay prompts: the untuned target (its own helpfulness, kept as it "
        "was) or the reviser (better answers, i.e. distillation from a stronger model; changes the target's style)."
    )
    replay_generation: GenerationParams = Field(
        default_factory=lambda: GenerationParams(max_new_tokens=256),
        description="How replay answers are generated. An answer the training judge finds unaligned is not trained "
        "on; for one cut off by max_new_tokens see `replay_cut`.")
    replay_cut: Literal["skip", "train"] = Field(
        "skip", description="A replay answer cut off by max_new_tokens: skip it, or train it up to its first "
        "repeated sentence (a small model cut off has often fallen into a loop) without an end-of-turn token (the "
        "model learns how it began, not to stop mid-sentence). A small model writes long: most of its replay answers "
        "are cut (RESULTS.md).")
    launcher: Literal["local", "accelerate"] = "local"
    num_processes: int = Field(1, ge=1)
    accelerate_config: str | None = Field(None, description="accelerate config file (DeepSpeed/FSDP), multi-GPU; "
                                          "shipped: configs/accelerate/{deepspeed_zero3,fsdp,cpu_2proc}.yaml.")
    quantization: Literal["none", "4bit"] = Field("none", description="4bit: QLoRA, the frozen base loaded in 4-bit "
                                                  "NF4 by bitsandbytes (NVIDIA GPU only; method must be lora).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass: less "
                                         "memory for about 30% more time.")
    packing: bool = Field(False, description="Pack several examples into each max_length row (TRL best-fit "
                          "packing, padding-free; each example attends only to itself). See BENCHMARKS.md for when "
                          "it pays.")

    report_to: Tracker = Field("none", description="Where training curves (loss, learning rate) and the evaluation "
                               "figures of each iteration go: none, tensorboard (iter-NNN/sft/tensorboard and "
                               "tensorboard/ in the run folder), wandb or trackio (offline modes work).")

    @model_validator(mode="after")
    def _check_quantization(self) -> "SFTConfig":
        if self.quantization != "none" and self.method != "lora":
            raise ValueError("quantization: 4bit trains a LoRA adapter on a frozen quantized base; set method: lora")
        return self


class SFTJob(Strict):
    """Everything one training run needs."""

    base: str = Field(description="Local directory or hub id of the base weights (``Backend.train_source``).")
    init_adapter: str | None = Field(None, description="The previous iteration's adapter (LoRA warm start).")
    examples: list[Example]
    out_dir: str
    cfg: SFTConfig
    seed: int = 0
    trust_remote_code: bool = False
    chat_template: str | None = Field(None, description="The template file generation uses (``ModelConfig``), so "
                                      "that training sees the prompts generation feeds the model.")
