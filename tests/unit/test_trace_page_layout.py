"""The trace page rendered in headless Chromium: no overlapping boxes among the waterfall's rows and cells, no
clipped numbers, nothing wider than the viewport at 1400 and 800 px (rows collapsed and all open); its counts are
the run's own (``AgentResult``, what ``sleuth ask --json`` prints); a run without an answer says "no answer".

Skips when no Chromium is installed (``apt-get install chromium``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sleuth.agents import Agent, AgentConfig, Budget
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel, tool
from sleuth.tools import corpus_tools
from sleuth.tracing.html import write_html
from sleuth.tracing.tracer import JSONLTracer
from tests.unit.page_layout import chromium, layout

pytestmark = pytest.mark.skipif(
    chromium() is None, reason="no Chromium found (chromium, chromium-browser, google-chrome): apt-get install chromium"
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "corpus"
OKAFOR = "people/bram_okafor.md"
QUESTION = "Where was the designer of the Kestrel Bridge born?"
GROUPS = [
    (".wf", "details.row > summary"),  # rows never overlap one another
    ("details.row > summary", ".label, .tok, .sec, .track"),  # nor do a row's cells
    (".label", ".badge, .name, .hint"),
    (".axis", "span"),  # the time axis' tick labels
    (".cards", ".card"),
]
NO_CLIP = ".tok, .sec, .card .v, .badge"


def _run(tmp_path: Path, script: list, name: str, *, content: bool = True, budget: Budget | None = None):
    corpus = Corpus(EXAMPLES)
    cfg = AgentConfig(model=ScriptedModel(script), toolkit=corpus_tools(corpus), corpus=corpus)
    if budget is not None:
        cfg.budget = budget
    trace = tmp_path / f"{name}.jsonl"
    with JSONLTracer(trace, run_id=name, capture_content=content) as tr:
        result = Agent(cfg, agent="react").run(QUESTION, trace=tr, run_id=name)
    return result, write_html(trace, tmp_path / f"{name}.html")


@pytest.fixture(scope="module")
def answered(tmp_path_factory):
    long_pattern = "Kestrel|" + "|".join(f"very-long-alternative-{i}" for i in range(30))  # a label to cut
    return _run(tmp_path_factory.mktemp("page"), [
        tool("grep", pattern=long_pattern), tool("nope"), tool("read", doc_id=OKAFOR),
        tool("answer", answer="Saltmarsh", doc_ids=[OKAFOR]),
    ], "answered")


@pytest.mark.parametrize("width", [1400, 800])
def test_trace_page_layout(answered, width):
    _, page = answered
    got = layout(page, width, GROUPS, NO_CLIP)
    for state in ("closed", "open"):
        m = got[state]
        assert m["viewport"] == width
        assert m["boxes"] > 40, m  # the probe found the rows (a page without rows would pass vacuously)
        assert m["page_width"] <= width, (state, m["page_width"], m["wide"][:5])
        assert m["wide"] == [], (state, m["wide"][:5])
        assert m["overlaps"] == [], (state, m["overlaps"][:5])
        assert m["clipped"] == [], (state, m["clipped"][:5])


def _card(page: str, attr: str) -> int:
    m = re.search(rf'data-{attr}="(\d+)"', page)
    assert m, attr
    return int(m.group(1))


def test_trace_page_counts_and_content(answered):
    result, path = answered
    page = path.read_text(encoding="utf-8")
    assert (_card(page, "llm-calls"), _card(page, "tool-calls")) == (result.llm_calls, result.tool_calls) == (4, 4)
    assert _card(page, "tokens") == result.usage.total_tokens > 0
    assert page.count('data-kind="llm"') == 4 and page.count("<h4>prompt (") == 4 and page.count("<h4>reply</h4>") == 4
    assert "Question: Where was the designer" in page  # the prompt itself
    assert 'class="answer">Saltmarsh<' in page
    # model calls sit under their node, tool calls under theirs
    assert re.search(r'data-kind="node" data-depth="0".{0,400}call_model.*?data-kind="llm" data-depth="1"', page, re.S)
    assert re.search(r'data-kind="tool" data-depth="1"', page)


def test_trace_page_without_content_or_answer(tmp_path):
    result, path = _run(tmp_path, [tool("grep", pattern="Kestrel")] * 5, "noanswer", content=False,
                        budget=Budget(max_steps=4))
    page = path.read_text(encoding="utf-8")
    assert result.answer is None
    assert 'class="noanswer">no answer<' in page and 'class="answer"' not in page
    assert "not captured by this trace (run with --trace-content" in page
    assert page.count("did not capture the prompt and reply") == result.llm_calls > 0
    assert _card(page, "llm-calls") == result.llm_calls and _card(page, "tool-calls") == result.tool_calls
    got = layout(path, 800, GROUPS, NO_CLIP)
    assert got["open"]["overlaps"] == [] and got["open"]["page_width"] <= 800
