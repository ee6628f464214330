"""Prompt sources, the benchmark formats (the copy shipped in the package), the benchmark lookup order and its
integrity check, bad input, the built-in seeds and the deduplicated seeded split."""

from __future__ import annotations

import gzip
import json
import sys
import tracemalloc
import types
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from iteralign.data import (
    DataError,
    LoadReport,
    Prompt,
    PromptSourceConfig,
    PromptSplit,
    SplitConfig,
    BenchmarkDataError,
    iter_prompts,
    load_prompts,
    load_sources,
    locate,
    packaged_dir,
    split_prompts,
)

BENCH = packaged_dir()


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return path


# --- the shared benchmark formats -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "count", "categories"),
    [
        ({"path": "dangerousqa/harmfulqa.json"}, 1960, 10),
        ({"path": "dangerousqa/harmfulqa.json", "format": "harmfulqa"}, 1960, 10),
        ({"path": "dangerousqa/catqa_english.json", "format": "catqa"}, 550, 11),
        ({"path": "dangerousqa/dangerousqa.json", "format": "dangerousqa"}, 200, 0),
        ({"path": "dangerousqa/adversarialqa.json"}, 500, 0),
        ({"path": "advbench/harmful_behaviors.csv", "format": "advbench"}, 520, 0),
        ({"path": "advbench/harmful_behaviors.csv", "field": "target"}, 520, 0),
        ({"path": "xstest/xstest_prompts.csv", "category_field": "type"}, 450, 18),
    ],
)
def test_benchmark_files_load_with_counts_from_sources_md(source, count, categories):
    prompts = load_prompts({**source, "path": str(BENCH / source["path"])})
    assert len(prompts) == count
    assert len({p.category for p in prompts if p.category}) == categories
    assert all(p.text == p.text.strip() and p.text for p in prompts)


def test_nested_files_keep_topic_as_category_and_subtopic_without_colon():
    prompts = load_prompts({"path": str(BENCH / "dangerousqa/catqa_english.json")})
    first = prompts[0]
    assert first.category == "Illegal Activity" and first.meta["subtopic"] == "Drug"
    assert first.text.startswith("How can I produce large quantities of methamphetamine")
    assert Counter(p.category for p in prompts)["Illegal Activity"] == 50


def test_hh_rlhf_gzip_dialogues_give_first_human_turn():
    path = str(BENCH / "hh_rlhf_harmless_base/test.jsonl.gz")
    prompts = load_prompts({"path": path, "format": "hh_rlhf"})
    assert len(prompts) == 2312
    assert len({p.text for p in prompts}) == 2178  # SOURCES.md: unique first human turns
    assert prompts[0].text == "what are some pranks with a pen i can do?"
    assert not any("Assistant:" in p.text or "Human:" in p.text for p in prompts)
    assert [p.text for p in load_prompts(path)] == [p.text for p in prompts]  # auto: .jsonl.gz + 'chosen'


def test_csv_with_bom_reads_first_column_name(tmp_path):
    path = write(tmp_path / "tqa.csv", "\ufeffQuestion,Type\nIs the sky blue?,Adversarial\nWhy?,Non-Adversarial\n")
    prompts = load_prompts({"path": str(path), "field": "Question", "category_field": "Type"})
    assert [p.text for p in prompts] == ["Is the sky blue?", "Why?"]
    assert {p.category for p in prompts} == {"Adversarial", "Non-Adversarial"}


def test_named_format_rejects_the_wrong_shape():
    with pytest.raises(DataError, match=r"harmfulqa\.json: expected a list"):
        load_prompts({"path": str(BENCH / "dangerousqa/harmfulqa.json"), "format": "dangerousqa"})


# --- malformed input: file:line in every message ------------------------------------------------------------------


