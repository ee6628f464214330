"""Security: no unsafe deserialisation or code execution in the source, weights only as safetensors, remote code off
by default, model output never used as a path, API keys never written anywhere, run folders inside their root.

Covered elsewhere, not repeated here: the sha256 of offline models is verified before use (tests/test_offline.py),
the cache database shared by concurrent processes (tests/test_cache.py), API keys kept out of the ``openai:``
backend's errors, reprs and logs (tests/test_openai_api.py::test_the_key_never_leaks).
"""

from __future__ import annotations

import base64
import logging
import random
import re
import socket
import string
import uuid
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from rel_helpers import REPO, config
from typer.testing import CliRunner

from iteralign.cli import app
from iteralign.config import ConfigError, dump_config, load_config
from iteralign.envvar import check_env_var_name
from iteralign.loop import run_loop
from iteralign.models.base import ModelConfig
from iteralign.models.scripted import ScriptedModel
from iteralign.run import read_jsonl
from iteralign.serve import FaultPlan, create_app, running_server

#: What the source tree must not contain: deserialisers that run code, code evaluation, shells, remote code.
FORBIDDEN = {
    "pickle-family import": r"^\s*(import|from)\s+(pickle|cPickle|_pickle|dill|shelve|marshal|joblib|cloudpickle)\b",
    "pickle call": r"\b(pickle|cPickle|dill|cloudpickle)\.(load|loads|dump|dumps|Unpickler)\b",
    "eval/exec": r"(?<![\w.])(eval|exec)\s*\(",
    "unsafe yaml": r"\byaml\.(load|unsafe_load|full_load|load_all|unsafe_load_all)\s*\("
                   r"|Loader\s*=\s*yaml\.(Loader|UnsafeLoader|FullLoader)\b",
    "trust_remote_code on": r"trust_remote_code\s*=\s*True",
    "shell": r"shell\s*=\s*True|\bos\.(system|popen|exec\w*)\s*\(",
    "torch.load without weights_only": r"torch\.load\((?![^)]*weights_only\s*=\s*True)",
    "numpy pickle": r"allow_pickle\s*=\s*True",
    "dynamic import": r"__import__\s*\(",
}
#: (file, rule) -> why it is acceptable.
ALLOWED = {
    ("bench/compare_lm_eval.py", "dynamic import"): "__import__('torch') of a constant name, in a benchmark script",
}
#: Suffixes of serialised weights other than safetensors (pickle-based or foreign formats).
UNSAFE_WEIGHTS = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".npy", ".npz", ".h5", ".msgpack", ".joblib"}


def source_files() -> list[Path]:
    return sorted(p for d in ("src", "scripts", "bench") for p in (REPO / d).rglob("*.py"))


def test_no_unsafe_calls_in_the_source_tree():
    found = []
    for path in source_files():
        rel = str(path.relative_to(REPO))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{rel}:{number}: {rule}: {line.strip()}" for rule, pattern in FORBIDDEN.items()
                      if re.search(pattern, line) and (rel, rule) not in ALLOWED]
    assert not found, "\n".join(found)
    assert len(source_files()) > 50  # the scan really looked at the package


@pytest.mark.parametrize("line", ["data = pickle.loads(blob)", "import dill", "x = eval(reply)", "exec(code)",
                                  "yaml.load(text, Loader=yaml.Loader)", "yaml.load(text)",
                                  "AutoModel.from_pretrained(p, trust_remote_code=True)",
                                  "subprocess.run(cmd, shell=True)", "os.system(cmd)", "torch.load(f)",
                                  "np.load(f, allow_pickle=True)", "__import__(name)"])
def test_the_scan_catches_each_rule(line):
    assert any(re.search(p, line) for p in FORBIDDEN.values())


@pytest.mark.parametrize("line", ["model.eval()", "run_evals(model)", "yaml.safe_load(text)", "literal_eval(x)",
                                  "torch.load(f, weights_only=True)", "trust_remote_code=cfg.trust_remote_code",
                                  "asyncio.create_subprocess_exec(*cmd)"])
def test_the_scan_allows_safe_lookalikes(line):
    assert not any(re.search(p, line) for p in FORBIDDEN.values())


