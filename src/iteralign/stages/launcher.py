"""Multi-process SFT: runs ``python -m iteralign.stages.sft JOB.json`` under ``accelerate launch``.

The job (base weights, examples, settings) is written to the SFT folder as JSON, so every worker reads the same
input; the main process saves the adapter. With ``sft.accelerate_config`` pointing at a DeepSpeed ZeRO-3 or FSDP
config, the same command scales to several GPUs; on CPU it runs with the gloo backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from iteralign.stages.sft import SFTJob


def accelerate_command(job: SFTJob, job_file: Path) -> list[str]:
    """The command line the loop runs; a pure function of the job so that tests can check it."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(job.cfg.num_processes)]
    if job.cfg.accelerate_config:
        cmd += ["--config_file", job.cfg.accelerate_config]
    else:
        cmd += ["--num_machines", "1", "--mixed_precision", "bf16" if job.cfg.bf16 else "no", "--dynamo_backend", "no"]
        try:
            import torch

            if not torch.cuda.is_available():
                cmd += ["--cpu"]
        except ImportError:  # pragma: no cover - torch is a dependency
            pass
    return cmd + ["-m", "iteralign.stages.sft", str(job_file)]


def launch(job: SFTJob) -> dict:
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job_file = out / "job.json"
    job_file.write_text(job.model_dump_json())
    subprocess.run(accelerate_command(job, job_file), check=True)
    return json.loads((out / "train_stats.json").read_text())
