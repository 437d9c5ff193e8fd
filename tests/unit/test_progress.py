"""sleuth.progress: a plain line now and then with done/total, rate and time left when the stream is not a
terminal (a log file), nothing for a short job, a rich bar on a terminal, silence with progress=False."""

from __future__ import annotations

import io
import re
import time

import pytest

from sleuth.progress import progress_bar, status


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_lines_for_a_log_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEUTH_PROGRESS_INTERVAL", "0.1")
    out = io.StringIO()
    with progress_bar(100, "embedding (minilm)", True, stream=out) as bar:
        for _ in range(10):
            bar.advance(5)
            time.sleep(0.04)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 2, lines
    assert re.fullmatch(r"sleuth: embedding \(minilm\): \d+/100 \(\d+%\), [\d.,]+/s, \d+s left, \d+s elapsed", lines[0])
    assert re.fullmatch(r"sleuth: embedding \(minilm\): done 50 in \d+s \([\d.,]+/s\)", lines[-1])
    assert "\x1b[" not in out.getvalue()  # no terminal codes in a log


def test_a_job_with_no_item_done_yet_still_says_it_is_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEUTH_PROGRESS_INTERVAL", "0.05")
    out = io.StringIO()
    with status("starting the local model server (x.gguf)", stream=out):
        time.sleep(0.2)
    first = out.getvalue().splitlines()[0]
    assert first.startswith("sleuth: starting the local model server (x.gguf): 0 done") and "elapsed" in first


def test_short_jobs_and_disabled_progress_print_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLEUTH_PROGRESS_INTERVAL", "5")
    out = io.StringIO()
    with progress_bar(3, "quick", True, stream=out) as bar:
        bar.advance(3)
    with progress_bar(3, "off", False, stream=out) as bar:
        bar.advance(3)
        bar.update(total=4, description="still off")
    assert out.getvalue() == ""


def test_a_terminal_gets_a_bar_with_the_description_unmangled() -> None:
    out = FakeTTY()
    with progress_bar(4, "import corpus[1].jsonl", True, stream=out) as bar:
        bar.advance(4)
    assert "import corpus[1].jsonl" in out.getvalue() and "4/4" in out.getvalue()


def test_status_is_a_bar_without_a_total() -> None:
    with status("assembling", progress=False) as bar:
        bar.advance(1)
        assert bar.total is None and bar.completed == 1
