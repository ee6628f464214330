"""Training and evaluation figures sent to the experiment tracker a user names (``sft.report_to``).

``none`` (default), ``tensorboard``, ``wandb`` or ``trackio``. SFT hands the tracker to the Trainer's own
integration, so loss, learning rate, gradient norm and token counts are logged every step: for TensorBoard into
``iter-NNN/sft/tensorboard/`` (inside the stage's folder, so a recomputed stage sets its curves aside with it), for
W&B and Trackio as a run named ``<run>/iter-NNN`` of the project ``$WANDB_PROJECT`` / ``$TRACKIO_PROJECT``
(default ``iteralign``); their offline modes (``WANDB_MODE=offline``; Trackio is local unless given a Space) work
without a network. Every evaluation (baseline, then after each iteration) logs its scores as ``eval/<benchmark>``
at step 0, 1, 2... (``runs/<name>/tensorboard/`` for TensorBoard), so ``tensorboard --logdir runs/<name>`` shows
the loss curves of every iteration and the benchmarks across iterations.

Trackers are optional packages (extras ``iteralign[tensorboard]``, ``[wandb]``, ``[trackio]``); a missing one is
an error naming the extra, raised before training starts.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any, Literal

Tracker = Literal["none", "tensorboard", "wandb", "trackio"]
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "trackio": "trackio"}
PROJECT = "iteralign"


class TrackerMissing(RuntimeError):
    """The tracker named in ``sft.report_to`` is not installed."""


def check_tracker(tracker: Tracker) -> None:
    """Raise ``TrackerMissing`` (with the pip command) if ``tracker`` cannot be imported."""
    package = PACKAGES.get(tracker)
    if package and importlib.util.find_spec(package) is None:
        raise TrackerMissing(f"sft.report_to: {tracker} needs the {package} package: pip install "
                             f"'iteralign[{tracker}]' (or set sft.report_to: none)")


def trainer_reporting(tracker: Tracker, out_dir: str | Path) -> tuple[dict[str, Any], list[Any]]:
    """Training-argument overrides and callbacks that send a Trainer's logs to ``tracker``; ``out_dir`` is the
    stage's folder (``iter-NNN/sft``), whose parent names the iteration."""
    check_tracker(tracker)
    out = Path(out_dir)
    if tracker == "none":
        return {"report_to": "none"}, []
    if tracker == "tensorboard":  # our own writer: its folder is explicit, not an env variable or output_dir/runs
        from torch.utils.tensorboard import SummaryWriter
        from transformers.integrations import TensorBoardCallback

        return {"report_to": "none"}, [TensorBoardCallback(SummaryWriter(log_dir=str(out / "tensorboard")))]
    project = os.environ.get("WANDB_PROJECT" if tracker == "wandb" else "TRACKIO_PROJECT", PROJECT)
    os.environ.setdefault("WANDB_PROJECT", project)  # read by transformers' W&B callback
    return {"report_to": [tracker], "run_name": f"{out.parent.parent.name}/{out.parent.name}",
            "project": project}, []


def log_evaluation(tracker: Tracker, run_root: Path, name: str, result: dict) -> None:
    """Log one evaluation's scores (a ``run_evals`` result) as ``eval/<benchmark>`` at the step of ``name``:
    0 for ``baseline``, N + 1 for ``iter-N`` (the model after iteration N)."""
    if tracker == "none" or not result.get("benchmarks"):
        return
    check_tracker(tracker)
    step = 0 if name == "baseline" else int(name.split("-")[-1]) + 1
    scores = {f"eval/{bench}": float(entry["score"]) for bench, entry in result["benchmarks"].items()}
    if tracker == "tensorboard":
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(log_dir=str(run_root / "tensorboard")) as writer:
            for key, value in scores.items():
                writer.add_scalar(key, value, step)
        return
    module = importlib.import_module(tracker)  # wandb and trackio share init / log / finish
    project = os.environ.get("WANDB_PROJECT" if tracker == "wandb" else "TRACKIO_PROJECT", PROJECT)
    module.init(project=project, name=f"{run_root.name}/eval", resume="allow",
                **({"id": f"{run_root.name}-eval"} if tracker == "wandb" else {}))
    module.log(scores | {"iteration": step}, step=step)
    module.finish()
