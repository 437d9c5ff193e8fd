"""One reading of a trace (issue #16): every reader (`read_trace`, `trace show`, `trace html`, `trace otel`) goes
through `read_trace_file`; a corrupt line is an error naming its line number, skipped (and reported with its
line number) only when asked; a torn last line (a killed run) is skipped."""

from __future__ import annotations

import json
import logging

import pytest
from typer.testing import CliRunner

from sleuth.errors import ConfigError, TraceFormatError
from sleuth.records import TraceEvent, Usage
from sleuth.tracing import CallTally, read_trace, read_trace_file
from sleuth.tracing.otel import read_events
from sleuth.tracing.show import load_events

GOOD = TraceEvent(kind="llm", name="agent", run_id="x", latency_s=0.1).model_dump_json()


@pytest.fixture()
def corrupt(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(f"{GOOD}\n{GOOD}\n{{not json\n{GOOD}\n", encoding="utf-8")
    return p


@pytest.mark.parametrize("reader", [read_trace, load_events, read_events])
def test_a_corrupt_line_is_an_error_with_its_line_number(corrupt, reader):
    with pytest.raises(TraceFormatError, match=r"t\.jsonl, line 3: not a sleuth trace event \(Invalid JSON"):
        reader(corrupt)


def test_skipped_only_when_asked_and_reported(corrupt, caplog):
    got = read_trace_file(corrupt, skip_corrupt=True)
    assert len(got.events) == 3 and [s.lineno for s in got.skipped] == [3] and not got.skipped[0].torn
    assert "line 3: not a sleuth trace event" in str(got.skipped[0])
    with caplog.at_level(logging.WARNING, logger="sleuth.tracing"):
        assert len(read_trace(corrupt, skip_corrupt=True)) == 3
    assert "line 3" in caplog.text
    assert len(load_events(corrupt, skip_corrupt=True)) == len(read_events(corrupt, skip_corrupt=True)) == 3


def test_torn_last_line_is_skipped_and_listed(tmp_path):
    p = tmp_path / "torn.jsonl"
    p.write_text(f"{GOOD}\n{GOOD[:30]}", encoding="utf-8")
    got = read_trace_file(p)
    assert len(got.events) == 1 and got.skipped[0].torn and got.skipped[0].lineno == 2
    assert len(read_trace(p)) == len(load_events(p)) == len(read_events(p)) == 1


def test_missing_file_is_a_config_error(tmp_path):
    for reader in (read_trace, load_events, read_events):
        with pytest.raises(ConfigError, match="no trace file"):
            reader(tmp_path / "missing.jsonl")


def test_cli_trace_commands_skip_corrupt_on_request(app, corrupt, tmp_path):
    runner = CliRunner()
    for cmd in (["show"], ["html", "-o", str(tmp_path / "p.html")], ["otel"]):
        r = runner.invoke(app, ["trace", *cmd, str(corrupt)])
        assert r.exit_code == 2 and "line 3" in r.output, (cmd, r.output)
        r = runner.invoke(app, ["trace", *cmd, str(corrupt), "--skip-corrupt"])
        assert r.exit_code == 0, (cmd, r.output)
        assert "line 3: not a sleuth trace event" in r.stderr and "skipped" in r.stderr
    r = runner.invoke(app, ["trace", "show", str(corrupt), "--skip-corrupt", "--json"])
    assert json.loads(r.stdout)["llm_calls"] == 3


def test_call_tally_counts_every_llm_and_tool_event():
    u = Usage.one_call(10, 2, None, "local_tokenizer")
    events = [
        TraceEvent(kind="llm", name="agent", usage=u),
        TraceEvent(kind="tool", name="grep"),
        TraceEvent(kind="tool", name="answer", error="bad"),  # an error observation is still a call
        TraceEvent(kind="llm", name="agent", usage=u, error="ModelOutputError"),  # its tokens were spent
        TraceEvent(kind="node", name="run_tools"),
    ]
    t = CallTally.of(events)
    assert (t.llm_calls, t.tool_calls, t.usage.prompt_tokens, t.usage.calls) == (2, 2, 20, 2)
