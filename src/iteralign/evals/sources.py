"""Where benchmark data comes from: a local file first (``data.benchmark_files``: the given folder,
``$ITERALIGN_BENCHMARKS``, then the copy shipped in the package), the Hugging Face hub second, a clear error otherwise.

With the packaged copy present the hub is reached only for data sets the package does not ship; with
``HF_HUB_OFFLINE=1`` (the CLI's default) that succeeds only for data sets already in the local ``datasets`` cache.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable, TypeVar

from iteralign.data.benchmark_files import ENV_VAR, BenchmarkDataError, locate

log = logging.getLogger(__name__)
T = TypeVar("T")

__all__ = ["BenchmarkDataError", "hub_rows", "load_benchmark"]


def load_benchmark(
    name: str, data_dir: str | Path | None, relpath: str, read_local: Callable[[Path], T],
    hub_name: str, read_hub: Callable[[], T],
) -> T:
    """Read ``relpath`` from the first benchmark folder that has it with ``read_local``; else ``read_hub()``; else
    raise ``BenchmarkDataError`` listing every place tried."""
    found, tried = locate(relpath, data_dir)
    if found is not None:
        log.debug("%s: %s (%s)", name, found.path, found.origin)
        return read_local(found.path)
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
