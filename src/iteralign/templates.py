"""Prompt templates: YAML files shipped in ``iteralign/prompts/``, overridable by a path in config.

Templates use ``str.format`` fields (``{response}``, ``{prompt}``, ``{principles}``...). Keeping them as data lets a
user adapt the judge or the proposer without touching code, and lets the report show exactly what was asked.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml


@lru_cache(maxsize=None)
def load_prompt(name: str, override: str | None = None) -> dict:
    """The template mapping ``name`` (e.g. 'judge_paper'), or the YAML file at ``override`` when given."""
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"prompt template file not found: {path}")
        text = path.read_text(encoding="utf-8")
    else:
        ref = Path(__file__).parent / "prompts" / f"{name}.yaml"
        if not ref.is_file():
            raise FileNotFoundError(f"no built-in prompt template {name!r}")
        text = ref.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"prompt template {override or name}: expected a mapping of template fields")
    return data


def few_shot(template: dict) -> list[dict]:
    """The template's system message and examples as chat messages, ready for the final user turn."""
    messages = [{"role": "system", "content": template["system"]}] if template.get("system") else []
    for example in template.get("examples", []):
        messages.append({"role": "user", "content": example["user"]})
        messages.append({"role": "assistant", "content": example["assistant"]})
    return messages
