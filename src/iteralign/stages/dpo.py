"""Preference training (DPO) of the target on pairs, each kept revision chosen over the failed answer it replaces.
Output: ``dpo/`` (``adapter/``, ``train_stats.json``, ``pairs/`` with TRL's cached reference log-probabilities).

TRL's ``DPOTrainer`` with a LoRA adapter: a fresh adapter's reference is the base (adapter disabled); a warm-started
adapter's reference is a frozen copy of it (TRL's "ref" adapter), so the reference is always the model before this
round and no second model is loaded. Pairs are tokenized by ``stages.tokens`` (the prompt exactly as generation
encodes it; each answer up to its end-of-turn token), so TRL's own tokenization is skipped. Reference
log-probabilities are computed once, before training (``precompute_ref_log_probs``), and cached by TRL beside the
pairs dataset, which is saved in the run folder: a resumed run does not recompute them. Checkpoints, resume, the
disk check and the verified save are the SFT stage's.
"""

from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path
from typing import Any

from iteralign.records import PreferencePair
from iteralign.stages.denormals import flush_denormals
from iteralign.stages.dpo_job import DPOJob, loss_terms
from iteralign.stages.tokens import encode_example, end_of_turn_ids, load_tokenizer


def pairs_dataset(pairs: list[PreferencePair], tokenizer: Any, eos_ids: set[int], folder: Path):
    """The pairs as ``prompt_ids``/``chosen_ids``/``rejected_ids``, saved to ``folder`` and read back from it."""
    from datasets import Dataset, load_from_disk

    if not (folder / "dataset_info.json").exists():
        rows = []
        for pair in pairs:
            prompt_ids, chosen = encode_example(tokenizer, eos_ids, pair.prompt.text, pair.chosen,
                                                pair.chosen_complete)
            rejected = encode_example(tokenizer, eos_ids, pair.prompt.text, pair.rejected, pair.rejected_complete)[1]
            rows.append({"prompt_ids": prompt_ids, "chosen_ids": chosen, "rejected_ids": rejected})
        tmp = folder.with_name(f".{folder.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        Dataset.from_list(rows).save_to_disk(str(tmp))
        tmp.rename(folder)
    return load_from_disk(str(folder))


@functools.cache
def trainer_class():
    """TRL's DPOTrainer, taking a dataset that is already tokenized as it is (our tokenization, see the module),
    with the answer-only log-probability head of ``sft_loss`` (no full-vocabulary logits kept)."""
    from trl import DPOTrainer

    from iteralign.stages.sft_loss import answer_head_trainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" not in dataset.column_names:
                return super()._prepare_dataset(dataset, processing_class, args, dataset_name)
            if args.max_length is not None and args.truncation_mode == "keep_start":
                return dataset.filter(lambda example: len(example["prompt_ids"]) < args.max_length)
            return dataset

    return answer_head_trainer(PreTokenizedDPOTrainer)


@flush_denormals()
def train_dpo(job: DPOJob) -> dict:
    """Train the adapter on the pairs and save it (verified, published by rename); the training statistics."""
    import torch
    from trl import DPOConfig

    from iteralign.progress import mode as progress_mode
    from iteralign.stages.sft_callbacks import StepTimer, log_lines
    from iteralign.stages.sft_guard import check_disk, resume_point
    from iteralign.stages.sft_model import (adapter_inputs_in_compute_dtype, checkpointing_args, load_model, peft_config,
                                            training_bf16)
    from iteralign.stages.sft_save import expected_lora_keys, save_complete
    from iteralign.tracking import trainer_reporting

    out, cfg = Path(job.out_dir), job.cfg
    final, ckpt_dir = out / "adapter", out / "checkpoints"
    out.mkdir(parents=True, exist_ok=True)
    bf16 = training_bf16(cfg.bf16)
    check_disk(out, job.base, "lora", bf16)
    tokenizer = load_tokenizer(job.base, job.chat_template, job.trust_remote_code)
    dataset = pairs_dataset(job.pairs, tokenizer, end_of_turn_ids(job.base, tokenizer), out / "pairs")
    reporting, trackers = trainer_reporting(cfg.report_to, out)  # sft.report_to: DPO curves go to the same tracker
    args = DPOConfig(
        output_dir=str(ckpt_dir), num_train_epochs=job.dpo.epochs, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, learning_rate=job.dpo.learning_rate,
        lr_scheduler_type=cfg.lr_scheduler, warmup_steps=cfg.warmup_ratio, bf16=bf16, max_length=cfg.max_length,
        beta=job.dpo.beta, **loss_terms(job.dpo), precompute_ref_log_probs=True,
        **checkpointing_args(DPOConfig, cfg.gradient_checkpointing), save_strategy="epoch", save_total_limit=1,
        logging_steps=1, seed=job.seed, use_cpu=not torch.cuda.is_available(),
        disable_tqdm=progress_mode() != "bar", dataloader_num_workers=0, **reporting,
    )
    timer = StepTimer()
    trainer = trainer_class()(model=load_model(job, bf16), ref_model=None, args=args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config(job), callbacks=[timer, *trackers])
    adapter_inputs_in_compute_dtype(trainer.model, bf16)
    log_lines(trainer, "dpo")
    started = time.time()
    resume = resume_point(ckpt_dir)
    result = trainer.train(resume_from_checkpoint=resume)
    logs = [h for h in trainer.state.log_history if "loss" in h]
    stats = {"pairs": len(job.pairs), "steps": result.global_step, "bf16": bf16, "train_loss": result.training_loss,
             "seconds": round(time.time() - started, 2), "step_seconds": round(timer.seconds, 2),
             "resumed": resume is not None, "losses": [h["loss"] for h in logs],
             "reward_margins": [h.get("rewards/margins") for h in logs],
             "reward_accuracies": [h.get("rewards/accuracies") for h in logs]}
    model = trainer.model
    if "ref" in getattr(model, "peft_config", {}):  # TRL's frozen reference copy is not part of the result
        model.delete_adapter("ref")
    save_complete(trainer, final, expected_lora_keys(model), stats)
    if trainer.accelerator.is_main_process:
        (final / "training_args.bin").unlink(missing_ok=True)
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return stats
