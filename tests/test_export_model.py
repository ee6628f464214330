"""``iteralign export``: the accepted model found in a run folder, exported as a peft adapter, a merged transformers
folder and a GGUF file, each with a model card; the merged folder and the GGUF file answer like the run's model
(base + adapter, as the loop serves it); push-to-hub with the hub client mocked."""

from __future__ import annotations

import json
from pathlib import Path
from unittest import mock

import pytest

from export_helpers import PROMPTS, tiny_base, tiny_run
from iteralign.export.card import card_metadata
from iteralign.export.model import export_model
from iteralign.export.source import ExportError, find_model

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def run(smol_path: Path, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    return tiny_run(root, tiny_base(smol_path, root / "base"))


def greedy(model, tokenizer, prompts=PROMPTS, new_tokens: int = 12) -> list[list[int]]:
    """Greedy token ids, one prompt at a time, through the chat template."""
    import torch

    out = []
    for prompt in prompts:
        ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                            return_tensors="pt", return_dict=True)["input_ids"]
        with torch.no_grad():
            gen = model.generate(ids, max_new_tokens=new_tokens, do_sample=False)
        out.append(gen[0, ids.shape[1]:].tolist())
    return out


def run_model_answers(run: Path, iteration: int) -> list[list[int]]:
    """What the run's model says: its base with the iteration's adapter, loaded as the loop's hf backend does."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rm = find_model(run, iteration)
    base = AutoModelForCausalLM.from_pretrained(rm.base_source(), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(rm.adapter)).eval()
    return greedy(model, AutoTokenizer.from_pretrained(rm.base_source()))


def test_the_accepted_iteration_is_found_and_a_rejected_one_only_on_request(run: Path, tmp_path: Path):
    accepted = find_model(run)
    assert (accepted.iteration, accepted.accepted) == (0, True)
    assert accepted.adapter == run / "iter-000" / "sft" / "adapter"
    rejected = find_model(run, 1)
    assert (rejected.iteration, rejected.accepted) == (1, False)
    with pytest.raises(ExportError, match="iteration 5 has no trained model; iterations with one: 0, 1"):
        find_model(run, 5)
    with pytest.raises(ExportError, match="not a run folder"):
        find_model(tmp_path)


def test_a_moved_run_folder_still_finds_its_adapters(run: Path, tmp_path: Path):
    import shutil

    moved = tmp_path / "elsewhere"
    shutil.copytree(run, moved)
    assert find_model(moved).adapter == moved / "iter-000" / "sft" / "adapter"


def test_merged_folder_loads_with_plain_transformers_and_answers_like_base_plus_adapter(run: Path, tmp_path: Path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = export_model(run, tmp_path / "merged", "merged", dtype="float32")
    files = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "generation_config.json", "tokenizer.json", "README.md"} <= files
    assert "chat_template.jinja" in files or "chat_template" in json.loads((out / "tokenizer_config.json").read_text())
    assert not any("adapter" in name for name in files)  # merged: no peft files
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert not any("lora" in name for name, _ in model.named_parameters())
    merged = greedy(model, AutoTokenizer.from_pretrained(str(out)))
    assert merged == run_model_answers(run, 0)
    assert merged != run_model_answers(run, 1)  # the comparison tells models apart


def test_merged_export_keeps_the_base_dtype_by_default(run: Path, tmp_path: Path):
    out = export_model(run, tmp_path / "merged", "merged")
    assert json.loads((out / "config.json").read_text())["dtype"] == "float32"  # the tiny base is float32


def test_adapter_folder_loads_with_peft_and_records_the_base_id(run: Path, tmp_path: Path):
    from peft import PeftConfig

    out = export_model(run, tmp_path / "adapter", "adapter", iteration=1, base_id="HuggingFaceTB/SmolLM2-135M")
    assert PeftConfig.from_pretrained(str(out)).base_model_name_or_path == "HuggingFaceTB/SmolLM2-135M"
    assert (out / "adapter_model.safetensors").read_bytes() == \
        (run / "iter-001" / "sft" / "adapter" / "adapter_model.safetensors").read_bytes()
    card = (out / "README.md").read_text()
    assert card_metadata(card) == {"base_model": "HuggingFaceTB/SmolLM2-135M", "library_name": "peft",
                                   "tags": ["iteralign", "alignment", "constitutional-ai", "lora"]}
    assert "iteration 1 (**rejected** by the evaluation gate)" in card


def test_model_card_records_base_iterations_constitution_evaluation_and_command(run: Path, tmp_path: Path):
    out = export_model(run, tmp_path / "m", "adapter", command="iteralign export RUN --out m --format adapter")
    card = (out / "README.md").read_text()
    evals = {n: json.loads((run / d / "eval.json").read_text())["benchmarks"] for n, d in
             (("before", "baseline"), ("after", "iter-000"))}
    asr = f"| redteam_asr | {evals['before']['redteam_asr']['score']:.4f} ± "
    assert asr in card and f"{evals['after']['redteam_asr']['score']:.4f}" in card
    assert "| 1 | 30 |" in card and "xstest_safe_refusal rose from" in card  # both iterations, the gate's reason
    assert "Decline requests for instructions" in card  # iteration 0's principle
    assert "Do not write messages designed to deceive" not in card  # proposed after the exported iteration
    assert "`iteralign export RUN --out m --format adapter`" in card
    assert f"hf:{run.parent / 'base'}" in card


def test_no_accepted_iteration_and_a_non_empty_folder_are_refused(run: Path, tmp_path: Path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(ExportError, match="not empty"):
        export_model(run, tmp_path / "full", "adapter")
    summary = run / "iter-000" / "summary.json"
    original = summary.read_text()
    try:
        summary.write_text(json.dumps(json.loads(original) | {"accepted": False}))
        with pytest.raises(ExportError, match="no iteration's model was accepted.*--iteration N"):
            find_model(run)
    finally:
        summary.write_text(original)


@pytest.mark.parametrize("quant", ["f32", "q8_0"])
@pytest.mark.heavy(25)
def test_gguf_loads_back_with_transformers(run: Path, tmp_path: Path, quant: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = export_model(run, tmp_path / "gguf", "gguf", quant=quant)
    assert path.suffix == ".gguf" and (path.parent / "README.md").is_file()
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    reference = AutoTokenizer.from_pretrained(str(find_model(run).base_source()))
    text = "Hello world! 123 <|im_start|>user\nHi<|im_end|>"
    assert tokenizer(text).input_ids == reference(text).input_ids
    assert tokenizer.chat_template == reference.chat_template
    answers = greedy(model, tokenizer)
    if quant == "f32":  # lossless: the same answers as base + adapter
        assert answers == run_model_answers(run, 0)
    else:  # 8-bit: loads and mostly agrees (first tokens)
        assert sum(a[0] == b[0] for a, b in zip(answers, run_model_answers(run, 0))) >= 2


def test_unsupported_gguf_quantisation_is_refused_with_the_choices(run: Path, tmp_path: Path):
    from iteralign.export.gguf_file import UnsupportedModel

    with pytest.raises(UnsupportedModel, match="q4_k_m.*f32, f16, bf16, q8_0"):
        export_model(run, tmp_path / "g", "gguf", quant="q4_k_m")


def test_push_to_hub_uploads_the_folder_with_the_hub_client(run: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_TOKEN", "hf_fake_token_for_tests")
    with mock.patch("huggingface_hub.HfApi.create_repo") as create, \
            mock.patch("huggingface_hub.HfApi.upload_folder") as upload:
        upload.return_value = mock.Mock(commit_url="https://huggingface.co/me/aligned/commit/abc")
        out = export_model(run, tmp_path / "a", "adapter", push_to_hub="me/aligned")
    create.assert_called_once_with("me/aligned", repo_type="model", private=True, exist_ok=True)
    assert upload.call_args.kwargs["repo_id"] == "me/aligned"
    assert upload.call_args.kwargs["folder_path"] == str(out)
    assert "me/aligned" in (out / "README.md").read_text()  # the card's snippet names the hub repo


def test_push_to_hub_needs_a_token_and_the_hub_online(run: Path, tmp_path: Path, monkeypatch):
    from iteralign.export.hub import push_folder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ExportError, match="HF_HUB_OFFLINE=0"):
        push_folder(tmp_path, "me/aligned")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # no stored login either
    with mock.patch("huggingface_hub.HfApi.create_repo") as create:
        with pytest.raises(ExportError, match="no Hugging Face token"):
            push_folder(tmp_path, "me/aligned")
    create.assert_not_called()


def test_cli_exports_and_reports_errors_in_one_line(run: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from iteralign.cli import app

    done = CliRunner().invoke(app, ["export", str(run), "--out", str(tmp_path / "a"), "--format", "adapter"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "a" / "adapter_config.json").is_file()
    card = (tmp_path / "a" / "README.md").read_text()
    assert f"`iteralign export {run} --out {tmp_path / 'a'} --format adapter`" in card
    failed = CliRunner().invoke(app, ["export", str(run), "--out", str(tmp_path / "b"), "--format", "onnx"])
    assert failed.exit_code == 2 and "unknown export format 'onnx'" in failed.output
    data = CliRunner().invoke(app, ["export-data", str(run), "--out", str(tmp_path / "d")])
    assert data.exit_code == 0 and "sft: 23 rows" in data.output, data.output


def test_a_full_sft_iteration_exports_its_saved_model_and_has_no_adapter(run: Path, tmp_path: Path):
    """After full SFT the summary's target is ``hf:<iter-NNN/sft/model>``; a moved run folder still finds it."""
    import shutil

    import torch
    from transformers import AutoModelForCausalLM

    moved = tmp_path / "full-run"
    shutil.copytree(run, moved)
    saved = moved / "iter-000" / "sft" / "model"
    shutil.copytree(run.parent / "base", saved)  # stands in for the fully fine-tuned weights
    summary = moved / "iter-000" / "summary.json"
    data = json.loads(summary.read_text())
    data["target"] = data["target"] | {"spec": "hf:/gone/runs/tiny/iter-000/sft/model", "adapter": None}
    summary.write_text(json.dumps(data))
    found = find_model(moved)
    assert found.model.spec == f"hf:{saved}" and found.adapter is None and found.base_source() == str(saved)
    with pytest.raises(ExportError, match="full fine-tuning: there is no adapter"):
        export_model(moved, tmp_path / "a", "adapter")
    out = export_model(moved, tmp_path / "m", "merged")
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    base = AutoModelForCausalLM.from_pretrained(str(run.parent / "base"), dtype=torch.float32)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), base.state_dict().values()))


@pytest.mark.heavy(25)
def test_gguf_writer_maps_a_qwen2_model_biases_and_untied_head_included(smol_path: Path, tmp_path: Path):
    """Qwen2's attention biases and an untied output projection survive the GGUF round trip (f32: same logits)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from iteralign.export.gguf_file import write_gguf

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(smol_path))
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, initializer_range=0.2)
    model = Qwen2ForCausalLM(config).eval()
    with torch.no_grad():  # non-zero biases, so that a lost bias changes the logits
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    path = write_gguf(model, tokenizer, tmp_path / "qwen.gguf", "f32")
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=path.name, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer("The capital of France is Paris.").input_ids])
    with torch.no_grad():
        assert torch.allclose(loaded(ids).logits, model(ids).logits, atol=1e-4)
