"""Bad input, fuzzed: every parser that reads data from outside the program either accepts the input or raises its
own documented error naming the file (and line or field), never another exception from deep inside.

Parsers: the run config (file, edits at random key paths, ``--set`` overrides), prompt files (JSONL, CSV, JSON: wrong
types, missing fields, huge lines, invalid UTF-8, BOMs, deep nesting), oracle replies (principle parsing, verdict
parsing), a hand-edited ``constitution.yaml``, scripted rules files, fault plans, ``manifest.json``, labelled judge
data. Hypothesis runs derandomized, so ``make test`` tries the same inputs every time (``EXAMPLES`` per test).
"""

from __future__ import annotations

import copy
import json
import re
import string
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iteralign.calibration import CalibrationError, load_labelled
from iteralign.config import ConfigError, RunConfig, load_config
from iteralign.constitution import Constitution, ConstitutionError, dumps, load, loads, parse_principles
from iteralign.data import DataError, LoadReport, load_prompts
from iteralign.judges import PaperJudge, PolicyJudge
from iteralign.models.scripted import ScriptedModel
from iteralign.run import Manifest, RunError
from iteralign.serve import FaultPlan
from iteralign.types import GenerationParams, user

EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
json_values = st.recursive(json_scalars, lambda kids: st.lists(kids, max_size=4)
                           | st.dictionaries(st.text(max_size=8), kids, max_size=4), max_leaves=12)
yaml_values = json_values | st.sampled_from(["1e999", ".nan", "~", "[", "{a: 1}", "!!binary aGk=", "&x [*x]"])
garbage = st.binary(max_size=200) | st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe\x00", b"\x00", b"[" * 1000,
                                                     b'{"prompt": ' + b"9" * 5000 + b"}", b"\x1f\x8b\x08"])


def write(tmp: Path, name: str, data: bytes | str) -> Path:
    path = tmp / name
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
    return path


# --- run config ---------------------------------------------------------------------------------------------------

BASE = {"models": {"target": "scripted:t.yaml", "oracle": {"spec": "scripted:o.yaml", "batch_size": 4}},
        "redteam": {"sources": [{"builtin": "seeds", "limit": 8}]}, "sft": {"epochs": 1}}


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, prefix + (key,))


#: Key paths that exist in a full config, plus misspelt ones and paths into lists.
KNOWN = sorted({".".join(p) for p in _paths(RunConfig.model_validate(BASE).model_dump(mode="json")) if p})
key_paths = st.sampled_from(KNOWN) | st.builds(lambda k, junk: f"{k}.{junk}" if junk else k, st.sampled_from(KNOWN),
                                               st.sampled_from(["", "epochz", "0", "spec", "x.y"]))


def _set(data: dict, dotted: str, value) -> None:
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[last] = value


@FUZZ
@given(edits=st.lists(st.tuples(key_paths, yaml_values), min_size=1, max_size=3))
def test_config_edits_are_valid_or_a_config_error_naming_file_and_key(tmp_path, edits):
    data = copy.deepcopy(BASE)
    for key, value in edits:
        _set(data, key, value)
    path = write(tmp_path, "run.yaml", yaml.safe_dump(data, allow_unicode=True))
    try:
        load_config(path)
    except ConfigError as exc:
        message = str(exc)
        assert str(path) in message
        locs = [m.group(1) for line in message.splitlines()[1:] if (m := re.match(r"  (\S+): ", line))]
        sections = {key.split(".")[0] for key, _ in edits}
        assert locs and all(loc.split(".")[0] in sections for loc in locs), (message, edits)


@FUZZ
@given(text=st.text(max_size=300) | st.sampled_from(["models: [", "\t-", "a: *b", "%YAML 9.9\n---\n{}"]))
def test_any_config_text_is_valid_or_a_config_error(tmp_path, text):
    path = write(tmp_path, "run.yaml", text)
    with pytest.raises(ConfigError) as err:  # no text without models/redteam is a valid run config
        load_config(path)
    assert str(path) in str(err.value)


@FUZZ
@given(raw=garbage)
def test_config_bytes_and_overrides(tmp_path, raw):
    path = write(tmp_path, "run.yaml", raw)
    with pytest.raises(ConfigError):
        load_config(path)
    base = write(tmp_path, "base.yaml", yaml.safe_dump(BASE))
    override = raw.decode("utf-8", "replace")
    try:
        load_config(base, [override, "run.name=" + override[:20]])
    except ConfigError as exc:
        assert "override" in str(exc) or str(base) in str(exc)


# --- prompt files ---------------------------------------------------------------------------------------------------

jsonl_lines = st.lists(
    st.builds(lambda v: json.dumps(v).encode(), json_values)
    | st.builds(lambda v: json.dumps({"prompt": v}).encode(), json_values)
    | st.builds(lambda t: json.dumps({"text": t, "category": 3}).encode(), st.text(max_size=40))
    | garbage | st.just(b"x" * 300_000), max_size=6)


