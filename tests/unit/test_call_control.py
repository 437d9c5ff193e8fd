"""CallControl (progress out, cancel in) through Tool.invoke and ControlledModel, and the MCP result bound
(cap_json / to_call_result) on real tool results over the sample corpus."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import jsonschema
import pytest

from sleuth.callcontrol import CallControl
from sleuth.corpus import Corpus
from sleuth.errors import CallCancelledError
from sleuth.llm.controlled import ControlledModel
from sleuth.llm.fake import ScriptedModel
from sleuth.tools import corpus_tools
from sleuth.tools.base import Tool, ToolArgs, Toolkit, ToolResult


class Args(ToolArgs):
    n: int = 3


def counting(args: Args, control: CallControl) -> ToolResult:
    done = 0
    for i in range(args.n):
        control.check()
        control.progress(f"step {i + 1} of {args.n}")
        done += 1
    return ToolResult(text=f"did {done}", data={"done": done})


def test_a_tool_that_takes_control_gets_the_callers_and_reports_through_it() -> None:
    seen: list[str] = []
    tool = Tool("count", "Count.", Args, counting, takes_control=True)
    r = Toolkit([tool]).invoke("count", {"n": 2}, control=CallControl(on_progress=seen.append))
    assert r.text == "did 2" and seen == ["step 1 of 2", "step 2 of 2"]
    assert tool.run({"n": 1}).text == "did 1"  # without a caller: a fresh control nobody cancels


def test_a_cancelled_control_stops_the_tool_with_a_typed_error() -> None:
    control = CallControl()
    control.cancel("the client went away")
    with pytest.raises(CallCancelledError, match="the client went away"):
        Tool("count", "Count.", Args, counting, takes_control=True).invoke({"n": 5}, control=control)


def test_progress_is_one_line_cut_and_a_failing_receiver_never_breaks_the_tool() -> None:
    got: list[str] = []
    CallControl(on_progress=got.append).progress("a\nb  " + "x" * 1000)
    assert got[0].startswith("a b x") and len(got[0]) == 300

    def broken(message: str) -> None:
        raise RuntimeError("receiver down")

    CallControl(on_progress=broken).progress("fine")  # logged, not raised


def test_wait_wakes_on_cancel() -> None:
    control = CallControl()
    threading.Timer(0.1, control.cancel).start()
    t0 = time.monotonic()
    assert control.wait(10) is True and time.monotonic() - t0 < 2


def test_controlled_model_sends_nothing_after_the_cancel() -> None:
    inner = ScriptedModel(["one", "two"])
    control = CallControl()
    model = ControlledModel(inner, control)
    assert model.chat([{"role": "user", "content": "hi"}]).content == "one"
    control.cancel()
    with pytest.raises(CallCancelledError):
        model.chat([{"role": "user", "content": "hi"}])
    assert len(inner.calls) == 1 and model.model == "scripted" and model.count_tokens("a b") == 2


@pytest.fixture()
def toolkit(sample_corpus: Path) -> Toolkit:
    return corpus_tools(Corpus(sample_corpus))


def test_each_corpus_tool_declares_a_schema_its_data_validates(toolkit: Toolkit) -> None:
    calls = {"grep": {"pattern": "Kestrel", "context": 1}, "read": {"doc_id": "projects/kestrel_bridge.txt"},
             "ls": {"glob": "*.md"}}
    for name, args in calls.items():
        schema = toolkit[name].output_schema()
        assert schema is not None and schema["type"] == "object"
        data = json.loads(json.dumps(toolkit.invoke(name, args).data))  # as a client receives it
        jsonschema.validate(data, schema)


def test_cap_json_fits_and_keeps_the_schema(toolkit: Toolkit) -> None:
    pytest.importorskip("mcp", reason="the bound lives in the MCP server")
    from sleuth.integrations.mcp_calls import cap_json, output_schema, to_call_result

    grep = toolkit["grep"]
    result = toolkit.invoke("grep", {"pattern": "the", "max_matches": 2000, "max_chars": 500_000, "context": 2})
    data = json.loads(json.dumps(result.data))
    size = len(json.dumps(data, separators=(",", ":"), ensure_ascii=False))
    for limit in (size // 2, 5000, 1500):
        capped, cuts = cap_json(data, limit)
        assert cuts > 0 and len(json.dumps(capped, separators=(",", ":"), ensure_ascii=False)) <= limit
        jsonschema.validate(capped, output_schema(grep))
    assert cap_json(data, size + 10) == (data, 0)
    call = to_call_result(result, grep, 4000)
    total = len(call.content[0].text) + len(json.dumps(call.structured_content, separators=(",", ":"),
                                                       ensure_ascii=False))
    assert total <= 4000 and "result cut to fit the message limit of 4,000 characters" in call.content[0].text
    assert call.meta == {"sleuth": {"truncated": True, "cut": call.meta["sleuth"]["cut"]}}


def test_the_last_progress_lines_go_out_before_the_answer() -> None:
    """A tool that posts its last steps just before it returns (within one poll of the sender): every line is sent
    before run_call answers, none after (hosts showed the final step missing)."""
    import anyio

    from sleuth.integrations.mcp_calls import run_call

    sent: list[str] = []
    answered: list[int] = []

    async def report(progress: float, total: float | None, message: str | None) -> None:
        sent.append(str(message))

    def quick(args: Args, control: CallControl) -> ToolResult:
        for i in range(args.n):
            control.progress(f"step {i + 1} of {args.n}")
        return ToolResult(text="done")

    toolkit = Toolkit([Tool("quick", "Quick.", Args, quick, takes_control=True)])

    async def main() -> None:
        result = await run_call(report, toolkit, "quick", {"n": 3}, limiter=anyio.CapacityLimiter(1), timeout=30)
        answered.append(len(sent))
        assert result.is_error is False

    anyio.run(main)
    assert sent == ["step 1 of 3", "step 2 of 3", "step 3 of 3"] and answered == [3]
