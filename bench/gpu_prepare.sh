#!/usr/bin/env bash
# Prepares, on a machine with pip access, what bench/gpu_check.sh needs on a GPU machine that has PyTorch but no
# registry and a capped upload (the device tool of this workplace: 64 MiB per call): wheels for the packages the
# image lacks (into .whl/) and the 135M's config and tokenizer (into .gpu/smol/, for RANDOM_FROM). Both folders are
# git-ignored (.git/info/exclude) and travel with `carry: [".whl", ".gpu"]`. On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src
#   RANDOM_FROM=.gpu/smol PY=python3 bash bench/gpu_check.sh
# vLLM (a 228 MB wheel) and the 135M's weights (98 MB) do not fit such an upload; see BENCHMARKS.md, "GPU check".
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || printf '/.whl/\n/.gpu/\n' >> .git/info/exclude
mkdir -p .whl .gpu/smol
version() { $PY -c "import importlib.metadata as m; print(m.version('$1'))"; }
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .whl \
  "pydantic==$(version pydantic)" "pydantic-core==$(version pydantic-core)" annotated-types typing-inspection \
  "trl==$(version trl)" "datasets==$(version datasets)" "dill==$(version dill)" "multiprocess==$(version multiprocess)" \
  "peft==$(version peft)" bitsandbytes==0.50.2 hjson
# DeepSpeed ships only a source archive: build a pure-Python wheel (its CUDA ops are compiled on first use there)
$PY -m pip install -q wheel && DS_BUILD_OPS=0 $PY -m pip wheel -q --no-deps --no-build-isolation -w .whl deepspeed==0.19.8
MODEL_DIR=$($PY -c "from iteralign.models.offline import ensure_converted; print(ensure_converted('smollm2-135m-instruct'))")
cp "$MODEL_DIR"/{config.json,generation_config.json,tokenizer.json,tokenizer_config.json,chat_template.jinja} .gpu/smol/
du -sh .whl .gpu
