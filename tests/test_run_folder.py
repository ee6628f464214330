"""The run folder's building blocks: atomic writes, torn-line repair, manifest, safe names."""

from __future__ import annotations

import pytest

from iteralign.run import JsonlLog, Manifest, RunDir, RunError, atomic_write, safe_run_name


def test_torn_last_line_is_cut_and_appends_continue(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"id": "a"}\n{"id": "b"}\n{"id": "c", "resp')
    log = JsonlLog(path)
    assert log.repaired and log.done_ids == {"a", "b"}
    log.append([{"id": "c"}])
    assert path.read_text() == '{"id": "a"}\n{"id": "b"}\n{"id": "c"}\n'


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "f.json"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "", ".hidden", "x" * 200])
def test_run_names_cannot_escape_the_root(name):
    with pytest.raises(RunError):
        safe_run_name(name)


def test_manifest_stage_records_timing_and_usage(tmp_path):
    run = RunDir(tmp_path, "r1")
    counter = {"calls": 0}
    with run.stage("s", "h1", usage=lambda: counter) as info:
        counter["calls"] = 3
        info["records"] = 5
    entry = Manifest(run.path / "manifest.json").stage("s")
    assert entry["status"] == "done" and entry["usage"] == {"calls": 3} and entry["records"] == 5
    assert run.manifest.is_done("s", "h1") and not run.manifest.is_done("s", "other")


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text("{not json")
    with pytest.raises(RunError, match="corrupt manifest"):
        RunDir(tmp_path, "r")


def test_a_second_process_on_the_same_run_folder_is_refused(tmp_path):
    import subprocess
    import sys

    held = RunDir(tmp_path, "busy")
    code = f"from iteralign.run import RunDir; RunDir({str(tmp_path)!r}, 'busy')"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode != 0 and "in use by another iteralign process" in res.stderr
    del held
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0  # released with its owner