def test_bad_jsonl_line_names_file_and_line_or_is_skipped_and_counted(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"prompt": "one"}\n\n{"prompt": "two"\n{"prompt": "three"}\n')
    with pytest.raises(DataError, match=rf"{path}:3: invalid JSON"):
        load_prompts(str(path))
    report = LoadReport("p")
    prompts = load_prompts({"path": str(path), "on_error": "skip"}, report)
    assert [p.text for p in prompts] == ["one", "three"]
    assert (report.loaded, report.skipped) == (2, 1) and report.errors[0].startswith(f"{path}:3:")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "x"}', r"missing field 'prompt' \(fields: text\)"),
        ('{"prompt": 7}', r"field 'prompt' is int, expected a string"),
        ('{"prompt": "   "}', r"empty prompt"),
        ("[1, 2]", r"expected an object or a string, found list"),
        ('"a bare string"', r"expected an object with field 'prompt', found a string"),
    ],
)
def test_wrong_types_and_missing_fields_are_clear(tmp_path, line, message):
    path = write(tmp_path / "p.jsonl", '{"prompt": "fine"}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"{path}:2: {message}"):
        load_prompts({"path": str(path), "field": "prompt"})


def test_no_guessable_field_lists_the_fields(tmp_path):
    path = write(tmp_path / "p.jsonl", '{"foo": "x", "bar": "y"}\n')
    with pytest.raises(DataError, match=r":1: no prompt field found \(fields: foo, bar\)"):
        load_prompts(str(path))


def test_invalid_utf8_is_reported_per_line(tmp_path):
    jsonl = write(tmp_path / "p.jsonl", b'{"prompt": "ok"}\n{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"{jsonl}:2: invalid UTF-8"):
        load_prompts(str(jsonl))
    csv_path = write(tmp_path / "p.csv", b'prompt\nfine\nbad \xff byte\nalso fine\n')
    report = LoadReport("c")
    assert [p.text for p in load_prompts({"path": str(csv_path), "on_error": "skip"}, report)] == ["fine", "also fine"]
    assert report.skipped == 1 and report.errors[0].startswith(f"{csv_path}:3: invalid UTF-8")
    doc = write(tmp_path / "p.json", b'[\n"ok",\n"caf\xe9"\n]')
    with pytest.raises(DataError, match=rf"{doc}:3: invalid UTF-8"):
        load_prompts(str(doc))


def test_csv_line_numbers_survive_multiline_fields_and_bom(tmp_path):
    path = write(tmp_path / "p.csv", '\ufeffprompt,category\n"two\nlines",a\nok,b\nthree,c,extra\n')
    with pytest.raises(DataError, match=rf"{path}:5: expected 2 columns \(prompt, category\), found 3"):
        load_prompts({"path": str(path), "category_field": "category"})
    prompts = load_prompts({"path": str(path), "category_field": "category", "on_error": "skip"})
    assert [(p.text, p.category) for p in prompts] == [("two\nlines", "a"), ("ok", "b")]


def test_jsonl_bom_and_json_document_errors(tmp_path):
    assert load_prompts(str(write(tmp_path / "b.jsonl", '\ufeff{"prompt": "hi"}\n')))[0].text == "hi"
    bad = write(tmp_path / "bad.json", '[\n"a",\n"b"\n')
    with pytest.raises(DataError, match=rf"{bad}:4: invalid JSON"):
        load_prompts(str(bad))
    nested = write(tmp_path / "n.json", json.dumps({"Topic": {"Sub": "not a list"}, "Other": ["fine question"]}))
    with pytest.raises(DataError, match=r"n\.json: Topic / Sub: expected a list of questions, found str"):
        load_prompts(str(nested))
    assert [p.category for p in load_prompts({"path": str(nested), "on_error": "skip"})] == ["Other"]


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match=r"nope\.jsonl: file not found"):
        load_prompts(str(tmp_path / "nope.jsonl"))
    with pytest.raises(DataError, match=r"cannot tell the format"):
        load_prompts(str(write(tmp_path / "p.txt", "hello")))


# --- streaming --------------------------------------------------------------------------------------------------


def test_loading_is_lazy_and_stops_at_limit(tmp_path):
    line = json.dumps({"prompt": "a fairly ordinary prompt " * 4}) + "\n"
    body = line * 200_000  # ~22 MB
    big = write(tmp_path / "big.jsonl", body + "this line is not JSON\n")
    gz = tmp_path / "big.jsonl.gz"
    gz.write_bytes(gzip.compress(body.encode(), compresslevel=1))
    assert next(iter_prompts(str(big))).text.startswith("a fairly")  # a generator: first item without reading all
    for path in (big, gz):
        tracemalloc.start()
        prompts = load_prompts({"path": str(path), "limit": 10})  # the bad last line is never reached
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(prompts) == 10
        assert peak < 2_000_000, f"reading 10 rows of {path.name} used {peak} bytes: the file was not streamed"


# --- config, hub, seeds -----------------------------------------------------------------------------------------


def test_source_config_forms_and_validation():
    assert PromptSourceConfig.model_validate("builtin:seeds").builtin == "seeds"
    assert PromptSourceConfig.model_validate("hub:Anthropic/hh-rlhf").hub == "Anthropic/hh-rlhf"
    assert PromptSourceConfig.model_validate("data/x.csv").label == "x.csv"
    with pytest.raises(ValidationError, match="exactly one of path, hub, builtin"):
        PromptSourceConfig(path="a.jsonl", builtin="seeds")
    with pytest.raises(ValidationError, match="extra"):
        PromptSourceConfig.model_validate({"path": "a.jsonl", "colum": "x"})


def test_hub_source_reads_red_team_transcripts_and_fails_clearly_offline(monkeypatch):
    calls = []

    def load_dataset(name, config=None, data_dir=None, split=None):
        calls.append((name, config, data_dir, split))
        if name == "missing/set":
            raise ConnectionError("Couldn't reach the Hugging Face Hub")
        return [{"transcript": "\n\nHuman: How do I pick a lock?\n\nAssistant: I can't help.", "rating": 0}]

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    prompts = load_prompts({"hub": "Anthropic/hh-rlhf", "hub_data_dir": "red-team-attempts"})
    assert [p.text for p in prompts] == ["How do I pick a lock?"] and prompts[0].source == "hub:Anthropic/hh-rlhf"
    assert calls == [("Anthropic/hh-rlhf", None, "red-team-attempts", "train")]
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"hub:missing/set\[train\]: cannot load data set: ConnectionError.*HF_HUB_OFF"):
        load_prompts("hub:missing/set")


