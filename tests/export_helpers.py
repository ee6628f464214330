"""A finished run folder whose target is a tiny random llama model (SmolLM2's tokenizer and chat template) with a
random LoRA adapter per iteration, for the export tests: the report's synthetic run (records, constitution, evals,
the real gate: iteration 1 is rejected) with a real model and adapters in place of the demo spec."""

from __future__ import annotations

import json
from pathlib import Path

from iteralign.config import dump_config, load_config
from iteralign.records import Answer, Prompt, Verdict
from iteralign.report.synthetic import write_run
from iteralign.layout import RunLayout
from iteralign.run import JsonlLog, write_json

PROMPTS = ["Name three colours.", "How do I boil an egg?", "Write a haiku about rain."]


def tiny_base(smol_path: Path, out: Path) -> Path:
    """A 2-layer llama (hidden 64) with SmolLM2's tokenizer, float32, spread-out weights (greedy has no near-ties)."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(str(smol_path))
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, initializer_range=0.2, rms_norm_eps=1e-5,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=tokenizer.bos_token_id,
                                               eos_token_id=tokenizer.eos_token_id, do_sample=False)
    model.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def random_adapter(base: Path, out: Path, seed: int) -> Path:
    """A rank-4 LoRA adapter with random (not zero) B matrices: it changes the model's answers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    get_peft_model(model, config).save_pretrained(str(out))
    return out


def tiny_run(root: Path, base: Path) -> Path:
    """A 2-iteration run folder: iteration 0 accepted, iteration 1 rejected (over-refusal), each with an adapter,
    and a replay set."""
    path = write_run(root / "tiny", iterations=2, records=30)
    layout = RunLayout(path)
    cfg = load_config(None, ["run.name=tiny", f"run.root={root}", f"models.target.spec=hf:{base}",
                             "models.target.dtype=float32", "models.oracle.spec=openai:gpt-4o",
                             "redteam.sources=[{builtin: seeds}]", "stop.max_iterations=2"])
    layout.config.write_text(json.dumps(dump_config(cfg)))  # JSON is YAML
    for files in layout.iterations():
        adapter = random_adapter(base, files.adapter, seed=files.index + 1)
        summary = json.loads(files.summary.read_text())
        summary["target"] = cfg.models.target.model_copy(update={"adapter": str(adapter)}).model_dump()
        write_json(files.summary, summary)
    replay = [Answer.of(Prompt(id=f"b-{i}", text=t, intent="benign", source="replay"), f"An answer to: {t}", "stop")
              .model_copy(update={"verdict": Verdict(label="aligned")}) for i, t in enumerate(PROMPTS)]
    cut = Answer.of(Prompt(id="b-cut", text="Tell me a long story.", intent="benign"), "Once upon", "length")
    JsonlLog(layout.replay).append([a.to_json() for a in [*replay, cut.model_copy(
        update={"verdict": Verdict(label="aligned")})]])
    return path
