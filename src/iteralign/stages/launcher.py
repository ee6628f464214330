"""Multi-process SFT: runs ``python -m iteralign.stages.sft JOB.json`` under ``accelerate launch``.

The loop calls ``launch`` when ``sft.launcher: accelerate`` and ``sft.num_processes > 1`` or ``sft.accelerate_config``
is set (a config file with one process: ZeRO-3 or FSDP on a single GPU). The job (base weights,
examples, settings) is written to the SFT folder as JSON, so every worker reads the same input; the workers train
together and save the adapter together (``sft_save``). With ``sft.accelerate_config`` pointing at one of the shipped
configs (``configs/accelerate/deepspeed_zero3.yaml``, ``fsdp.yaml``) the same command shards the model over GPUs.

Without a config file we ask accelerate for its multi-process launcher (``--multi_gpu``, i.e. torchrun) on one
machine: on GPUs that is DDP over NCCL; on a CPU-only machine the workers find no GPU and join over gloo. (The
``--cpu`` flag would be wrong here: accelerate then starts a single process whatever ``--num_processes`` says.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from iteralign.stages.sft_job import SFTJob


def free_port() -> int:
    """A TCP port nobody listens on now, for the workers' rendezvous (parallel runs must not share 29500)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def accelerate_command(job: SFTJob, job_file: Path, port: int | None = None) -> list[str]:
    """The command line the loop runs; a pure function of the job so that tests can check it.

    A config file decides the distributed type, precision and machines (multi-node runs set the rendezvous port
    there, so we never override it); ``--num_processes`` always comes from ``sft.num_processes``.
    """
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(job.cfg.num_processes)]
    if job.cfg.accelerate_config:
        config = Path(job.cfg.accelerate_config)
        if not config.is_file():
            raise FileNotFoundError(f"sft.accelerate_config: no such file {config} (shipped: configs/accelerate/)")
        cmd += ["--config_file", str(config)]
    else:
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "bf16" if job.cfg.bf16 else "no",
                "--dynamo_backend", "no"]
        if port is not None:
            cmd += ["--main_process_port", str(port)]
    return cmd + ["-m", "iteralign.stages.sft", str(job_file)]


def launch(job: SFTJob) -> dict:
    """Write the job, run it under ``accelerate launch``, and return the statistics the main worker wrote."""
    out = Path(job.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    job_file = out / "job.json"
    tmp = job_file.with_suffix(".json.tmp")
    tmp.write_text(job.model_dump_json())
    tmp.replace(job_file)
    cmd = accelerate_command(job, job_file, port=None if job.cfg.accelerate_config else free_port())
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    done = subprocess.run(cmd, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"SFT under accelerate failed (exit code {done.returncode}); command: {' '.join(cmd)}")
    return json.loads((out / "train_stats.json").read_text())