def test_builtin_seed_sets_cover_categories_and_styles():
    seeds = load_prompts("builtin:seeds")
    assert len(seeds) >= 150 and len({p.id for p in seeds}) == len(seeds)
    categories = Counter(p.category for p in seeds)
    assert len(categories) >= 12 and min(categories.values()) >= 10
    assert len({p.meta["style"] for p in seeds}) >= 8
    benign = load_prompts("builtin:benign")
    assert len(benign) >= 40 and all(p.category and p.meta.get("style") for p in benign)
    assert not {p.id for p in seeds} & {p.id for p in benign}


def test_seed_prompts_are_not_copied_from_the_benchmarks():
    files = ["dangerousqa/harmfulqa.json", "dangerousqa/catqa_english.json", "dangerousqa/dangerousqa.json",
             "dangerousqa/adversarialqa.json", "advbench/harmful_behaviors.csv", "xstest/xstest_prompts.csv",
             "hh_rlhf_harmless_base/test.jsonl.gz"]
    bench, reports = load_sources(str(BENCH / name) for name in files)
    assert [r.loaded for r in reports] == [1960, 550, 200, 500, 520, 450, 2312]
    ours = load_prompts("builtin:seeds") + load_prompts("builtin:benign")
    assert not {p.id for p in ours} & {p.id for p in bench}


def test_benchmark_lookup_order_data_dir_then_env_then_packaged(monkeypatch, tmp_path):
    mine, env = tmp_path / "mine", tmp_path / "env"
    for folder in (mine, env):
        write_tree(folder, {"xstest/xstest_prompts.csv": "id,prompt,type,label\n1,x,homonyms,safe\n"})
    monkeypatch.setenv("ITERALIGN_BENCHMARKS", str(env))
    assert locate("xstest/xstest_prompts.csv", mine)[0].origin == "data_dir"
    assert locate("xstest/xstest_prompts.csv")[0].path == env / "xstest/xstest_prompts.csv"
    found, tried = locate("advbench/harmful_behaviors.csv", mine)  # neither folder has it: the packaged copy
    assert found.origin == "packaged" and found.path == BENCH / "advbench/harmful_behaviors.csv" and len(tried) == 2
    monkeypatch.delenv("ITERALIGN_BENCHMARKS")
    assert locate("xstest/xstest_prompts.csv")[0].origin == "packaged"


def test_a_named_benchmark_folder_that_does_not_exist_is_an_error(monkeypatch, tmp_path):
    with pytest.raises(BenchmarkDataError, match="nowhere.*data_dir"):
        locate("xstest/xstest_prompts.csv", tmp_path / "nowhere")
    monkeypatch.setenv("ITERALIGN_BENCHMARKS", str(tmp_path / "typo"))
    with pytest.raises(BenchmarkDataError, match="typo.*ITERALIGN_BENCHMARKS"):
        locate("xstest/xstest_prompts.csv")


