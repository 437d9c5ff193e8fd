"""`sleuth.tools.openai_tools`: specs and a dispatcher for OpenAI-style tool calls, over the real sample corpus.

The round trip uses the real ``openai`` client against a scripted OpenAI-compatible HTTP server (the server stands
in for a model; the dispatcher and the client's own response objects are what is tested). The embedded local
model is exercised in tests/integration/test_openai_tools_model.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletion

from sleuth.errors import ConfigError, ToolArgumentError
from sleuth.llm.base import ToolCall
from sleuth.retrieval.tool_catalog import ToolCatalog
from sleuth.tools import openai_tools
from tests.unit.llm_fake_server import FakeOpenAIServer, completion


def _call(id: str, name: str, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"id": id, "type": "function", "function": {"name": name, "arguments": args}}


def test_specs_are_openai_function_specs(sample_corpus: Path) -> None:
    specs, dispatch = openai_tools(sample_corpus, include=["grep", "read", "ls"])
    assert [s["function"]["name"] for s in specs] == ["grep", "read", "ls"]
    for s in specs:
        assert s["type"] == "function"
        assert s["function"]["description"]
        assert s["function"]["parameters"]["type"] == "object"
    assert dispatch.names() == ["grep", "read", "ls"]
    all_specs, _ = openai_tools(sample_corpus)  # default: every tool available (builds the BM25 index)
    assert {"grep", "read", "ls", "search", "df"} <= {s["function"]["name"] for s in all_specs}


def test_unknown_include_is_a_config_error(sample_corpus: Path) -> None:
    with pytest.raises(ConfigError, match="teleport"):
        openai_tools(sample_corpus, include=["grep", "teleport"])
    with pytest.raises(ConfigError, match="ask"):  # ask needs a model: the reason is given
        openai_tools(sample_corpus, include=["ask"])


def test_round_trip_with_the_openai_client(sample_corpus: Path) -> None:
    specs, dispatch = openai_tools(sample_corpus, include=["grep", "read", "ls"])
    first = completion(
        "",
        tool_calls=[
            _call("call_a", "grep", {"pattern": "Kestrel Bridge", "files_with_matches": True}),
            _call("call_b", "read", {"doc_id": "projects/kestrel_bridge.txt"}),
        ],
    )
    final = completion("Bram Okafor designed it [projects/kestrel_bridge.txt].")
    with FakeOpenAIServer([(200, first), (200, final)]) as server:
        client = OpenAI(base_url=server.url, api_key="test")
        messages: list[Any] = [{"role": "user", "content": "Who designed the Kestrel Bridge?"}]
        resp = client.chat.completions.create(model="fake", messages=messages, tools=specs)
        msg = resp.choices[0].message
        messages.append(msg.model_dump(exclude_none=True))
        tool_messages = dispatch(msg.tool_calls)
        messages += tool_messages
        resp2 = client.chat.completions.create(model="fake", messages=messages, tools=specs)
    assert [m["tool_call_id"] for m in tool_messages] == ["call_a", "call_b"]
    assert all(m["role"] == "tool" for m in tool_messages)
    assert "projects/kestrel_bridge.txt" in tool_messages[0]["content"]
    assert "Bram Okafor" in tool_messages[1]["content"]
    # what the client sent: the specs, then the conversation with the tool results
    sent = server.requests[1]["body"]
    assert [t["function"]["name"] for t in sent["tools"]] == ["grep", "read", "ls"]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "tool", "tool"]
    assert resp2.choices[0].message.content.startswith("Bram Okafor")


def test_dispatcher_takes_every_shape_of_tool_call(sample_corpus: Path) -> None:
    _, dispatch = openai_tools(sample_corpus, include=["read", "ls"])
    args = {"doc_id": "people/bram_okafor.md", "end_line": 1}
    sdk = ChatCompletion.model_validate(completion("", tool_calls=[_call("c1", "read", args)]))
    shapes = [
        sdk,  # a whole chat completion
        sdk.choices[0].message,  # the assistant message
        sdk.choices[0].message.tool_calls,  # the SDK's tool-call objects
        [_call("c1", "read", args)],  # dicts as the API returns them
        [{"id": "c1", "name": "read", "arguments": args}],  # flat dicts, arguments already parsed
        [ToolCall(id="c1", name="read", arguments=args)],  # sleuth's own model layer
    ]
    outs = [dispatch(s) for s in shapes]
    assert all(o == outs[0] for o in outs), outs
    assert outs[0][0]["tool_call_id"] == "c1" and "Bram Okafor" in outs[0][0]["content"]
    assert dispatch([]) == [] and dispatch(None) == []


def test_bad_calls_come_back_as_tool_messages_in_order(sample_corpus: Path) -> None:
    _, dispatch = openai_tools(sample_corpus, include=["grep", "read", "ls"])
    calls = [
        _call("1", "teleport", {}),
        _call("2", "read", "{not json"),
        _call("3", "read", "[1, 2]"),
        _call("4", "read", {"doc_id": "../../etc/passwd"}),
        _call("5", "grep", {"pattern": "(", "bogus": True}),
        _call("6", "grep", {"pattern": "("}),
        _call("7", "ls", {"prefix": "people/"}),
    ]
    out = dispatch(calls)
    assert [m["tool_call_id"] for m in out] == ["1", "2", "3", "4", "5", "6", "7"]
    expected = [
        "unknown tool 'teleport'",
        "not valid JSON",
        "must be a JSON object",
        "PathOutsideCorpusError",
        "bogus",
        "InvalidPatternError",
        "people/ada_morrow.md",
    ]
    for msg, want in zip(out, expected, strict=True):
        assert want in msg["content"], (want, msg["content"])
    assert "root:" not in out[3]["content"]


def test_calls_without_ids_get_stable_fresh_ids(sample_corpus: Path) -> None:
    _, dispatch = openai_tools(sample_corpus, include=["ls"])
    out = dispatch([{"name": "ls", "arguments": {}}, {"name": "ls", "arguments": "{}"}])
    assert out[0]["tool_call_id"] != out[1]["tool_call_id"]
    with pytest.raises(ToolArgumentError):
        dispatch("not a tool call")


def _catalog_specs(n: int) -> list[dict[str, Any]]:
    topics = ["weather", "flights", "recipes", "stocks", "translation", "calendar", "music", "maps", "email", "news"]
    verbs = ["search", "get", "list", "create", "delete", "summarise", "compare", "track", "convert", "book"]
    specs = []
    for i in range(n):
        topic, verb = topics[i % len(topics)], verbs[(i // len(topics)) % len(verbs)]
        name = f"{verb}_{topic}_{i}"
        specs.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": f"{verb.capitalize()} {topic} records (variant {i}).",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]},
                },
            }
        )
    specs.append(
        {
            "type": "function",
            "function": {
                "name": "currency_exchange_rate",
                "description": "Convert an amount of money between currencies at today's exchange rate.",
                "parameters": {
                    "type": "object",
                    "properties": {"amount": {"type": "number"}, "from_currency": {"type": "string"},
                                   "to_currency": {"type": "string"}},
                    "required": ["amount", "from_currency", "to_currency"],
                },
            },
        }
    )
    return specs


def test_tool_retrieval_sends_only_the_top_k_specs(sample_corpus: Path) -> None:
    catalog = ToolCatalog.from_openai(_catalog_specs(300))
    assert len(catalog) == 301

    def exchange(args: dict[str, Any]) -> dict[str, Any]:
        return {"amount": args["amount"] * 0.5, "currency": args["to_currency"]}

    specs, dispatch = openai_tools(
        sample_corpus,
        include=["grep", "read"],
        catalog=catalog,
        query="How much is 20 euros in dollars at the current exchange rate?",
        k=5,
        handlers={"currency_exchange_rate": exchange},
    )
    names = [s["function"]["name"] for s in specs]
    assert names[:2] == ["grep", "read"]
    assert 1 <= len(specs) - 2 <= 5  # sleuth's own tools + at most k retrieved (bm25 drops zero scores), not 301
    assert "currency_exchange_rate" in names
    out = dispatch(
        [
            _call("x", "currency_exchange_rate", {"amount": 20, "from_currency": "EUR", "to_currency": "USD"}),
            _call("y", next(n for n in names[2:] if n != "currency_exchange_rate"), {"q": "x"}),
            _call("z", "read", {"doc_id": "people/greta_lind.md"}),
        ]
    )
    assert json.loads(out[0]["content"]) == {"amount": 10.0, "currency": "USD"}
    assert "has no handler" in out[1]["content"]  # offered, but nobody can run it: said so
    assert "Greta Lind" in out[2]["content"]


def test_tool_retrieval_needs_the_request(sample_corpus: Path) -> None:
    catalog = ToolCatalog.from_openai(_catalog_specs(20))
    with pytest.raises(ToolArgumentError, match="query"):
        openai_tools(sample_corpus, include=["ls"], catalog=catalog)


# -- arguments: one lenient parser that never rewrites strings (issue #16) ---------------------------------------


def test_broken_arguments_are_repaired_with_their_strings_intact(sample_corpus: Path) -> None:
    received: list[dict[str, Any]] = []

    def echo(args: dict[str, Any]) -> str:
        received.append(args)
        return "ok"

    _, dispatch = openai_tools(sample_corpus, include=["grep"], handlers={"echo": echo})
    out = dispatch([
        _call("g", "grep", '{"pattern": "Kestrel Bridge", "files_with_matches": True,}'),  # trailing comma, Python True
        _call("e1", "echo", "{'answer': 'None of the True Falsehoods', 'final': true}"),
        _call("e2", "echo", '{"pattern": "True North", "n": 2'),  # cut off
    ])
    assert "projects/kestrel_bridge.txt" in out[0]["content"], out[0]["content"]
    assert [m["content"] for m in out[1:]] == ["ok", "ok"]
    assert received == [{"answer": "None of the True Falsehoods", "final": True}, {"pattern": "True North", "n": 2}]


# -- an assistant message without tool calls is nothing to dispatch (issue #18) ----------------------------------


def test_a_message_without_tool_calls_dispatches_nothing(sample_corpus: Path) -> None:
    from openai.types.chat import ChatCompletionMessage

    _, dispatch = openai_tools(sample_corpus, include=["ls"])
    final = ChatCompletion.model_validate(completion("Bram Okafor designed it."))
    assert final.choices[0].message.tool_calls is None
    shapes: list[Any] = [
        final,
        final.choices[0].message,
        ChatCompletionMessage(role="assistant", content="Done.", tool_calls=[]),
        {"role": "assistant", "content": "Done."},
        {"role": "assistant", "content": None, "tool_calls": None},
        {"role": "assistant", "content": "Done.", "tool_calls": []},
    ]
    for shape in shapes:
        assert dispatch(shape) == [], shape


def test_the_documented_chat_loop_ends_on_the_final_answer(sample_corpus: Path) -> None:
    specs, dispatch = openai_tools(sample_corpus, include=["grep", "read"])
    script = [
        (200, completion("", tool_calls=[_call("c1", "grep", {"pattern": "Kestrel Bridge", "count": True})])),
        (200, completion("Bram Okafor designed it [projects/kestrel_bridge.txt].")),
    ]
    with FakeOpenAIServer(script) as server:
        client = OpenAI(base_url=server.url, api_key="test")
        messages: list[Any] = [{"role": "user", "content": "Who designed the Kestrel Bridge?"}]
        for _ in range(5):
            msg = client.chat.completions.create(model="fake", messages=messages, tools=specs).choices[0].message
            messages.append(msg.model_dump(exclude_none=True))
            results = dispatch(msg)  # the whole message, every turn: the last one has no tool calls
            if not results:
                break
            messages += results
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[-1]["content"].startswith("Bram Okafor")


# -- a result longer than the host takes is cut, with a note -----------------------------------------------------


def test_long_results_are_capped_with_a_note(sample_corpus: Path) -> None:
    big = "\n".join(f"row {i} " + "x" * 90 for i in range(2000))  # ~200k characters
    handlers = {"dump": lambda args: big}
    _, dispatch = openai_tools(sample_corpus, include=["ls"], handlers=handlers)
    [msg] = dispatch([_call("d", "dump", {})])
    assert len(msg["content"]) < 100_200 and "more characters cut" in msg["content"]
    assert msg["content"].startswith("row 0 ")
    _, small = openai_tools(sample_corpus, include=["read"], handlers=handlers, max_result_chars=1000)
    [cut] = small([_call("d", "dump", {})])
    assert len(cut) and len(cut["content"]) < 1100 and "more characters cut" in cut["content"]
    [read] = small([_call("r", "read", {"doc_id": "projects/kestrel_bridge.txt"})])
    assert "more characters cut" not in read["content"]  # short results are left alone
    _, whole = openai_tools(sample_corpus, include=["ls"], handlers=handlers, max_result_chars=None)
    assert whole([_call("d", "dump", {})])[0]["content"] == big
    assert small.run(_call("d", "dump", {})).text == big  # run() returns sleuth's full ToolResult
    with pytest.raises(ConfigError, match="max_result_chars"):
        openai_tools(sample_corpus, include=["ls"], max_result_chars=5)
