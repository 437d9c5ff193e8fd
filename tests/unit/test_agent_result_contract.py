"""The result contract of a run and of `sleuth ask` (issue #20): ``answer`` is the model's answer or null; without
one, ``stop_reason`` and a human ``note`` say why, `sleuth ask` exits 3, and the trace page and `trace show` say
"no answer". The run's counts (``ask --json``) and the trace's counts (``trace show``/``html``) are one count.

The demo failure replayed with a scripted model over the real sample corpus and sleuth's default tools: react
makes one grep three times, stops on ``budget:repeats``, and the final answer call parrots the instruction."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from sleuth.agents import Agent, AgentConfig, Budget
from sleuth.agents.state import AgentResult
from sleuth.cli.ask_cmds import NO_ANSWER_EXIT
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tools import corpus_tools
from sleuth.tracing import MemoryTracer, read_trace
from sleuth.tracing.html import write_html
from sleuth.tracing.show import summarize

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
PARROT = tool("answer", answer="Stop searching (repeats limit reached). Question: Where was", doc_ids=[])


def _demo_model() -> ScriptedModel:
    return ScriptedModel([tool("grep", pattern="Kestrel")] * 3 + [PARROT])


@pytest.fixture()
def ask_demo(app, sample_corpus, tmp_path, monkeypatch):
    from sleuth.agents import defaults

    def run(*extra: str):
        model = _demo_model()
        monkeypatch.setattr(defaults, "resolve_model", lambda m: (model, False))
        monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
        return CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "react", *extra])

    return run


def test_a_run_without_an_answer_says_so(ask_demo):
    r = ask_demo("--json")
    assert r.exit_code == NO_ANSWER_EXIT == 3, r.output
    out = json.loads(r.output)
    assert out["answer"] is None and out["doc_ids"] == [] and out["answered_by"] == "none"
    assert out["stop_reason"] == "budget:repeats"
    assert out["note"].startswith("The model made the same tool call again and again")
    assert "repeated the instructions" in out["note"]
    for prompt_text in ("You already made this exact call", "Stop searching", "matching lines"):
        assert prompt_text not in out["note"]
    # the trace says the same: no answer, and the same counts as --json (3 greps + the rejected answer call)
    events = read_trace(out["trace"])
    s = summarize(events)
    assert s["answer"] is None and s["note"] == out["note"] and s["stop_reason"] == "budget:repeats"
    assert (s["tool_calls"], s["llm_calls"]) == (out["tool_calls"], out["llm_calls"]) == (4, 4)
    assert s["usage"]["prompt_tokens"] == out["usage"]["prompt_tokens"]
    [end] = [e for e in events if e.kind == "answer"]
    assert end.data["answer"] is None and end.name == "none" and end.preview.startswith("no answer: ")


def test_trace_page_and_terminal_show_no_answer(ask_demo, app, tmp_path):
    r = ask_demo("--json")
    trace = json.loads(r.output)["trace"]
    page = write_html(trace, tmp_path / "t.html").read_text(encoding="utf-8")
    result = page.split('<div class="result', 1)[1].split("</div></div>", 1)[0]
    assert result.startswith(' none"') and '<div class="noanswer">no answer</div>' in result
    assert 'class="answer"' not in result and "Stop searching" not in result
    assert '<div class="card" data-tool-calls="4"><div class="k">tool calls</div><div class="v">4</div>' in page
    assert '<div class="card" data-llm-calls="4"><div class="k">LLM calls</div><div class="v">4</div>' in page
    shown = CliRunner().invoke(app, ["trace", "show", trace])
    assert shown.exit_code == 0 and "no answer" in shown.output and "answer Stop searching" not in shown.output


def test_cli_text_output_and_exit_code(ask_demo):
    r = ask_demo("--quiet")
    assert r.exit_code == 3
    assert "no answer (budget:repeats)" in " ".join(r.output.split())
    assert "Stop searching" not in r.output


def test_answered_run_exits_0_with_a_null_note(app, sample_corpus, tmp_path, monkeypatch):
    from sleuth.agents import defaults

    model = ScriptedModel([tool("grep", pattern="Okafor was born"),
                           tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    monkeypatch.setattr(defaults, "resolve_model", lambda m: (model, False))
    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    r = CliRunner().invoke(app, ["ask", QUESTION, "--corpus", str(sample_corpus), "--agent", "react", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["answer"] == "Saltmarsh" and out["note"] == "" and out["tool_calls"] == 2
    assert summarize(read_trace(out["trace"]))["tool_calls"] == 2


def test_ask_help_documents_the_exit_codes(app):
    r = CliRunner().invoke(app, ["ask", "--help"])
    assert "Exit code 3" in " ".join(r.output.split())


def test_an_answer_that_repeats_the_instructions_goes_back_to_the_model(sample_corpus):
    """Not only the final call: an `answer` during the search that parrots a prompt is an observation."""
    corpus = Corpus(sample_corpus)
    parrot = tool("answer", answer="You did not call a tool. Call a tool, or call answer", doc_ids=[])
    model = ScriptedModel([parrot, tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR])])
    agent = Agent(AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus), agent="react")
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.steps == 2
    obs = [m["content"] for m in model.calls[1]["messages"] if m["role"] == "tool"]
    assert "repeats the instructions" in obs[-1]
    assert result.tool_calls == len(tracer.of_kind("tool")) == 2


def test_forced_text_that_parrots_is_no_answer(sample_corpus):
    corpus = Corpus(sample_corpus)
    model = ScriptedModel([tool("read", doc_id=OKAFOR), "Stop searching (steps limit reached). Question: Where"])
    agent = Agent(
        AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus, budget=Budget(max_steps=1)),
        agent="react",
    )
    result = agent.run(QUESTION)
    assert result.answer is None and result.stop_reason == "budget:steps"
    assert "repeated the instructions" in result.note and OKAFOR in result.note


def test_result_from_an_old_checkpoint_with_a_fallback_text_is_no_answer():
    state = {"question": "q", "answer": "No answer: the steps budget ran out. Last evidence seen: x",
             "answered_by": "fallback", "stop_reason": "budget:steps", "doc_ids": ["a.txt"]}
    r = AgentResult.from_state("r", state, 0.0, None)
    assert r.answer is None and r.answered_by == "none" and r.doc_ids == [] and r.note.startswith("No answer")