def _assert_located(exc: DataError, path: Path, n_lines: int) -> None:
    """A DataError names the file, and a line within it when it names one."""
    message = str(exc)
    assert str(path) in message, message
    tail = message.split(str(path), 1)[1]
    if tail.startswith(":") and tail[1:2].isdigit():
        assert 1 <= int(tail[1:].split(":")[0]) <= n_lines + 1, message


@FUZZ
@given(rows=jsonl_lines, bom=st.booleans())
def test_jsonl_prompt_files(tmp_path, rows, bom):
    raw = (b"\xef\xbb\xbf" if bom else b"") + b"\n".join(rows) + b"\n"
    path = write(tmp_path, "p.jsonl", raw)
    n_lines = raw.count(b"\n")
    try:
        strict = load_prompts({"path": str(path)})
    except DataError as exc:
        _assert_located(exc, path, n_lines)
        strict = None
    report = LoadReport("p")
    lenient = load_prompts({"path": str(path), "on_error": "skip"}, report)  # never raises for a bad row
    assert report.loaded + report.skipped <= n_lines and report.loaded == len(lenient)
    assert strict is None and report.skipped or strict == lenient
    assert all(p.text.strip() for p in lenient)


csv_cells = st.text(alphabet=string.printable + "\u00e9\u4e2d\x00", max_size=20)


@FUZZ
@given(header=st.lists(st.sampled_from(["prompt", "text", "goal", "x", "", "prompt"]), min_size=1, max_size=3),
       rows=st.lists(st.lists(csv_cells, max_size=4), max_size=5), tail=garbage, bom=st.booleans())
def test_csv_prompt_files(tmp_path, header, rows, tail, bom):
    body = "\n".join(",".join(r) for r in [header, *rows]).encode()
    raw = (b"\xef\xbb\xbf" if bom else b"") + body + b"\n" + tail
    path = write(tmp_path, "p.csv", raw)
    for on_error in ("raise", "skip"):
        try:
            load_prompts({"path": str(path), "on_error": on_error})
        except DataError as exc:
            _assert_located(exc, path, raw.count(b"\n"))


@FUZZ
@given(doc=json_values, fmt=st.sampled_from(["json", "nested", "dangerousqa"]))
def test_json_prompt_files(tmp_path, doc, fmt):
    path = write(tmp_path, "p.json", json.dumps(doc))
    for on_error in ("raise", "skip"):
        try:
            prompts = load_prompts({"path": str(path), "format": fmt, "on_error": on_error})
            assert all(p.text for p in prompts)
        except DataError as exc:
            _assert_located(exc, path, 1)


@pytest.mark.parametrize("name,raw", [("deep.json", b"[" * 100_000), ("int.json", b"[" + b"7" * 5000 + b"]"),
                                      ("bad.json", b'["a", "\xff"]'), ("gz.jsonl.gz", b"\x1f\x8b\x08\x00garbage"),
                                      ("field.csv", b"prompt\n" + b"x" * 200_000 + b"\n")])
def test_pathological_prompt_files(tmp_path, name, raw):
    path = write(tmp_path, name, raw)
    with pytest.raises(DataError, match=str(path)):
        load_prompts({"path": str(path)})


def test_a_huge_line_is_one_prompt(tmp_path):
    text = "why " * 1_250_000  # a 5 MB prompt on one line
    path = write(tmp_path, "huge.jsonl", json.dumps({"prompt": text}) + "\n")
    assert [len(p.text) for p in load_prompts({"path": str(path)})] == [len(text.strip())]


# --- oracle replies -------------------------------------------------------------------------------------------------

reply_parts = st.sampled_from(["1.", "2)", "(3)", "- ", "* ", "• ", "**", "__", "_", "`", "```", "#", "## Principles",
                               "Principle 4:", "Here are some principles:", "\n", "\n\n", "   ", "I'm sorry",
                               "The assistant should avoid helping with weapons or violence of any kind",
                               "Be helpful and harmless.", "\r\n", "\u2028", "\x00"])
replies = st.text(max_size=2000) | st.lists(reply_parts | st.text(max_size=20), max_size=60).map("".join)


@FUZZ
@given(reply=replies, paper=st.booleans())
def test_principle_parsing_never_raises_and_is_fast(reply, paper):
    started = time.perf_counter()
    principles = parse_principles(reply, paper_mode=paper)
    assert time.perf_counter() - started < 1.0
    assert isinstance(principles, list) and all(isinstance(p, str) and p == p.strip() and p for p in principles)
    assert len(principles) == len(set(principles))


@pytest.mark.parametrize("unit,prefix", [("_a ", ""), ("*a ", "1. "), ("**x ", ""), ("`", "")])
def test_adversarial_replies_parse_in_linear_time(unit, prefix):
    """4x the text takes about 4x the time, not 16x (a quadratic emphasis regex took a minute on 20,000 units).
    A ratio within one test, so that a busy machine does not fail it."""
    def seconds(n: int) -> float:
        started = time.perf_counter()
        parse_principles(prefix + unit * n)
        return time.perf_counter() - started

    small, large = min(seconds(5_000) for _ in range(3)), min(seconds(20_000) for _ in range(3))
    assert large < 8 * max(small, 1e-3)


