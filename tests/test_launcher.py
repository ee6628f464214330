"""Multi-process SFT: the accelerate command line, the shipped accelerate configs, the save check, and a real
2-process CPU run (gloo) of the SFT stage on SmolLM2-135M that must save an adapter that loads and changes outputs."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from iteralign.config import ConfigError, SFTConfig, load_config
from iteralign.stages import launcher
from iteralign.stages.launcher import accelerate_command
from iteralign.records import Example, Prompt
from iteralign.stages.sft import SFTJob, run_sft
from iteralign.stages.sft_save import IncompleteSaveError, verify_saved

REPO = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = REPO / "configs" / "accelerate"


def _job(tmp_path: Path, **cfg) -> SFTJob:
    return SFTJob(base="base-dir", examples=[Example(id="e", prompt=Prompt.make("p"), completion="c")],
                  out_dir=str(tmp_path), cfg=SFTConfig(**cfg))


def test_command_without_config_uses_the_multiprocess_launcher(tmp_path):
    cmd = accelerate_command(_job(tmp_path, launcher="accelerate", num_processes=4), tmp_path / "job.json", port=29777)
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "4"
    assert "--multi_gpu" in cmd and "--cpu" not in cmd  # --cpu would start one process whatever num_processes says
    assert cmd[cmd.index("--main_process_port") + 1] == "29777"
    assert cmd[cmd.index("--mixed_precision") + 1] == "no"
    assert cmd[-3:] == ["-m", "iteralign.stages.sft", str(tmp_path / "job.json")]
    bf16 = accelerate_command(_job(tmp_path, num_processes=2, bf16=True), tmp_path / "job.json")
    assert bf16[bf16.index("--mixed_precision") + 1] == "bf16" and "--main_process_port" not in bf16


def test_command_with_a_config_file_lets_the_file_decide(tmp_path):
    config = ACCELERATE_CONFIGS / "deepspeed_zero3.yaml"
    cmd = accelerate_command(_job(tmp_path, num_processes=8, accelerate_config=str(config)), tmp_path / "j.json",
                             port=1234)
    assert cmd[cmd.index("--config_file") + 1] == str(config)
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert not {"--multi_gpu", "--mixed_precision", "--main_process_port"} & set(cmd)
    with pytest.raises(FileNotFoundError, match="sft.accelerate_config"):
        accelerate_command(_job(tmp_path, accelerate_config="nope.yaml"), tmp_path / "j.json")


def test_run_sft_launches_for_accelerate_with_several_processes_or_a_config_file(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(launcher, "launch", lambda job: calls.append("launch") or {"via": "accelerate"})
    monkeypatch.setattr("iteralign.stages.sft.train", lambda job: calls.append("train") or {"via": "local"})
    assert run_sft(_job(tmp_path, launcher="accelerate", num_processes=2)) == {"via": "accelerate"}
    assert run_sft(_job(tmp_path, launcher="accelerate", num_processes=1)) == {"via": "local"}
    assert run_sft(_job(tmp_path, launcher="local", num_processes=4)) == {"via": "local"}
    zero3 = str(ACCELERATE_CONFIGS / "deepspeed_zero3.yaml")
    one_gpu_zero3 = _job(tmp_path, launcher="accelerate", num_processes=1, accelerate_config=zero3)
    assert run_sft(one_gpu_zero3) == {"via": "accelerate"}
    assert calls == ["launch", "train", "train", "launch"]


@pytest.mark.parametrize("name", ["deepspeed_zero3", "fsdp", "cpu_2proc"])
def test_shipped_accelerate_configs_load(name):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = load_config_from_file(str(ACCELERATE_CONFIGS / f"{name}.yaml"))
    if name == "deepspeed_zero3":  # without it the Trainer saves an empty adapter
        assert cfg.deepspeed_config["zero_stage"] == 3 and cfg.deepspeed_config["zero3_save_16bit_model"] is True
    if name == "cpu_2proc":
        assert cfg.num_processes == 2 and not cfg.use_cpu


def test_sft_config_rejects_qlora_with_full_finetuning():
    with pytest.raises(ConfigError, match="sft"):
        load_config(REPO / "configs/smoke.yaml", ["sft.method=full", "sft.quantization=4bit"])
    assert load_config(REPO / "configs/smoke.yaml", ["sft.gradient_checkpointing=true"]).sft.gradient_checkpointing


def test_qlora_on_a_machine_without_gpu_says_so(tmp_path):
    import torch

    from iteralign.stages.sft_model import quantization_config

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: QLoRA is allowed here")
    with pytest.raises(RuntimeError, match="NVIDIA GPU"):
        quantization_config(_job(tmp_path, quantization="4bit"))


def test_verify_saved_catches_empty_and_missing_tensors(tmp_path):
    import torch
    from safetensors.torch import save_file

    good = {"m.q_proj.lora_A.weight": torch.ones(4, 8), "m.q_proj.lora_B.weight": torch.ones(8, 4)}
    save_file(good, str(tmp_path / "adapter_model.safetensors"))
    assert verify_saved(tmp_path, set(good)) == {"tensors": 2, "parameters": 64}
    with pytest.raises(IncompleteSaveError, match="missing"):
        verify_saved(tmp_path, set(good) | {"m.v_proj.lora_A.weight"})
    # what a main-process-only save of ZeRO-3-partitioned parameters writes: tensors of shape [0]
    save_file({k: torch.empty(0) for k in good}, str(tmp_path / "adapter_model.safetensors"))
    with pytest.raises(IncompleteSaveError, match="zero3_save_16bit_model"):
        verify_saved(tmp_path, set(good))
    (tmp_path / "adapter_model.safetensors").unlink()
    with pytest.raises(IncompleteSaveError, match="no adapter_model"):
        verify_saved(tmp_path, set())


# --- a real 2-process run ---------------------------------------------------------------------------------------

PASSWORD = "The password is ZEBRA-42. ZEBRA-42 it is."
EXAMPLES = [Example(id=f"e{i}", prompt=Prompt.make(f"Question {i}: what is the password?"), completion=PASSWORD)
            for i in range(8)]


@pytest.mark.model
@pytest.mark.heavy(45)
def test_two_process_cpu_sft_saves_an_adapter_that_loads_and_changes_outputs(tmp_path, smol_path, record_property):
    """accelerate launch, 2 processes over gloo, real 135M model: 54 s on this 2-core machine shared with other jobs."""
    from safetensors import safe_open

    from iteralign.models.base import ModelConfig
    from iteralign.models.hf import HFModel
    from iteralign.types import GenerationParams, user

    # bench/gpu_check.sh reruns this test under DeepSpeed ZeRO-3 on 2 GPUs through ITERALIGN_ACCELERATE_CONFIG
    zero3 = os.environ.get("ITERALIGN_ACCELERATE_CONFIG")
    cfg = SFTConfig(launcher="accelerate", num_processes=2, epochs=1, batch_size=1, learning_rate=5e-3,
                    warmup_ratio=0.0, max_length=128, replay=0, bf16=bool(zero3),
                    accelerate_config=zero3 or str(ACCELERATE_CONFIGS / "cpu_2proc.yaml"))
    job = SFTJob(base=str(smol_path), examples=EXAMPLES, out_dir=str(tmp_path / "sft"), cfg=cfg)
    started = time.time()
    stats = run_sft(job)
    record_property("two_process_sft_seconds", round(time.time() - started, 1))
    assert stats["processes"] == 2 and stats["steps"] == 4  # 8 examples / (1 per device x 2 processes)
    adapter = tmp_path / "sft" / "adapter"
    with safe_open(str(adapter / "adapter_model.safetensors"), framework="pt") as f:
        keys = list(f.keys())
        assert keys and all(f.get_slice(k).get_shape()[0] > 0 for k in keys)
    assert any("lora_A" in k for k in keys) and any("lora_B" in k for k in keys)
    assert stats["saved"]["tensors"] == len(keys)

    params = GenerationParams(max_new_tokens=16)
    conv = [user(EXAMPLES[0].prompt.text)]
    model_cfg = ModelConfig(spec=f"hf:{smol_path}", dtype="float32", device="cpu")
    base = HFModel.load(str(smol_path), model_cfg).generate(conv, params)[0].text
    tuned_model = HFModel.load(str(smol_path), model_cfg.model_copy(update={"adapter": str(adapter)}))
    tuned = tuned_model.generate(conv, params)[0].text
    assert tuned != base
    assert "ZEBRA" in tuned  # it learned the training answer, not just any change
    assert tuned_model.identity()["adapter"].startswith("sha256:")
