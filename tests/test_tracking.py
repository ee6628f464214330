"""``sft.report_to``: SFT's loss and learning-rate curves and each evaluation's scores reach TensorBoard's event
files (read back with TensorBoard's own reader); a tracker that is not installed is refused before training."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_helpers import tiny_base
from iteralign import tracking
from iteralign.config import ConfigError, load_config
from iteralign.records import Example, Prompt


def scalars(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar series in the event files under ``log_dir``: tag -> [(step, value)]."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(log_dir.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            out.setdefault(tag, []).extend((e.step, e.value) for e in acc.Scalars(tag))
    return out


@pytest.mark.model
def test_sft_writes_loss_and_learning_rate_curves_to_tensorboard(smol_path: Path, tmp_path: Path):
    from iteralign.stages.sft import train
    from iteralign.stages.sft_job import SFTConfig, SFTJob

    base = tiny_base(smol_path, tmp_path / "base")
    examples = [Example(id=f"e{i}", prompt=Prompt(id=f"p{i}", text=f"Question {i}?"), completion=f"Answer {i}.")
                for i in range(4)]
    cfg = SFTConfig(report_to="tensorboard", epochs=2, batch_size=2, lora_r=2, lora_target_modules=["q_proj"],
                    max_length=64)
    out = tmp_path / "run" / "iter-000" / "sft"
    stats = train(SFTJob(base=str(base), examples=examples, out_dir=str(out), cfg=cfg))
    curves = scalars(out / "tensorboard")
    assert [step for step, _ in curves["train/loss"]] == [1, 2, 3, 4] == list(range(1, stats["steps"] + 1))
    assert [round(v, 4) for _, v in curves["train/loss"]] == [round(v, 4) for v in stats["losses"]]
    rates = [v for _, v in curves["train/learning_rate"]]
    assert len(rates) == 4 and rates[-1] < max(rates) == pytest.approx(cfg.learning_rate, rel=0.5)  # warm-up, decay
    assert (out / "adapter" / "adapter_config.json").is_file()  # the curves' folder does not disturb the stage


def test_each_evaluation_is_logged_as_scalars_at_its_iteration(tmp_path: Path):
    result = lambda asr, refusal: {"benchmarks": {"redteam_asr": {"score": asr, "n": 10, "stderr": 0.1},  # noqa
                                                  "xstest_safe_refusal": {"score": refusal, "n": 10, "stderr": 0.1}}}
    for name, res in (("baseline", result(0.6, 0.1)), ("iter-000", result(0.4, 0.15)), ("iter-001", result(0.2, 0.3))):
        tracking.log_evaluation("tensorboard", tmp_path, name, res)
    curves = scalars(tmp_path / "tensorboard")
    assert curves["eval/redteam_asr"] == [(0, pytest.approx(0.6)), (1, pytest.approx(0.4)), (2, pytest.approx(0.2))]
    assert [s for s, _ in curves["eval/xstest_safe_refusal"]] == [0, 1, 2]


def test_nothing_is_logged_with_report_to_none(tmp_path: Path):
    tracking.log_evaluation("none", tmp_path, "baseline", {"benchmarks": {"x": {"score": 1.0}}})
    assert not (tmp_path / "tensorboard").exists()
    assert tracking.trainer_reporting("none", tmp_path / "iter-000" / "sft") == ({"report_to": "none"}, [])


def test_wandb_and_trackio_runs_are_named_after_the_run_and_iteration(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: object())  # pretend it is installed
    monkeypatch.delenv("TRACKIO_PROJECT", raising=False)
    args, callbacks = tracking.trainer_reporting("trackio", tmp_path / "myrun" / "iter-002" / "sft")
    assert args == {"report_to": ["trackio"], "run_name": "myrun/iter-002", "project": "iteralign"} and not callbacks


def test_a_tracker_that_is_not_installed_is_refused_with_the_extra_to_install(monkeypatch):
    monkeypatch.setattr(tracking.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(tracking.TrackerMissing, match=r"wandb needs the wandb package: pip install 'iteralign\[wandb"):
        tracking.check_tracker("wandb")
    tracking.check_tracker("none")


def test_report_to_is_a_typed_config_key():
    minimal = ["models.target.spec=hf:x", "models.oracle.spec=hf:x", "redteam.sources=[{builtin: seeds}]"]
    assert load_config(None, [*minimal, "sft.report_to=tensorboard"]).sft.report_to == "tensorboard"
    assert load_config(None, minimal).sft.report_to == "none"
    with pytest.raises(ConfigError, match="report_to"):
        load_config(None, [*minimal, "sft.report_to=mlflow"])
