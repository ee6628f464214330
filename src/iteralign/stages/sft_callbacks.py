"""Trainer callbacks of the SFT stage: step timing (throughput without checkpoint saves) and progress lines.

Off a terminal the Trainer's tqdm bar is switched off (``progress.mode()``), and ``StepLog`` writes one line per
optimizer step instead: ``sft: 3/10 step, 0.52 step/s, ETA 13 s, loss 1.234``.
"""

from __future__ import annotations

import time

from transformers import TrainerCallback

from iteralign.progress import Progress


class StepTimer(TrainerCallback):
    """Sums the wall time inside training steps, so throughput can exclude checkpoint saves and data preparation."""

    def __init__(self) -> None:
        self.seconds, self._t0 = 0.0, 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._t0 = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds += time.perf_counter() - self._t0


class StepLog(TrainerCallback):
    """One progress line per logged step, with the loss (main process only)."""

    def __init__(self, desc: str = "sft") -> None:
        self.desc = desc
        self.bar: Progress | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.bar = Progress(state.max_steps, self.desc, "step", initial=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.bar is not None and logs and "loss" in logs:
            self.bar.update(state.global_step - self.bar.done, f"loss {logs['loss']:.3f}")

    def on_train_end(self, args, state, control, **kwargs):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def log_lines(trainer, desc: str) -> None:
    """Off a terminal (the Trainer's bar switched off): one ``StepLog`` line per step instead of the printed dicts."""
    from transformers import PrinterCallback

    if trainer.args.disable_tqdm:
        trainer.remove_callback(PrinterCallback)
        trainer.add_callback(StepLog(desc))
