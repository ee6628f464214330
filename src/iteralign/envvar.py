"""Names of environment variables that hold secrets: accept what looks like a name, refuse a pasted key unechoed.

Configs and the CLI take the *name* of the variable holding an API key (``api_key_env: OPENAI_API_KEY``, ``serve
--api-key-env``), never the key, because the name is written to ``config.yaml``, ``manifest.json``, logs and error
messages. A key pasted there by mistake must therefore be refused, and the refusal must not repeat it. Shell syntax
alone (``[A-Za-z_][A-Za-z0-9_]*``) is not enough: Groq (``gsk_...``), Google (``AIza...``), Hugging Face (``hf_...``)
and GitHub (``ghp_...``) keys all match it. So a name must also look like one:

* upper-case letters, digits and underscores, not starting with a digit (``OPENAI_API_KEY``, ``VLLM_KEY``): the
  convention for environment variables, and every common key format has lower-case letters or ``-``/``.``/``+``;
* at most 64 characters, each ``_``-separated part at most 16 (``AUTHENTICATION`` is 14; an AWS key id is 20, an
  upper-case hex digest 32 or more);
* no part that alternates letters and digits three times or more (``K8S`` and ``GPT4`` do not; random base32 does).
"""

from __future__ import annotations

import re

_SHAPE = re.compile(r"_*[A-Z][A-Z0-9_]*")
_TRANSITION = re.compile(r"(?<=[A-Z])(?=[0-9])|(?<=[0-9])(?=[A-Z])")
MAX_LENGTH, MAX_PART = 64, 16


class EnvVarNameError(ValueError):
    """A value that is not an environment variable name; the message never contains the value."""


def looks_like_env_var_name(value: object) -> bool:
    """True for ``OPENAI_API_KEY``-style names (module docstring); False for keys, tokens and anything else."""
    if not isinstance(value, str) or len(value) > MAX_LENGTH or not _SHAPE.fullmatch(value):
        return False
    parts = [p for p in value.split("_") if p]
    return all(len(p) <= MAX_PART and len(_TRANSITION.findall(p)) < 3 for p in parts)


def check_env_var_name(value: object, where: str) -> str:
    """``value`` if it looks like an environment variable name, else ``EnvVarNameError`` naming ``where`` (the field or
    option, e.g. ``models.oracle.api_key_env``) but not the value, which may be a secret."""
    if looks_like_env_var_name(value):
        return value  # type: ignore[return-value]
    raise EnvVarNameError(
        f"{where} must be the NAME of the environment variable that holds the key (upper-case letters, digits and "
        f"underscores, e.g. OPENAI_API_KEY), not the key itself; the value given is not repeated here in case it is "
        f"a secret: export the key in a variable and put that variable's name here"
    )
