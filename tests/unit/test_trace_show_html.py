"""`sleuth trace show | html` on a trace written by a real (scripted-model) agent run, and `sleuth ask` itself."""

from __future__ import annotations

import html as htmlmod
import json
import re

import pytest
from typer.testing import CliRunner

from sleuth.agents import Budget
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.records import TraceEvent
from sleuth.tracing.html import render_html, write_html
from sleuth.tracing.show import load_events, render, summarize

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"


@pytest.fixture()
def trace_file(react_trace):
    return react_trace("Saltmarsh <b>")


def test_summary_totals_match_the_llm_events(trace_file):
    events = load_events(trace_file)
    s = summarize(events)
    llm = [e for e in events if e.kind == "llm"]
    assert s["llm_calls"] == 4 and s["tool_calls"] == 4 and s["errors"] == 1
    assert s["usage"]["prompt_tokens"] == sum(e.usage.prompt_tokens for e in llm) > 0
    assert s["answer"] == "Saltmarsh <b>" and s["doc_ids"] == [OKAFOR] and s["stop_reason"] == "answered"


def test_terminal_timeline(trace_file):
    from rich.console import Console

    console = Console(record=True, width=120)
    render(load_events(trace_file), console)
    text = console.export_text()
    assert "call_model/agent" in text and "run_tools/grep" in text
    assert "unknown tool 'nope'" in text
    assert "answer Saltmarsh <b>" in text and "docs: people/bram_okafor.md" in text
    assert re.search(r"tokens prompt \d+, completion \d+", text)


def test_html_is_self_contained_and_escaped(trace_file, tmp_path):
    out = write_html(trace_file, tmp_path / "page.html")
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<details") == len(load_events(trace_file))  # one expandable step per event
    assert "Saltmarsh &lt;b&gt;" in page and "Saltmarsh <b>" not in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from the network
    assert "<script src" not in page and "<link" not in page
    # the arguments and results are in the page (expanded view)
    assert htmlmod.escape('"pattern": "Kestrel"') in page


def test_html_of_a_torn_trace(tmp_path):
    path = tmp_path / "t.jsonl"
    ev = TraceEvent(kind="llm", name="agent", run_id="x").model_dump_json()
    path.write_text(ev + "\n" + ev[:30], encoding="utf-8")  # a killed run's last line is cut
    assert "<details" in render_html(load_events(path))


def test_cli_trace_show_and_html(app, trace_file, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["trace", "show", str(trace_file)])
    assert r.exit_code == 0, r.output
    assert "Saltmarsh" in r.output
    r = runner.invoke(app, ["trace", "show", str(trace_file), "--json"])
    assert json.loads(r.output)["answer"] == "Saltmarsh <b>"
    r = runner.invoke(app, ["trace", "html", str(trace_file), "-o", str(tmp_path / "x.html"), "--json"])
    assert r.exit_code == 0 and (tmp_path / "x.html").exists()
    r = runner.invoke(app, ["trace", "show", str(tmp_path / "missing.jsonl"), "--json"])
    assert r.exit_code == 2 and "no trace file" in json.loads(r.output)["message"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    r = runner.invoke(app, ["trace", "html", str(bad), "--json"])
    assert r.exit_code == 2 and "bad.jsonl, line 1: not a sleuth trace event" in json.loads(r.output)["message"]


def test_cli_ask_json(app, sample_corpus, tmp_path, monkeypatch):
    from sleuth.agents import defaults

    model = ScriptedModel([tool("grep", pattern="Okafor was born"), tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    monkeypatch.setattr(defaults, "resolve_model", lambda m: (model, False))
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "react", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["answer"] == "Saltmarsh" and out["doc_ids"] == [OKAFOR]
    assert out["usage"]["prompt_tokens"] > 0 and out["usage"]["cost"] == "unmeasured"
    events = load_events(out["trace"])
    assert summarize(events)["usage"]["prompt_tokens"] == out["usage"]["prompt_tokens"]
    assert out["trace"].startswith(str(tmp_path / "home" / "runs"))


def test_cli_ask_bad_input(app, sample_corpus, tmp_path, monkeypatch):
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    r = runner.invoke(app, ["ask", "q", "--corpus", str(sample_corpus), "--agent", "magic", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "ConfigError"
    r = runner.invoke(app, ["ask", "q", "--corpus", str(tmp_path / "nowhere"), "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "CorpusNotFoundError"
    r = runner.invoke(app, ["ask", "--corpus", str(sample_corpus), "--json"])
    assert r.exit_code == 2 and "no question" in json.loads(r.output)["message"]
    r = runner.invoke(app, ["ask", "q", "--corpus", str(sample_corpus), "--budget", "steps=0", "--json"])
    assert r.exit_code == 2 and json.loads(r.output)["error"] == "ConfigError"


def test_budget_parse():
    b = Budget.parse("steps=3, tokens=none, seconds=5.5, cost=0.01")
    assert (b.max_steps, b.max_tokens, b.max_seconds, b.max_cost_usd) == (3, None, 5.5, 0.01)
    from sleuth.errors import ConfigError

    for bad in ("steps", "loops=3", "steps=-1", "tokens=abc"):
        with pytest.raises(ConfigError):
            Budget.parse(bad)
