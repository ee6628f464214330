"""The run report: rendered from a real run folder (the smoke run, copied into tests/data) and from a synthetic one,
checked by parsing the HTML; then opened in headless Chromium (skipped, with the reason, where it is not installed).
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from iteralign.cli import app
from iteralign.constitution import load
from iteralign.report import browser, collect, render_report
from iteralign.report.collect import MAX_EXAMPLES
from iteralign.report.html import OPEN_EXAMPLES
from iteralign.report.synthetic import write_run
from iteralign.run import read_jsonl

SMOKE = Path(__file__).parent / "data" / "report_run"


class Page(HTMLParser):
    """What the report tests look at: tables (rows of cell texts), images, every URL, and text inside or outside
    ``<details>``."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.images: list[str] = []
        self.urls: list[str] = []
        self.ids: list[str] = []
        self.hidden: list[str] = []  # text inside a (closed by default) <details>
        self.visible: list[str] = []
        self.open_details = 0
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "details":
            assert "open" not in a, "details must start collapsed"
            self.open_details += 1
        elif tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(a["src"])

    def handle_endtag(self, tag):
        if tag == "details":
            self.open_details -= 1
        elif tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        (self.hidden if self.open_details else self.visible).append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table_with(self, header: str) -> list[list[str]]:
        return next(t for t in self.tables if t and header in t[0])

    @property
    def text(self) -> str:
        return " ".join(self.visible + self.hidden)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("report") / "smoke"
    shutil.copytree(SMOKE, path)
    render_report(path)
    return path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    path = write_run(tmp_path_factory.mktemp("report") / "synthetic", iterations=3, records=200)
    # ledger.json as iteralign.ledger writes it: run totals priced per model (gpt-4o at $0.0025 / $0.01 per 1k).
    gpt = {"calls": 120, "cache_hits": 7, "prompt_tokens": 90_000, "completion_tokens": 12_000,
           "cost_usd": 90 * 0.0025 + 12 * 0.01}
    local = {"calls": 600, "cache_hits": 0, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    spent = {k: gpt[k] + local[k] for k in gpt} | {"tokens": 102_000, "unpriced": [],
                                                   "models": {"openai:gpt-4o": gpt, "hf:demo/tiny-chat": local}}
    (path / "ledger.json").write_text(json.dumps({"sessions": 1, "stopped": None, "run": spent, "stages": {}}))
    render_report(path)
    return path


def page(path: Path) -> Page:
    return Page((path / "report.html").read_text(encoding="utf-8"))


def decode_png(uri: str):
    from PIL import Image

    assert uri.startswith("data:image/png;base64,"), uri[:40]
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("L")


def test_smoke_report_has_tables_principles_plots(smoke: Path) -> None:
    p = page(smoke)
    manifest = json.loads((smoke / "manifest.json").read_text())
    its = p.table_with("failure rate")
    assert [row[0] for row in its[1:]] == [str(s["iteration"]) for s in manifest["iterations"]]
    head = its[0]
    first = dict(zip(head, its[1]))
    assert first["failure rate"].startswith(f"{manifest['iterations'][0]['failure_rate'] * 100:.1f}%")
    assert int(first["harmful answered"]) + int(first["benign refused"]) <= int(first["failures"])
    verdicts = [json.loads(line)["verdict"] for line in (smoke / "iter-000" / "verdicts.jsonl").open()]
    assert int(first["benign refused"]) == sum(v["failure"] == "refused_benign" for v in verdicts)
    kinds = {pr.polarity for pr in load(smoke / "constitution.yaml")}
    html = (smoke / "report.html").read_text()
    assert all(f'<span class="badge {kind}">{kind}</span>' in html for kind in kinds)  # each principle's kind
    cost = p.table_with("model calls")
    stages = [k for k in manifest["stages"] if k not in ("final", "prompts")]
    assert [row[0] for row in cost[1:-1]] == stages and cost[-1][0] == "total"
    assert int(cost[-1][3].replace(",", "")) == sum(manifest["stages"][k]["usage"]["calls"] for k in stages)
    for principle in load(smoke / "constitution.yaml"):
        assert principle.id in p.text and principle.text in p.text
    assert len(p.images) >= 3  # failure rate, per-category, SFT loss (this run has no eval)
    for uri in p.images:
        img = decode_png(uri)
        lo, hi = img.getextrema()
        assert img.width > 200 and img.height > 100 and hi - lo > 100, "plot is blank"
    assert {"iterations", "categories", "constitution", "examples", "gate", "cost", "config"} <= set(p.ids)


def test_report_is_self_contained(smoke: Path) -> None:
    p = page(smoke)
    external = [u for u in p.urls if not u.startswith(("#", "data:"))]
    assert not external, external
    html = (smoke / "report.html").read_text()
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_examples_hide_harmful_text_and_show_tuned_answer(smoke: Path) -> None:
    p = page(smoke)
    hidden, visible = " ".join(p.hidden), " ".join(p.visible)
    nxt = {r["id"]: r["response"] for r in read_jsonl(smoke / "iter-001" / "redteam.jsonl")}
    revisions = read_jsonl(smoke / "iter-000" / "revisions.jsonl")
    for n, rev in enumerate(revisions[:MAX_EXAMPLES]):
        original = rev["answer"]["response"]
        assert original in hidden and original not in visible  # judged unaligned: collapsed
        shown = visible if n < OPEN_EXAMPLES else hidden  # later examples sit behind one "show more"
        assert rev["text"] in shown
        assert nxt[rev["id"]] in shown  # the tuned model's answer, judged aligned in iter-001
    md = (smoke / "report.md").read_text()
    assert "<details><summary>Original answer (unaligned" in md


def test_markdown_report_matches(smoke: Path) -> None:
    md = (smoke / "report.md").read_text()
    for principle in load(smoke / "constitution.yaml"):
        assert principle.id in md and principle.text in md
    assert "## Iterations" in md and "91.7%" in md and "## Configuration" in md


def test_benchmarks_deltas_gate_and_ledger(synthetic: Path) -> None:
    p = page(synthetic)
    run = collect(synthetic)
    bench = p.table_with("benchmark")
    assert bench[0][2:] == ["baseline", "iter-000", "iter-001", "iter-002"]
    for row in bench[1:]:
        name = row[0].rstrip(" ↓")
        base = run.evaluations[0].benchmarks[name]
        assert row[2] == f"{base['score']:.3f} ± {base['stderr']:.3f}"
        last = run.evaluations[-1].benchmarks[name]["score"]
        assert row[-1].endswith(f"{(last - base['score']) * 100:+.1f} pp") or abs(last - base["score"]) < 1e-9
    html = (synthetic / "report.html").read_text()
    assert 'class="good"' in html and 'class="bad"' in html  # coloured deltas
    gate = p.table_with("decision")
    summary = json.loads((synthetic / "iter-001" / "summary.json").read_text())
    assert not summary["accepted"] and gate[2][1] == "rejected" and summary["gate_reasons"][0] in gate[2][2]
    assert len(p.images) == 4  # failure rate, benchmarks, per-category ASR, SFT loss
    assert "ASR" in p.text or "Attack success" in p.text
    assert "$0.345" in p.text  # 90k * 0.0025 / 1k + 12k * 0.01 / 1k, from the ledger
    assert any("openai:gpt-4o" in row[0] for t in p.tables for row in t)


def test_examples_are_capped_on_big_runs(synthetic: Path) -> None:
    run = collect(synthetic)
    for it, items in run.examples.items():
        assert len(items) == min(MAX_EXAMPLES, run.example_counts[it])
        assert len({ex.category for ex in items}) == len({r["prompt"]["category"] for r in read_jsonl(
            synthetic / f"iter-{it:03d}" / "redteam.jsonl")})  # spread over every category
    assert f"{MAX_EXAMPLES} of {run.example_counts[0]} revisions shown" in page(synthetic).text


def test_cli_report_and_compare(smoke: Path, synthetic: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["report", str(synthetic)])
    assert result.exit_code == 0 and "report.html" in result.output
    assert runner.invoke(app, ["report", str(tmp_path)]).exit_code == 2
    out = tmp_path / "cmp.html"
    result = runner.invoke(app, ["compare", str(smoke), str(synthetic), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "| red-team failure rate, first iteration | 91.7% | " in result.output
    table = Page(out.read_text()).table_with("metric")
    assert table[0][1:] == ["A: smoke", "B: synthetic", "B − A"]
    assert any(row[0].startswith("redteam_asr") for row in table)


def test_loop_writes_the_html_report(tmp_path: Path) -> None:
    """A live loop run (all scripted, no SFT) ends with report.html: every principle, the iteration rows, plots."""
    from loop_helpers import scripted_config

    from iteralign.config import load_config
    from iteralign.loop import run_loop

    run = run_loop(load_config(scripted_config(tmp_path)))
    p = page(run)
    for principle in load(run / "constitution.yaml"):
        assert principle.text in p.text
        assert f"guided {principle.uses} revision(s)" in p.text
    assert len(p.table_with("failure rate")) == 1 + len(json.loads((run / "manifest.json").read_text())["iterations"])
    assert p.images and all(decode_png(uri).getextrema()[1] > 0 for uri in p.images)


def test_report_of_a_run_in_progress(tmp_path: Path) -> None:
    """A run killed in its first stage: no summary, verdicts, constitution or eval yet; the report still renders."""
    run = tmp_path / "early"
    (run / "iter-000").mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"stages": {"iter-000/redteam": {"status": "running"}}}))
    shutil.copy(SMOKE / "iter-000" / "redteam.jsonl", run / "iter-000" / "redteam.jsonl")
    p = Page(render_report(run).read_text())
    assert p.table_with("model calls")[1][:2] == ["iter-000/redteam", "running"]
    assert "No principles yet." in p.text and not p.images


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = browser.find_chromium()
    if exe is None:
        pytest.skip("chromium is not installed (Debian: scripts/install-chromium.sh, run by `make test`); "
                    "the browser check of the report needs it")
    return exe


def test_console_check_catches_errors(chromium: str, tmp_path: Path) -> None:
    """Negative control: a page with a script error must be caught by the console scan the next test relies on."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p>x</p><script>console.error('boom'); notDefined();</script></body></html>")
    run = browser.screenshot(bad, tmp_path / "bad.png", 400, 300)
    assert any("Uncaught ReferenceError" in line for line in run.console), run.console


def test_report_renders_in_chromium(chromium: str, synthetic: Path, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    png = tmp_path / "shot.png"
    run = browser.screenshot(synthetic / "report.html", png, 1280, 2000)
    assert run.returncode == 0 and png.exists()
    assert run.console == []
    img = Image.open(png).convert("L")
    assert img.size == (1280, 2000)
    stat = ImageStat.Stat(img)
    assert stat.stddev[0] > 20, "screenshot is (nearly) uniform: the page did not render"
    dark = sum(img.histogram()[:128]) / (img.width * img.height)
    assert dark > 0.02  # text, the header band and plot lines