def test_weights_are_loaded_as_safetensors_only():
    calls = [(str(path.relative_to(REPO)), call_text(text, match.end()))
             for path in source_files() for text in [path.read_text(encoding="utf-8")]
             for match in re.finditer(r"AutoModel\w*\.from_pretrained\(", text)]
    # a GGUF file is converted once by offline.py into safetensors; it is not a pickle format
    bad = [f"{p}: from_pretrained({c[:80]}" for p, c in calls if "use_safetensors=True" not in c and "gguf_file" not in c]
    assert calls and not bad, "\n".join(bad)


def call_text(text: str, start: int) -> str:
    """The arguments of the call whose opening parenthesis ends at ``start``."""
    depth = 1
    for end in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[end], 0)
        if depth == 0:
            return text[start:end]
    return text[start:]


def test_converted_offline_model_holds_only_safetensors_weights(smol_path):
    suffixes = {p.suffix for p in Path(smol_path).rglob("*") if p.is_file()}
    assert ".safetensors" in suffixes and not suffixes & UNSAFE_WEIGHTS


def test_saved_adapters_must_be_safetensors(tmp_path):
    from iteralign.stages.sft_save import IncompleteSaveError, verify_saved

    (tmp_path / "adapter_model.bin").write_bytes(b"\x80\x04not really")  # what a pickle-based save would leave
    with pytest.raises(IncompleteSaveError, match="no adapter_model.safetensors"):
        verify_saved(tmp_path, set())


def test_remote_code_is_off_by_default():
    from iteralign.stages.sft import SFTJob

    assert ModelConfig(spec="hf:x").trust_remote_code is False
    assert SFTJob.model_fields["trust_remote_code"].default is False


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/abs", "x/../../y", "", ".hidden", "a\\..\\b", "n\x00", "-rf",
                                 "x" * 101])
def test_run_names_cannot_escape_the_root(tmp_path, name):
    cfg = config(tmp_path)
    with pytest.raises(ConfigError, match=r"run\.name"):
        load_config(cfg, [f"run.name={yaml.safe_dump(name, default_style=chr(34)).strip()}"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "oracle.yaml", "reviser.yaml", "target.yaml"]


def _random(alphabet: str, n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "-_"
#: The shapes of common API keys and tokens (random bodies of the real lengths and alphabets).
KEYS = {
    "openai sk-": "sk-" + _random(_ALNUM, 48, 1),
    "openai sk-proj-": "sk-proj-" + _random(_B64URL, 156, 2),
    "groq gsk_": "gsk_" + _random(_ALNUM, 52, 3),
    "google AIza": "AIza" + _random(_ALNUM, 35, 4),
    "hugging face hf_": "hf_" + _random(_ALNUM, 34, 5),
    "xai-": "xai-" + _random(_ALNUM, 80, 6),
    "github ghp_": "ghp_" + _random(_ALNUM, 36, 7),
    "anthropic sk-ant-": "sk-ant-api03-" + _random(_B64URL, 93, 8) + "AA",
    "jwt": ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in
                    (b'{"alg":"HS256","typ":"JWT"}', b'{"sub":"1234567890","iat":1516239022}', bytes(range(32)))),
    "hex lower": _random("0123456789abcdef", 64, 9),
    "hex upper": _random("0123456789ABCDEF", 40, 10),
    "base64": base64.b64encode(bytes(random.Random(11).randrange(256) for _ in range(33))).decode(),
    "aws key id": "AKIA" + _random("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16, 12),
    "base32 secret": "JBSWY3DPEHPK3PXP",
}


def leaks(key: str, text: str) -> bool:
    """Whether ``text`` holds any 12 consecutive characters of ``key`` (pydantic's errors show a truncated prefix)."""
    return any(key[i : i + 12] in text for i in range(len(key) - 11))


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_a_key_pasted_as_the_variable_name_is_refused_without_echo(tmp_path, monkeypatch, key):
    """Every common key format is refused as ``api_key_env`` (Python API, config loading, the CLI), and no message,
    log or file repeats it; the CLI stops before a run folder exists."""
    with pytest.raises(ValidationError) as err:
        ModelConfig(spec="openai:gpt-4o", api_key_env=key)
    assert "api_key_env" in str(err.value) and not leaks(key, str(err.value))
    cfg = config(tmp_path)
    with pytest.raises(ConfigError) as err:
        load_config(cfg, [f"models.oracle={{spec: 'openai:gpt-4o', api_key_env: '{key}'}}"])
    assert "models.oracle.api_key_env" in str(err.value) and not leaks(key, str(err.value))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["run", str(cfg), "--set", f"models.oracle.api_key_env={key}"])
    assert result.exit_code == 2 and "models.oracle.api_key_env" in result.output and not leaks(key, result.output)
    assert not (tmp_path / "runs").exists()
    assert [p for p in tmp_path.rglob("*") if p.is_file() and leaks(key, p.read_text(errors="replace"))] == []


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "ITERALIGN_REL_SECRET", "AZURE_OPENAI_API_KEY", "HF_TOKEN",
                                  "GPT4_KEY", "K8S_TOKEN", "AWS_SECRET_ACCESS_KEY", "GOOGLE_APPLICATION_CREDENTIALS"])
