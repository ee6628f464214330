"""Run configs: every shipped config validates; overrides apply; unknown keys and bad values name key and file."""

from __future__ import annotations

from pathlib import Path

import pytest

from iteralign.config import ConfigError, RunConfig, load_config
from iteralign.models.base import ModelConfig, SpecError, parse_spec

REPO = Path(__file__).resolve().parents[1]
RUN_CONFIGS = sorted(p for p in (REPO / "configs").rglob("*.yaml")
                     if not {"scripted", "accelerate", "judges"} & set(p.parts))


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)


def test_overrides_apply_with_yaml_values(tmp_path):
    cfg = load_config(REPO / "configs/smoke.yaml", ["sft.epochs=1", "stop.max_iterations=5",
                                                    "redteam.generation.stop=[x, y]", "run.name=other"])
    assert cfg.sft.epochs == 1 and cfg.stop.max_iterations == 5 and cfg.run.name == "other"
    assert cfg.redteam.generation.stop == ("x", "y")


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text((REPO / "configs/smoke.yaml").read_text() + "\nsft_typo: {epochs: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "sft_typo" in str(err.value)
    with pytest.raises(ConfigError, match=r"sft\.epochz"):
        load_config(REPO / "configs/smoke.yaml", ["sft.epochz=2"])


def test_bad_value_names_the_key():
    with pytest.raises(ConfigError, match=r"sft\.learning_rate"):
        load_config(REPO / "configs/smoke.yaml", ["sft.learning_rate=-1"])
    with pytest.raises(ConfigError, match=r"models\.target"):
        load_config(REPO / "configs/smoke.yaml", ["models.target=nonsense"])


def test_bad_yaml_and_missing_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("run: [unclosed\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        load_config(path)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="override"):
        load_config(REPO / "configs/smoke.yaml", ["no-equals-sign"])


@pytest.mark.parametrize("spec,expected", [
    ("hf:HuggingFaceTB/SmolLM2-135M-Instruct", ("hf", "HuggingFaceTB/SmolLM2-135M-Instruct", None)),
    ("offline:smollm2-135m-instruct", ("offline", "smollm2-135m-instruct", None)),
    ("openai:gpt-4o@http://127.0.0.1:8000/v1", ("openai", "gpt-4o", "http://127.0.0.1:8000/v1")),
    ("openai:gpt-4o", ("openai", "gpt-4o", None)),
    ("gguf:/models/x.gguf", ("gguf", "/models/x.gguf", None)),
    ("scripted:rules.yaml", ("scripted", "rules.yaml", None)),
    ("vllm:meta-llama/Llama-3-8B", ("vllm", "meta-llama/Llama-3-8B", None)),
])
def test_spec_parsing(spec, expected):
    parsed = parse_spec(spec)
    assert (parsed.backend, parsed.name, parsed.base_url) == expected


@pytest.mark.parametrize("spec,message", [
    ("smollm2", "malformed"), ("foo:bar", "unknown backend 'foo'"), ("hf:", "malformed"),
    ("openai:gpt-4o@ftp://x", "must start with http"), ("hf:   ", "malformed"), ("openai:@http://x", "names no model"),
])
def test_spec_errors_list_valid_forms(spec, message):
    with pytest.raises(SpecError, match=message) as err:
        parse_spec(spec)
    if "unknown" in message or "malformed" in message:
        assert "offline:<name>" in str(err.value) and "openai:<model>" in str(err.value)


def test_model_config_accepts_a_bare_spec_and_rejects_unknown_keys():
    assert ModelConfig.model_validate("offline:smollm2-135m-instruct").spec == "offline:smollm2-135m-instruct"
    with pytest.raises(ValueError, match="adaptor"):
        ModelConfig.model_validate({"spec": "hf:x", "adaptor": "typo"})


def test_base_config_is_overlaid_key_by_key(tmp_path):
    (tmp_path / "sub").mkdir()
    child = tmp_path / "sub" / "ablation.yaml"
    child.write_text(f"base: {REPO / 'configs/smoke.yaml'}\nrun: {{name: ablation}}\nsft: {{epochs: 1}}\n"
                     "judge: {judges: [{kind: refusal}]}\n")
    smoke, cfg = load_config(REPO / "configs/smoke.yaml"), load_config(child, ["sft.lora_r=4"])
    assert cfg.run.name == "ablation" and cfg.sft.epochs == 1 and cfg.sft.lora_r == 4
    assert cfg.sft.learning_rate == smoke.sft.learning_rate and cfg.models == smoke.models  # kept from the base
    assert [j.kind for j in cfg.judge.judges] == ["refusal"]  # lists are replaced, not appended
    grandchild = tmp_path / "g.yaml"
    grandchild.write_text("base: sub/ablation.yaml\nstop: {max_iterations: 7}\n")  # relative to the file
    cfg = load_config(grandchild)
    assert cfg.stop.max_iterations == 7 and cfg.run.name == "ablation" and cfg.sft.epochs == 1


def test_base_errors_name_the_file(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("base: b.yaml\n")
    b.write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(a)
    a.write_text("base: missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml.*base of .*a\.yaml"):
        load_config(a)
    a.write_text("base: [1, 2]\n")
    with pytest.raises(ConfigError, match="a.yaml: base"):
        load_config(a)


@pytest.mark.parametrize("benchmarks", ["[redteam_asr]", "[redteam]", "[generation]", "[all]"])
def test_asr_without_held_out_prompts_is_refused_up_front(benchmarks):
    """held_out_fraction 0 leaves redteam_asr nothing to measure: the config is refused, naming both keys and the
    way out, instead of a ValueError after the baseline stages ran."""
    no_held_out = ["redteam.split.held_out_fraction=0", f"eval.benchmarks={benchmarks}"]
    with pytest.raises(ConfigError) as err:
        load_config(REPO / "configs/smoke.yaml", no_held_out)
    assert {"redteam.split.held_out_fraction", "eval.benchmarks", "eval.redteam"} <= set(str(err.value).split())
    assert load_config(REPO / "configs/smoke.yaml", no_held_out + ["eval.redteam=[{builtin: seeds}]"]).eval.redteam
    for other in ("[xstest]", "[]"):
        load_config(REPO / "configs/smoke.yaml", [no_held_out[0], f"eval.benchmarks={other}"])


def test_too_few_prompts_to_hold_one_out_is_a_data_error(tmp_path):
    from loop_helpers import scripted_config

    from iteralign.data import DataError
    from iteralign.loop import run_loop

    cfg = load_config(scripted_config(tmp_path, extra={"redteam.sources": [{"builtin": "seeds", "limit": 1}],
                                                       "eval.benchmarks": ["redteam_asr"]}))
    with pytest.raises(DataError, match=r"redteam\.sources.*redteam_asr in eval\.benchmarks.*eval\.redteam"):
        run_loop(cfg)
    assert not (tmp_path / "runs" / "t" / "split.json").exists()
