"""Where benchmark and public red-team data files are found, and the integrity check of the packaged copy.

A file is named by its path relative to a benchmarks folder (``truthfulqa/mc_task.json``, ``xstest/xstest_prompts.csv``
...). It is looked for, in order, in:

1. the folder the caller names (``--data-dir`` / ``eval.data_dir``);
2. the folder in ``$ITERALIGN_BENCHMARKS``;
3. the copy shipped inside the package (``iteralign/data/benchmarks``, see its SOURCES.md), so that a clone or a
   ``pip install`` anywhere evaluates offline;

and, when none has it, the caller falls back to the Hugging Face hub. A folder that is named but does not exist is an
error (a typo must not silently fall through to another copy). Every file of the packaged copy is checked against
its ``SHA256SUMS`` before it is read, and so is a file of any other folder that carries its own ``SHA256SUMS``: a
damaged or truncated file is refused with an error naming it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

ENV_VAR = "ITERALIGN_BENCHMARKS"
MANIFEST = "SHA256SUMS"


class BenchmarkDataError(FileNotFoundError):
    """Benchmark data that is missing everywhere, damaged, or asked for in a folder that does not exist."""


def packaged_dir() -> Path:
    """The benchmark copy shipped with the package."""
    return Path(str(resources.files("iteralign") / "data" / "benchmarks"))


@dataclass(frozen=True)
class Found:
    """A located file and where it came from (recorded in results, so a reader knows which copy was scored)."""

    path: Path
    origin: str  # "data_dir", "$ITERALIGN_BENCHMARKS" or "packaged"


def search_dirs(data_dir: str | Path | None = None) -> list[tuple[str, Path]]:
    """The folders looked in, in order, as ``(origin, folder)``; a named folder that does not exist raises."""
    dirs: list[tuple[str, Path]] = []
    for origin, value in (("data_dir", data_dir), (f"${ENV_VAR}", os.environ.get(ENV_VAR) or None)):
        if value is None:
            continue
        folder = Path(value).expanduser()
        if not folder.is_dir():
            raise BenchmarkDataError(f"benchmark folder {folder} (from {origin}) does not exist or is not a folder")
        dirs.append((origin, folder))
    return dirs + [("packaged", packaged_dir())]


def locate(relpath: str, data_dir: str | Path | None = None) -> tuple[Found | None, list[str]]:
    """The first folder holding ``relpath`` (verified), or None; and the places tried, for an error message."""
    tried = []
    for origin, folder in search_dirs(data_dir):
        path = folder / relpath
        if path.is_file():
            verify(path, folder, relpath)
            return Found(path, origin), tried
        tried.append(f"{origin}: {path}")
    return None, tried


_VERIFIED: dict[tuple[str, int, int], bool] = {}  # (path, size, mtime_ns) already checked in this process


def verify(path: Path, folder: Path, relpath: str) -> None:
    """Check ``path`` against ``folder/SHA256SUMS`` when the folder has one; raise naming the file otherwise."""
    sums = folder / MANIFEST
    if not sums.is_file():
        return
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    expected = read_manifest(sums).get(relpath)
    if expected is None:
        raise BenchmarkDataError(f"{path}: not listed in {sums}; the benchmark folder is incomplete or was edited")
    digest = sha256_file(path)
    if digest != expected:
        raise BenchmarkDataError(
            f"{path}: damaged or truncated (sha256 {digest[:12]}..., expected {expected[:12]}... from {sums}); "
            "reinstall iteralign or restore the file")
    _VERIFIED[key] = True


def read_manifest(path: Path) -> dict[str, str]:
    """``relpath -> sha256`` from a ``sha256sum``-style file (``<hex>  <relpath>`` per line)."""
    out = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise BenchmarkDataError(f"{path}:{number}: expected '<sha256>  <relative path>'")
        out[name.strip()] = digest
    return out


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path) -> Path:
    """(Re)write ``folder/SHA256SUMS`` over every data file below it (maintainers run this after updating data)."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (MANIFEST, "SOURCES.md", "LICENSE"))
    lines = [f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}" for p in files]
    (folder / MANIFEST).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / MANIFEST


@dataclass(frozen=True)
class PromptSet:
    """A public prompt set usable as a prompt source (``{benchmark: NAME}``): its file, format and hub fallback."""

    relpath: str
    format: str
    hub: str | None = None  # a hub data set with the same prompts, tried when no local copy has the file
    hub_field: str | None = None


#: Public red-team sets shipped in the package (SOURCES.md), by the name a prompt source uses.
PROMPT_SETS: dict[str, PromptSet] = {
    "advbench": PromptSet("advbench/harmful_behaviors.csv", "advbench", "walledai/AdvBench", "prompt"),
    "harmfulqa": PromptSet("dangerousqa/harmfulqa.json", "harmfulqa"),
    "dangerousqa": PromptSet("dangerousqa/dangerousqa.json", "dangerousqa"),
    "catqa": PromptSet("dangerousqa/catqa_english.json", "catqa"),
    "adversarialqa": PromptSet("dangerousqa/adversarialqa.json", "adversarialqa"),
    "hh_rlhf_harmless": PromptSet("hh_rlhf_harmless_base/test.jsonl.gz", "hh_rlhf"),
}
