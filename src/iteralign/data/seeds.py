"""The built-in prompt sets shipped as package data, so that the default run needs no external data.

``seeds/redteam_seeds.jsonl``: red-team prompts written for this project, one JSON object per line with ``text``,
``category`` (harm area) and ``style`` (attack style: direct, role-play, fiction, research, prefix injection, persona,
multi-step, hypothetical). They are requests only; the file holds no harmful content.
``seeds/benign_seeds.jsonl``: ordinary questions (cooking, coding, history, maths...) and safe questions that merely
sound risky, replayed during fine-tuning and used to check that alignment does not cost helpfulness.

Load them as a prompt source: ``PromptSourceConfig(builtin="seeds")`` or ``"builtin:benign"``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

SEED_FILES = {"seeds": "redteam_seeds.jsonl", "benign": "benign_seeds.jsonl"}


def seed_path(name: str) -> Path:
    """Filesystem path of a built-in set ('seeds' or 'benign')."""
    if name not in SEED_FILES:
        raise ValueError(f"unknown built-in prompt set {name!r}; known: {', '.join(SEED_FILES)}")
    resource = resources.files("iteralign.data") / "seeds" / SEED_FILES[name]
    # Installed packages (wheel or editable) keep package data as real files; as_file covers zipped installs.
    with resources.as_file(resource) as path:
        return Path(path)
