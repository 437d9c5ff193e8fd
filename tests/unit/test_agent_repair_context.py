"""Tool-call repair and context management, on the shapes small models actually produce."""

from __future__ import annotations

from sleuth.agents.context import CLEARED_MARKER, cap_text, compact, estimate_tokens, slim_schema
from sleuth.agents.repair import calls_from_text, loads_lenient, repair_calls
from sleuth.llm.base import ToolCall
from sleuth.tools import corpus_tools

NAMES = ["grep", "read", "ls", "answer"]


def words(text: str) -> int:
    return len(text.split())


def test_loads_lenient():
    assert loads_lenient('```json\n{"a": 1,}\n```') == {"a": 1}
    assert loads_lenient("{'a': True, 'b': None}") == {"a": True, "b": None}
    assert loads_lenient("{'a': true}") == {"a": True}
    assert loads_lenient('{"pattern": "x"') == {"pattern": "x"}  # unclosed
    assert loads_lenient('Sure! {"a": [1, 2]} done') == {"a": [1, 2]}


def test_calls_from_text_shapes():
    shapes = [
        '{"name": "grep", "arguments": {"pattern": "x"}}',
        '{"tool": "grep", "args": {"pattern": "x"}}',
        '{"function": {"name": "grep", "arguments": "{\\"pattern\\": \\"x\\"}"}}',
        '<tool_call>{"name": "Grep", "parameters": {"pattern": "x"}}</tool_call>',
        '{"name": "grep", "pattern": "x"}',
        '[{"name": "functions.grep", "arguments": {"pattern": "x"}}]',
    ]
    for text in shapes:
        calls = calls_from_text(text, NAMES)
        assert [(c.name, c.arguments) for c in calls] == [("grep", {"pattern": "x"})], text
    bare = calls_from_text('{"answer": "Paris", "doc_ids": ["a.md"]}', NAMES)
    assert bare[0].name == "answer" and bare[0].arguments["answer"] == "Paris"
    assert calls_from_text("The answer is Paris.", NAMES) == []


def test_repair_calls_keeps_what_it_cannot_fix_as_an_error():
    calls = [
        ToolCall(id="1", name="functions.read", arguments={"doc_id": "a"}),
        ToolCall(id="2", name="grep", raw_arguments="{'pattern': 'x',}", parse_error="bad"),
        ToolCall(id="3", name="grep", raw_arguments="pattern x", parse_error="bad"),
        ToolCall(
            id="4", name="grep", raw_arguments='{"name": "grep", "arguments": {"pattern": "y"}}', parse_error="bad"
        ),
    ]
    fixed, notes = repair_calls(calls, "", NAMES)
    assert fixed[0].name == "read"
    assert fixed[1].arguments == {"pattern": "x"} and fixed[1].parse_error is None
    assert fixed[2].parse_error
    assert fixed[3].arguments == {"pattern": "y"}
    assert len(notes) == 4


def test_cap_text():
    text = "\n".join(f"line {i}" for i in range(100))
    capped, cut = cap_text(text, 100)
    assert cut and len(capped) < 200 and "more characters cut" in capped
    assert cap_text("short", 100) == ("short", False)


def test_compact_clears_oldest_first_and_keeps_the_prefix():
    msgs = [{"role": "system", "content": "sys " * 10}, {"role": "user", "content": "Question: q"}]
    for i in range(5):
        msgs.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": str(i), "type": "function", "function": {"name": "read", "arguments": "{}"}}]})
        msgs.append({"role": "tool", "tool_call_id": str(i), "name": "read", "content": f"out{i} " + "w " * 50})
    before = estimate_tokens(msgs, None, words)
    out, cleared, est = compact(msgs, None, words, budget_tokens=150)
    assert est <= 150 < before and cleared >= 1
    assert out[:2] == msgs[:2]
    tools_out = [m["content"] for m in out if m["role"] == "tool"]
    assert tools_out[-1].startswith("out4")  # the newest observation is kept
    assert CLEARED_MARKER in tools_out
    assert msgs[2]["content"] == "" and msgs[3]["content"].startswith("out0")  # input untouched
    # a tiny budget: old turns are dropped (with a note), the newest is shortened, never removed
    out, _, est = compact(msgs, None, words, budget_tokens=60)
    assert "earlier tool calls and their outputs were removed" in out[2]["content"]
    assert out[-1]["role"] == "tool"


def test_slim_schema_keeps_required_and_listed_fields():
    from tests.conftest import SAMPLE_CORPUS

    schema = next(t for t in corpus_tools(SAMPLE_CORPUS) if t.name == "grep").openai_schema()
    slim = slim_schema(schema, ("ignore_case",))
    assert set(slim["function"]["parameters"]["properties"]) == {"pattern", "ignore_case"}
    assert slim_schema(schema, None) is schema


def test_repairs_never_rewrite_strings():
    """Issue #16: the JSON words of a mixed-quote reply were replaced inside strings too ('null' -> 'None')."""
    calls = [
        ToolCall(id="1", name="grep", raw_arguments="{'pattern': 'returns null', 'ignore_case': true}",
                 parse_error="x"),
        ToolCall(id="2", name="answer", raw_arguments='{"answer": "None of the True Falsehoods", "doc_ids": ["a.md"]',
                 parse_error="x"),
        ToolCall(id="3", name="grep", raw_arguments='{"pattern": "\\\\d{2,}", "ignore_case": false,', parse_error="x"),
    ]
    fixed, _ = repair_calls(calls, "", NAMES)
    assert [c.arguments for c in fixed] == [
        {"pattern": "returns null", "ignore_case": True},
        {"answer": "None of the True Falsehoods", "doc_ids": ["a.md"]},
        {"pattern": "\\d{2,}", "ignore_case": False},
    ]
    assert all(c.parse_error is None for c in fixed)
    [call] = calls_from_text("Let me look. {'name': 'grep', 'arguments': {'pattern': 'true or null', 'count': true}}",
                             NAMES)
    assert call.arguments == {"pattern": "true or null", "count": True}
    [cut] = calls_from_text('{"name": "answer", "arguments": {"answer": "Paris', NAMES)  # cut off mid-string
    assert cut.arguments == {"answer": "Paris"} and cut.parse_error is None


def test_the_agent_greps_for_what_the_model_wrote(tmp_path):
    """Through the react graph: a broken grep call is repaired with its pattern intact and finds the real file."""
    from sleuth.agents import Agent, AgentConfig
    from sleuth.corpus import Corpus
    from sleuth.llm.fake import ScriptedModel, tool
    from sleuth.tracing import MemoryTracer

    (tmp_path / "api.md").write_text("# Lookup\n\nThe lookup returns null when the key is missing.\n")
    corpus = Corpus(tmp_path)
    model = ScriptedModel([
        {"tool": "grep", "arguments": "{'pattern': 'returns null', 'ignore_case': true}"},  # Python quotes + JSON true
        tool("answer", answer="It returns null.", doc_ids=["api.md"]),
    ])
    agent = Agent(AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus), agent="react")
    tracer = MemoryTracer()
    result = agent.run("What does the lookup return for a missing key?", trace=tracer)
    [grep] = [e for e in tracer.events if e.kind == "tool" and e.name == "grep"]
    assert grep.args == {"pattern": "returns null", "ignore_case": True} and grep.error is None
    seen = [m["content"] for m in model.calls[1]["messages"] if m["role"] == "tool"]
    assert "api.md" in seen[-1] and "returns null" in seen[-1]
    assert result.answer == "It returns null."
