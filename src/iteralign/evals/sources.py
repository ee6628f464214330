"""Where benchmark data comes from: a local folder first, the Hugging Face hub second, a clear error otherwise.

The local folder has the layout of ``../shared/benchmarks`` (``truthfulqa/mc_task.json``,
``bigbench_hhh/<category>/task.json``, ``xstest/xstest_prompts.csv``, ``advbench/harmful_behaviors.csv``). It is
``data_dir`` when given, else ``iteralign.data.benchmarks.default_benchmarks_dir()`` (``$ITERALIGN_BENCHMARKS``,
else ``../shared/benchmarks`` next to the working directory or the project checkout, when one exists). The hub
is tried only when the local file is missing; with ``HF_HUB_OFFLINE=1`` that succeeds only for data sets already
in the local ``datasets`` cache.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

from iteralign.data.benchmarks import ENV_VAR, default_benchmarks_dir

log = logging.getLogger(__name__)
T = TypeVar("T")


class BenchmarkDataError(FileNotFoundError):
    """Benchmark data found neither in the data folder nor on the hub; the message lists what was tried."""


def load_benchmark(
    name: str, data_dir: str | Path | None, relpath: str, read_local: Callable[[Path], T],
    hub_name: str, read_hub: Callable[[], T],
) -> T:
    """Read ``relpath`` under the data folder with ``read_local``; failing that, ``read_hub()``; else raise."""
    base = Path(data_dir) if data_dir is not None else default_benchmarks_dir()
    tried = []
    if base is not None:
        path = base / relpath
        if path.exists():
            return read_local(path)
        tried.append(f"file {path}")
    else:
        tried.append(f"a data folder (none given; ${ENV_VAR} unset; no ../shared/benchmarks)")
    try:
        log.info("%s: %s not found locally, trying the hub (%s)", name, relpath, hub_name)
        return read_hub()
    except Exception as exc:  # the hub raises many kinds (offline, 404, auth); all mean "not there"
        tried.append(f"hub data set {hub_name} ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})")
    raise BenchmarkDataError(
        f"no data for benchmark {name!r}; looked for:\n  " + "\n  ".join(tried)
        + f"\npass --data-dir DIR where DIR/{relpath} exists, or set ${ENV_VAR}, or go online for the hub"
    )


def hub_rows(path: str, config: str | None, split: str) -> list[dict]:
    """All rows of a hub data set split as plain dicts (imports ``datasets`` only when called)."""
    import datasets

    return [dict(row) for row in datasets.load_dataset(path, config, split=split)]