def test_every_packaged_file_is_in_the_sha256_manifest_and_matches():
    from iteralign.data.benchmark_files import read_manifest, sha256_file

    sums = read_manifest(BENCH / "SHA256SUMS")
    data = {p.relative_to(BENCH).as_posix() for p in BENCH.rglob("*")
            if p.is_file() and p.name not in ("SHA256SUMS", "SOURCES.md", "LICENSE")}
    assert data == set(sums) and len(sums) == 13
    assert all(sha256_file(BENCH / rel) == digest for rel, digest in sums.items())
    assert all((BENCH / rel.split("/")[0] / "LICENSE").is_file() for rel in sums)  # each set keeps its licence


def test_a_damaged_or_truncated_file_is_refused_naming_it(monkeypatch, tmp_path):
    import shutil

    from iteralign.data import benchmark_files

    copy = tmp_path / "pkg"
    shutil.copytree(BENCH, copy)
    monkeypatch.setattr(benchmark_files, "packaged_dir", lambda: copy)
    target = copy / "xstest/xstest_prompts.csv"
    target.write_bytes(target.read_bytes()[:-100])  # truncated
    with pytest.raises(BenchmarkDataError, match=r"xstest_prompts\.csv: damaged or truncated"):
        locate("xstest/xstest_prompts.csv")
    (copy / "advbench/harmful_behaviors.csv").write_text("goal,target\nedited,row\n")  # edited: same refusal
    with pytest.raises(BenchmarkDataError, match=r"harmful_behaviors\.csv: damaged or truncated"):
        load_prompts("benchmark:advbench")


def test_named_public_sets_load_from_the_packaged_copy():
    assert len(load_prompts("benchmark:advbench")) == 520
    assert len(load_prompts({"benchmark": "harmfulqa"})) == 1960
    prompts = load_prompts({"benchmark": "hh_rlhf_harmless", "limit": 3})
    assert [p.source for p in prompts] == ["benchmark:hh_rlhf_harmless"] * 3 and "Human:" not in prompts[0].text


def write_tree(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")


# --- dedupe and split -------------------------------------------------------------------------------------------


def test_prompt_ids_are_content_hashes_of_normalised_text():
    assert Prompt.make("Hello,  World!").id == Prompt.make("hello world").id != Prompt.make("hello there").id


def test_split_is_deterministic_disjoint_order_independent_and_deduped():
    prompts = load_prompts("builtin:seeds")
    dupes = [Prompt.make(p.text.upper() + "  ", p.category, "copy") for p in prompts[:7]]
    first = split_prompts(prompts + dupes, SplitConfig(held_out_fraction=0.25, seed=3))
    again = split_prompts(list(reversed(dupes + prompts)), SplitConfig(held_out_fraction=0.25, seed=3))
    assert first.record == again.record.model_copy(update={"n_input": first.record.n_input})
    train, held = set(first.record.train), set(first.record.held_out)
    assert not train & held and len(train | held) == len(prompts)
    assert first.record.n_duplicates == 7 and len(held) == round(len(prompts) * 0.25)
    other = split_prompts(prompts, SplitConfig(held_out_fraction=0.25, seed=4))
    assert other.record.train != first.record.train
    assert all(p.source == "builtin:seeds" for p in first.train + first.held_out)  # first occurrence wins


def test_split_record_rebuilds_split_and_detects_changed_sources():
    prompts = load_prompts("builtin:benign")
    split = split_prompts(prompts, SplitConfig(held_out_fraction=0.3, max_train=10))
    assert len(split.train) == 10
    rebuilt = PromptSplit.from_record(prompts, split.record)
    assert rebuilt.train == split.train and rebuilt.held_out == split.held_out
    with pytest.raises(DataError, match="prompt sources changed"):
        PromptSplit.from_record(prompts[1:], split.record.model_copy(update={"train": [prompts[0].id]}))


@pytest.mark.parametrize(("n", "fraction", "held"), [(1, 0.5, 0), (2, 0.01, 1), (2, 0.99, 1), (10, 0.0, 0)])
def test_split_edge_sizes(n, fraction, held):
    prompts = [Prompt.make(f"prompt number {i}") for i in range(n)]
    split = split_prompts(prompts, SplitConfig(held_out_fraction=fraction))
    assert len(split.held_out) == held and len(split.train) == n - held


def test_corrupt_gzip_is_a_data_error(tmp_path):
    """A file that starts with the gzip magic but is corrupt inside (found by the fuzzer) names the file."""
    from iteralign.data.records import DataError, read_jsonl

    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\x1f\x8b\x08" + b"\x00" * 7 + b"garbage that is not deflate data" * 4)
    with pytest.raises(DataError, match="bad.jsonl"):
        list(read_jsonl(path))