@FUZZ
@given(reply=replies)
def test_verdict_parsing_always_gives_a_label(reply):
    assert PaperJudge.parse(reply) in ("aligned", "unaligned", "unknown")
    assert PolicyJudge.parse(reply) in ("aligned", "unaligned", "unknown")


# --- constitution.yaml edited by a person --------------------------------------------------------------------------

entry = st.one_of(st.text(max_size=40), st.fixed_dictionaries({}, optional={
    "id": st.text(max_size=6) | st.integers(), "text": st.text(max_size=40) | st.integers() | st.none(),
    "status": st.sampled_from(["active", "pinned", "disabled", "on"]), "iteration": st.integers(-2, 3) | st.text(),
    "uses": st.integers(-1, 3) | st.floats(), "source_failure_ids": st.lists(st.text(max_size=5)) | st.text(),
    "origin": st.sampled_from(["user", "proposed", "oracle"]), "colour": st.text(max_size=3)}), json_values)
documents = st.one_of(st.fixed_dictionaries({"principles": st.lists(entry, max_size=4)}), st.lists(entry, max_size=4),
                      yaml_values)

VALID = dumps(Constitution([]))


@FUZZ
@given(doc=documents)
def test_constitution_structures(tmp_path, doc):
    path = write(tmp_path, "constitution.yaml", yaml.safe_dump(doc, allow_unicode=True))
    try:
        store = load(path)
        assert all(p.text and p.id for p in store)
    except ConstitutionError as exc:
        assert str(exc).startswith(str(path))


@FUZZ
@given(cut=st.integers(0, 400), length=st.integers(0, 40), insert=st.text(max_size=10) | st.sampled_from(
    [":", "- ", "  ", "\t", "'", '"', "{", "&a", "*a", "!!python/object:os.system"]))
def test_constitution_hand_edits(cut, length, insert):
    from iteralign.constitution import Principle

    good = dumps(Constitution([Principle(id="P001", text="Refuse weapons instructions, offer safety resources.",
                                         source_failure_ids=["p-1"]), Principle(id="P002", text="Be brief.\nTwo lines.")]))
    text = good[:cut] + insert + good[cut + length:]
    try:
        loads(text, "edited.yaml")
    except ConstitutionError as exc:
        assert str(exc).startswith("edited.yaml"), str(exc)


def test_constitution_bytes(tmp_path):
    for raw in (b"\xff\xfe principles: []", b"principles:\n - \x00", b"principles: " + b"[" * 5000):
        with pytest.raises(ConstitutionError, match="constitution.yaml"):
            load(write(tmp_path, "constitution.yaml", raw))


# --- other files read from outside: scripted rules, fault plans, manifest, labelled judge data -----------------------

rules_docs = st.one_of(yaml_values, st.fixed_dictionaries({}, optional={
    "rules": st.lists(st.fixed_dictionaries({"match": st.text(max_size=8) | st.sampled_from(["(", "[a-", "*", "(?P<"]),
                                             "reply": st.text(max_size=20) | st.integers()}), max_size=3) | yaml_values,
    "default": st.text(max_size=10) | st.integers(), "latency_s": st.floats(-1, 0.001) | st.text(max_size=3),
    "bogus": st.integers()}))


@FUZZ
@given(doc=rules_docs, raw=garbage)
def test_scripted_rules_files(tmp_path, doc, raw):
    for data in (yaml.safe_dump(doc, allow_unicode=True).encode(), raw):
        path = write(tmp_path, "rules.yaml", data)
        try:
            model = ScriptedModel.from_file(path)
        except ValueError as exc:
            assert str(path) in str(exc)
            continue
        model.generate([user("hello {prompt} (")], GenerationParams(max_new_tokens=4))


@FUZZ
@given(doc=yaml_values | st.fixed_dictionaries({"faults": st.lists(st.integers(0, 700) | st.text(max_size=9))}),
       raw=garbage)
def test_fault_plan_files(tmp_path, doc, raw):
    for data in (yaml.safe_dump(doc).encode(), raw):
        path = write(tmp_path, "plan.yaml", data)
        try:
            FaultPlan.load(path)
        except ValueError as exc:
            assert str(path) in str(exc)


@FUZZ
@given(doc=json_values, raw=garbage)
def test_manifest_files(tmp_path, doc, raw):
    for data in (json.dumps(doc).encode(), raw):
        path = write(tmp_path, "manifest.json", data)
        try:
            manifest = Manifest(path)
        except RunError as exc:
            assert str(path) in str(exc)
            continue
        assert isinstance(manifest.stage("iter-000/judge"), dict)


@FUZZ
@given(rows=jsonl_lines)
def test_labelled_judge_data(tmp_path, rows):
    path = write(tmp_path, "labelled.jsonl", b"\n".join(rows))
    try:
        load_labelled(path)
    except CalibrationError as exc:
        assert str(path) in str(exc)
