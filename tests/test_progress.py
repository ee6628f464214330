"""Progress off a terminal: one log line per step with count, rate and ETA; no carriage returns from any library."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from iteralign.progress import Progress, mode


def test_off_a_terminal_each_step_is_one_log_line_with_count_rate_and_eta(monkeypatch, caplog):
    monkeypatch.delenv("ITERALIGN_PROGRESS", raising=False)
    assert mode() == "log"  # pytest captures stdout: not a terminal
    with caplog.at_level(logging.INFO, logger="iteralign.progress"), Progress(40, "replay", initial=8) as bar:
        bar.update(16)
        bar.update(16, note="loss 1.500")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("replay: 24/40 item, ") and "item/s" in lines[0] and "ETA" in lines[0]
    assert lines[1].startswith("replay: 40/40 item, ") and "took" in lines[1] and lines[1].endswith("loss 1.500")


def test_progress_can_be_forced_off_or_to_a_bar(monkeypatch, caplog):
    monkeypatch.setenv("ITERALIGN_PROGRESS", "off")
    with caplog.at_level(logging.INFO, logger="iteralign.progress"), Progress(3, "x") as bar:
        bar.update(3)
    assert not caplog.records
    monkeypatch.setenv("ITERALIGN_PROGRESS", "bar")
    assert mode() == "bar"


def test_the_cli_silences_library_bars_when_not_on_a_terminal():
    """A command run into a pipe: transformers' and tqdm's bars (gguf conversion, weight loading) draw nothing."""
    code = ("import sys; from iteralign.cli import _root; _root()\n"
            "from tqdm.auto import tqdm\n"
            "from transformers.utils import logging as tl\n"
            "list(tqdm(range(5), desc='Converting and de-quantizing GGUF tensors'))\n"
            "list(tl.tqdm(range(5), desc='Loading weights'))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM", "ITERALIGN_PROGRESS", "HF_HUB_DISABLE"))}
    for configured in (False, True):
        run = code if configured else code.replace("_root()", "pass")
        done = subprocess.run([sys.executable, "-c", run], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        drawn = "\r" in done.stderr + done.stdout or "GGUF" in done.stderr or "Loading" in done.stderr
        assert drawn != configured  # without the CLI's set-up the bars are there: the check can fail