def test_environment_variable_names_are_accepted(name):
    assert ModelConfig(spec="openai:gpt-4o", api_key_env=name).api_key_env == name
    assert check_env_var_name(name, "--api-key-env") == name


NASTY = ["../../../../escaped/owned.txt", "/etc/passwd", "$(touch pwned-subshell)", "`touch pwned-backtick`",
         "{0}%s{x!r}", "!!python/object/apply:os.system ['touch pwned-yaml']", "C:\\..\\..\\x", "a\x00b", "\u202e"]


def test_model_output_is_never_a_path_or_code(tmp_path, monkeypatch, clean_run):
    """Target, oracle and reviser answer with path traversals, shell and YAML payloads: the run folder has exactly
    the files of a normal run, nothing appears outside it, and the payloads survive as text."""
    monkeypatch.chdir(tmp_path)
    cfg = config(tmp_path)
    payload = " ".join(NASTY)
    rules = {name: yaml.safe_load((tmp_path / f"{name}.yaml").read_text()) for name in ("target", "oracle", "reviser")}
    rules["target"]["default"] = f"Sure! {payload}"
    rules["reviser"]["default"] = f"I can't help with that. {payload}"
    rules["oracle"]["rules"][0]["reply"] = "\n".join(f"{n}. Never follow the path {s} or run it as code." for n, s in
                                                     enumerate(NASTY, 1))
    for name, data in rules.items():
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True))
    run = run_loop(load_config(cfg))
    created = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
                     and not str(p.relative_to(tmp_path)).startswith("runs/"))
    assert created == ["calls-oracle.log", "calls-reviser.log", "calls-target.log", "config.yaml", "oracle.yaml",
                       "reviser.yaml", "target.yaml"]
    assert {p.relative_to(run) for p in run.rglob("*")} == {p.relative_to(clean_run.path) for p in clean_run.path.rglob("*")}
    assert not list(Path("/").glob("escaped")) and not list(tmp_path.parent.glob("escaped"))
    assert "/etc/passwd" in (run / "constitution.yaml").read_text(encoding="utf-8")
    assert {r["response"] for r in read_jsonl(run / "iter-000/redteam.jsonl")} >= {f"Sure! {payload}"}


def test_api_key_reaches_the_server_and_is_written_nowhere(tmp_path, monkeypatch, caplog, capfd):
    secret = f"sk-iteralign-{uuid.uuid4().hex}"
    monkeypatch.setenv("ITERALIGN_REL_SECRET", secret)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    oracle = {"spec": f"openai:scripted@http://127.0.0.1:{port}/v1", "api_key_env": "ITERALIGN_REL_SECRET",
              "timeout_s": 0.5, "backoff_base_s": 0.01}
    cfg = load_config(config(tmp_path, extra={"run.cache": True, "models.oracle": oracle}))
    for name in (None, "openai", "httpx", "httpcore", "iteralign", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    app = create_app(ScriptedModel.from_file(tmp_path / "oracle.yaml"), api_key=secret,
                     faults=FaultPlan(faults=[500, 429, "timeout"], hang_s=2))
    with running_server(app, port=port):
        run = run_loop(cfg)
    assert app.state.iteralign.stats.requests > 3  # every request carried the key (the server demands it)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("cache.sqlite") for p in files) and (run / "report.html").exists()
    assert [p for p in files if secret.encode() in p.read_bytes()] == []
    out, err = capfd.readouterr()
    assert secret not in caplog.text + out + err + yaml.safe_dump(dump_config(cfg))
    assert "ITERALIGN_REL_SECRET" in (run / "config.yaml").read_text()  # the variable's name is recorded, not its value
