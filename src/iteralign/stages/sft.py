"""Supervised fine-tuning of the target on (prompt, revised answer), loss on the answer only. Output: ``sft/``.

Runs TRL's ``SFTTrainer`` on examples tokenized by ``stages.tokens`` (the prompt exactly as generation encodes it,
the loss on the answer and its end-of-turn token only), with a peft LoRA adapter (default) or full fine-tuning.
Each iteration warm-starts from the previous one: LoRA continues training the previous adapter, full SFT starts
from the previous saved model. The loss is computed by ``sft_loss`` (answer tokens only, in chunks, no full logits
tensor). Checkpoints are saved per epoch and training resumes from the last one after a crash; the final adapter
(or model) is written to a temp folder and renamed, so ``sft/adapter`` exists only when complete.

Also runnable as ``python -m iteralign.stages.sft JOB.json`` (what ``accelerate launch`` runs for multi-GPU).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

from iteralign.records import Example
from iteralign.stages.denormals import flush_denormals
from iteralign.stages.sft_job import SFTJob
from iteralign.stages.tokens import encode_example, end_of_turn_ids, load_tokenizer


def to_dataset(examples: list[Example], tokenizer, eos_ids: set[int]):
    """Pre-tokenized rows: ``input_ids`` (prompt + answer) and ``completion_mask`` (1 on the answer tokens); an
    example that is not ``complete`` (cut by a length limit) ends without the end-of-turn token."""
    from datasets import Dataset

    rows = []
    for example in examples:
        prompt_ids, answer_ids = encode_example(tokenizer, eos_ids, example.prompt.text, example.completion,
                                                example.complete)
        rows.append({"input_ids": prompt_ids + answer_ids,
                     "completion_mask": [0] * len(prompt_ids) + [1] * len(answer_ids)})
    return Dataset.from_list(rows)


@flush_denormals()
def train(job: SFTJob) -> dict:
    """Fine-tune and save; returns training statistics (resuming from the newest complete checkpoint).

    Runs the same in one process and in each of ``accelerate launch``'s processes (DDP, DeepSpeed ZeRO-3, FSDP):
    the training arguments are built first so that ZeRO-3 can shard the weights while they load, and the adapter is
    saved by every process together (see ``sft_save``) and checked before it is published.
    """
    out = Path(job.out_dir)
    final = out / ("adapter" if job.cfg.method == "lora" else "model")
    import torch
    from trl import SFTConfig as TRLConfig
    from trl import SFTTrainer

    from iteralign.progress import mode as progress_mode
    from iteralign.stages.sft_callbacks import StepTimer, log_lines
    from iteralign.stages.sft_guard import check_disk, resume_point
    from iteralign.stages.sft_loss import answer_loss_trainer
    from iteralign.stages.sft_model import (adapter_inputs_in_compute_dtype, checkpointing_args, load_model, peft_config,
                                            training_bf16)
    from iteralign.stages.sft_save import expected_lora_keys, save_complete
    from iteralign.tracking import trainer_reporting

    ckpt_dir = out / "checkpoints"
    bf16 = training_bf16(job.cfg.bf16)
    check_disk(out, job.base, job.cfg.method, bf16)  # fail now, not at the last checkpoint
    tokenizer = load_tokenizer(job.base, job.chat_template, job.trust_remote_code)
    reporting, trackers = trainer_reporting(job.cfg.report_to, out)  # sft.report_to; a missing package fails now
    args = TRLConfig(
        output_dir=str(ckpt_dir), num_train_epochs=job.cfg.epochs, per_device_train_batch_size=job.cfg.batch_size,
        gradient_accumulation_steps=job.cfg.grad_accum, learning_rate=job.cfg.learning_rate,
        lr_scheduler_type=job.cfg.lr_scheduler, warmup_steps=job.cfg.warmup_ratio,  # a float < 1 is a ratio
        bf16=bf16, **checkpointing_args(TRLConfig, job.cfg.gradient_checkpointing),
        max_length=job.cfg.max_length, packing=job.cfg.packing, completion_only_loss=True, save_strategy="epoch",
        save_total_limit=1, logging_steps=1, **reporting, seed=job.seed, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=progress_mode() != "bar", dataloader_num_workers=0, include_num_input_tokens_seen="non_padding",
    )
    timer = StepTimer()
    dataset = to_dataset(job.examples, tokenizer, end_of_turn_ids(job.base, tokenizer))
    trainer_cls = answer_loss_trainer(SFTTrainer)  # loss on answer tokens only, in chunks, no padding: sft_loss
    trainer = trainer_cls(model=load_model(job, bf16), args=args, train_dataset=dataset,
                          processing_class=tokenizer, peft_config=peft_config(job), callbacks=[timer])
    adapter_inputs_in_compute_dtype(trainer.model, bf16)
    log_lines(trainer, "sft")
    for callback in trackers:
        trainer.add_callback(callback)
    started = time.time()
    resume = resume_point(ckpt_dir)  # the newest complete checkpoint: a kill may have cut the last save short
    result = trainer.train(resume_from_checkpoint=resume)
    stats = {"examples": len(job.examples), "steps": result.global_step, "bf16": bf16, "train_loss": result.training_loss,
             "seconds": round(time.time() - started, 2), "resumed": resume is not None,
             "processes": trainer.accelerator.num_processes,
             "tokens_per_second": _tokens_per_second(trainer, time.time() - started),
             "step_seconds": round(timer.seconds, 2),  # optimizer steps only: no data prep, no checkpoint saves
             "tokens_per_second_in_steps": _tokens_per_second(trainer, timer.seconds),
             "losses": [h["loss"] for h in trainer.state.log_history if "loss" in h]}
    expected = expected_lora_keys(trainer.model) if job.cfg.method == "lora" else set()
    save_complete(trainer, final, expected, stats)
    if trainer.accelerator.is_main_process:
        (final / "training_args.bin").unlink(missing_ok=True)  # Trainer's pickled arguments: no pickle is published
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return stats


def _tokens_per_second(trainer, seconds: float) -> float | None:
    """Training throughput over all processes (input tokens seen / wall time), when the trainer counted them."""
    tokens = getattr(trainer.state, "num_input_tokens_seen", 0) or 0
    return round(tokens / seconds, 1) if tokens and seconds > 0 else None


def run_sft(job: SFTJob) -> dict:
    """Train in this process, or under ``accelerate launch`` when the config asks for several processes or names an
    accelerate config file (DeepSpeed ZeRO-3 or FSDP on one GPU, e.g. to offload a model that does not fit)."""
    if job.cfg.launcher == "accelerate" and (job.cfg.num_processes > 1 or job.cfg.accelerate_config):
        from iteralign.stages.launcher import launch

        return launch(job)
    return train(job)


if __name__ == "__main__":  # python -m iteralign.stages.sft JOB.json  (used by the accelerate launcher)
    train(SFTJob.model_validate_json(Path(sys.argv[1]).read_text()))
