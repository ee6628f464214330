"""The model card (``README.md`` with Hugging Face metadata) of an exported model, from the run folder alone.

It records what a reader needs to trust or reproduce the model: the base model and training method, every
iteration (failures, principles, kept revisions, the gate's decision), the evaluation figures before training and
after the exported iteration, the constitution the model was aligned to, the run's resolved config, and the command
that exported it.
"""

from __future__ import annotations

import yaml

from iteralign.constitution import load
from iteralign.export.source import RunModel

HOW_TO_LOAD = {
    "adapter": """```python
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer

model = AutoPeftModelForCausalLM.from_pretrained("{where}")
tokenizer = AutoTokenizer.from_pretrained("{where}")
```""",
    "merged": """```python
from transformers import AutoModelForCausalLM, AutoTokenizer

model = AutoModelForCausalLM.from_pretrained("{where}", use_safetensors=True)
tokenizer = AutoTokenizer.from_pretrained("{where}")
```
Or serve it: `iteralign serve --model hf:{where}`, `vllm serve {where}`.""",
    "gguf": """```bash
ollama create my-model -f Modelfile   # Modelfile: FROM ./{file}
llama-server -m {file}
```
In Python: `AutoModelForCausalLM.from_pretrained("{where}", gguf_file="{file}")`.""",
}


def model_card(rm: RunModel, fmt: str, command: str, where: str = ".", file: str = "",
               base_id: str | None = None) -> str:
    """The card's text for ``rm`` exported as ``fmt`` (``adapter``, ``merged`` or ``gguf``)."""
    base = base_id or rm.base.spec
    meta = {"base_model": base_id, "library_name": "peft" if fmt == "adapter" else "transformers",
            "tags": ["iteralign", "alignment", "constitutional-ai", *(["lora"] if rm.adapter else []),
                     *(["gguf"] if fmt == "gguf" else [])]}
    meta = {k: v for k, v in meta.items() if v}
    decision = "accepted by the evaluation gate" if rm.accepted else "**rejected** by the evaluation gate"
    sft = rm.cfg.sft
    method = (f"LoRA (r={sft.lora_r}, alpha={sft.lora_alpha}, modules {sft.lora_target_modules})"
              if sft.method == "lora" else "full fine-tuning")
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
             f"# {rm.layout.root.name}: {base} aligned with iteralign", "",
             f"Iterative constitutional alignment (IterAlign: red team, judge, propose principles, self-reflect, "
             f"fine-tune) of `{rm.base.spec}`. This is the model after iteration {rm.iteration} "
             f"({decision}), exported as **{fmt}**.", "",
             f"- Base model: `{rm.base.spec}`" + (f" (`{base_id}`)" if base_id and base_id != rm.base.spec else ""),
             f"- Training: {method}, learning rate {sft.learning_rate}, {sft.epochs} epochs per iteration",
             f"- Iterations run: {len(rm.summaries)}; exported: {rm.iteration}", "",
             "## Iterations", "", *_iterations(rm.summaries), "",
             "## Evaluation before and after", "", *_evaluation(rm.before, rm.after), "",
             "## Constitution", "", *_constitution(rm), "",
             "## How to use it", "", HOW_TO_LOAD[fmt].format(where=where, file=file), "",
             "## How it was made", "",
             f"Exported with `{command}` from the run folder `{rm.layout.root.name}`, trained by `iteralign run` with "
             "this resolved config:", "", "<details><summary>config.yaml</summary>", "", "```yaml",
             rm.layout.config.read_text().strip(), "```", "", "</details>", ""]
    return "\n".join(lines)


def _iterations(summaries: list[dict]) -> list[str]:
    rows = ["| iteration | red-teamed | failures | failure rate | principles | revisions kept | accepted | gate |",
            "|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        accepted = {True: "yes", False: "no", None: "-"}[s.get("accepted")]
        reasons = "; ".join(s.get("gate_reasons") or []) or s.get("stopped", "")
        rate = s.get("failure_rate")
        rows.append(f"| {s['iteration']} | {s.get('red_team', '-')} | {s.get('failures', '-')} | "
                    f"{'-' if rate is None else f'{rate:.3f}'} | {s.get('principles', '-')} | "
                    f"{s.get('revisions_kept', '-')} | {accepted} | {reasons} |")
    return rows


def _evaluation(before: dict, after: dict) -> list[str]:
    old, new = before.get("benchmarks", {}), after.get("benchmarks", {})
    if not old and not new:
        return ["Not evaluated (`eval.benchmarks` was empty)."]
    rows = ["| benchmark | before | after | change | n |", "|---|---|---|---|---|"]
    for name in dict.fromkeys([*old, *new]):
        b, a = old.get(name, {}).get("score"), new.get(name, {}).get("score")
        change = f"{a - b:+.4f}" if a is not None and b is not None else "-"
        n = new.get(name, old.get(name, {})).get("n", "-")
        rows.append(f"| {name} | {_fmt(old.get(name))} | {_fmt(new.get(name))} | {change} | {n} |")
    limit = after.get("limit", before.get("limit"))
    note = f" on the first {limit} items per benchmark (`eval.limit`)" if limit else ""
    return rows + ["", f"Scores with their standard error{note}; `redteam_asr` and `xstest_safe_refusal` are better "
                   "lower. Full results: `baseline/eval.json` and `iter-NNN/eval.json` in the run folder."]


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "-"
    return f"{entry['score']:.4f} ± {entry.get('stderr', 0):.4f}"


def _constitution(rm: RunModel) -> list[str]:
    if not rm.layout.constitution.is_file():
        return ["No principles were proposed."]
    principles = [p for p in load(rm.layout.constitution)  # those the exported iteration could have been shown
                  if p.status != "disabled" and (p.iteration is None or p.iteration <= rm.iteration)]
    rows = [f"{i}. {p.text} *(iteration {p.iteration}, {p.status}, from {len(p.source_failure_ids)} failures, "
            f"used by {p.uses} revisions)*" for i, p in enumerate(principles, 1)]
    return rows or ["No principles were proposed."]


def card_metadata(card: str) -> dict:
    """The YAML metadata block at the top of a card (for tests and the hub)."""
    return yaml.safe_load(card.split("---", 2)[1])
