"""The built-in prompt sets shipped as package data, so that the default run needs no external data.

``seeds/redteam_seeds.jsonl``: red-team prompts written for this project, one JSON object per line with ``text``,
``category`` (harm area) and ``style`` (attack style: direct, role-play, fiction, research, prefix injection, persona,
multi-step, hypothetical). They are requests only; the file holds no harmful content.
``seeds/benign_seeds.jsonl``: ordinary questions (cooking, coding, history, maths...) and safe questions that merely
sound risky, replayed during fine-tuning and used to check that alignment does not cost helpfulness.
``seeds/contrast_benign.jsonl``: 261 benign prompts that sound risky, the contrast set for two-sided alignment (refuse
the harmful request, answer its look-alike), for the training loop. One JSON object per line with ``text``,
``category`` (the harm area whose words or topic it borrows, one of the 12 ``category`` values of the red-team seeds,
16 or more each), ``type`` (the look-alike type, 15 or more each: homonym "kill a process", figurative "my set
bombed", safe_target "kill fruit flies", safe_context "I coach a self-defence class", definition, history, fiction,
public_figure, safety_education "secure my router", privacy_public "a charity's helpline") and ``intent: "benign"``.
Written by hand for this project, Apache-2.0; the counts per area and type, the labelling rules and the provenance are
in ``labelled/README.md``, which also describes the labelled intent sets ``labelled/intent_eval.jsonl`` (320 prompts,
half harmful, for measuring a prompt-intent classifier) and ``labelled/intent_dev.jsonl`` (120, for tuning it).
``tests/test_prompt_sets.py`` keeps all of them free of near-duplicates of each other and of the two seed files.

Load the first two as a prompt source: ``PromptSourceConfig(builtin="seeds")`` or ``"builtin:benign"``; the others as
files, e.g. ``{"path": ..., "category_field": "category"}``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SEED_FILES = {"seeds": "redteam_seeds.jsonl", "benign": "benign_seeds.jsonl", "contrast": "contrast_benign.jsonl"}


def seed_path(name: str) -> Path:
    """Filesystem path of a built-in set ('seeds' or 'benign')."""
    if name not in SEED_FILES:
        raise ValueError(f"unknown built-in prompt set {name!r}; known: {', '.join(SEED_FILES)}")
    resource = resources.files("iteralign.data") / "seeds" / SEED_FILES[name]
    # Installed packages (wheel or editable) keep package data as real files; as_file covers zipped installs.
    with resources.as_file(resource) as path:
        return Path(path)
