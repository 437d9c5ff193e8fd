"""One MCP ``tools/call`` from start to answer: a worker slot, a deadline, progress notifications, cancellation,
a bounded result that validates against the tool's ``outputSchema``.

* The tool runs in a worker thread with its own :class:`~sleuth.callcontrol.CallControl`. What the tool reports
  (``ask``: each agent step) goes out as ``notifications/progress`` within :data:`POLL_S`; while it reports nothing,
  a heartbeat goes out every ``progress_interval`` seconds. Progress is sent only when the client asked for it (a
  ``progressToken``), as the protocol says; a host whose request timeout resets on progress (the MCP Inspector's
  ``resetTimeoutOnProgress``) then never times out a call that is still working.
* A client that cancels (``notifications/cancelled``, or a closed HTTP stream): the call's control is cancelled
  (``ask`` stops at its next step or model call) and the server waits up to ``cancel_grace`` seconds for the worker
  to stop, holding its slot, then frees the slot either way; a worker still busy then (a model request in flight,
  a tool that does not check) is abandoned, logged, and ends at its next check. Nothing is answered to a cancelled
  request (the SDK drops it). A call past its deadline is cancelled the same way but its slot is freed at once
  (the deadline bounds how long any call holds a worker) and it is answered with a ``ToolTimeoutError`` result.
* A result longer than ``max_result_chars`` (text plus structured copy, default 100,000 characters) is cut to fit:
  the text gets a note saying how much was cut, the structured content keeps its schema (its longest lists and
  strings are shortened), and ``_meta.sleuth.truncated`` is set.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from sleuth.callcontrol import CallControl
from sleuth.integrations.toolset import safe_invoke
from sleuth.tools.base import Tool, Toolkit, ToolResult

logger = logging.getLogger("sleuth.integrations.mcp_server")

DEFAULT_CALL_TIMEOUT = 120.0
LONG_CALL_TIMEOUT = 1800.0  # tools that run a language model (ask, rerank)
LONG_TOOL_TAGS = frozenset({"agent", "rerank"})
DEFAULT_PROGRESS_INTERVAL = 10.0  # seconds between heartbeats while a tool reports nothing
DEFAULT_CANCEL_GRACE = 2.0  # seconds a cancelled call's worker keeps its slot while it stops
DEFAULT_MAX_RESULT_CHARS = 100_000  # text + structured content of one result (the OpenAI plug's default too)
MIN_RESULT_CHARS = 1000
POLL_S = 0.2
MAX_PENDING_PROGRESS = 20
MAX_ERROR_CHARS = 2000
THREAD_PREFIX = "sleuth-mcp-call"
INTERNAL_ERROR_TEMPLATE = (
    "Error ({kind}): the sleuth server hit an internal fault in {tool}; the details are in the server's log. "
    "It keeps serving."
)
TIMEOUT_TEMPLATE = (
    "Error (ToolTimeoutError): {tool} did not finish within {seconds:g}s and was abandoned "
    "(hint: narrow the call: a more specific pattern, a glob or path, a smaller k)"
)
CUT_NOTE = (
    "\n[result cut to fit the message limit of {limit:,} characters: {shown:,} of {total:,} characters of text "
    "shown{data}; narrow the call (a smaller limit or k, a glob, a line range)]"
)
TOO_LARGE_TEMPLATE = (
    "Error (ResultTooLargeError): the result of {tool} is {size:,} characters, more than this server's limit of "
    "{limit:,} even when cut (hint: narrow the call: a smaller limit or k, a glob, a line range)"
)
_ABS_PATH = re.compile(r"(?<![\w.~])(?:/[\w.@+%-]+){2,}/?")


def _private_roots() -> list[str]:
    """Folders whose names say something about the host: the venv, the interpreter, the home and temp folders."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.expanduser("~"), tempfile.gettempdir()}
    return sorted((r for r in roots if r and r != "/"), key=len, reverse=True)


def scrub_paths(text: str) -> str:
    """``text`` with absolute paths replaced by ``<path>`` and cut to :data:`MAX_ERROR_CHARS` (for error results)."""
    for root in _private_roots():
        text = text.replace(root, "<path>")
    text = _ABS_PATH.sub("<path>", text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 40] + f" …[{len(text)} chars, cut]"
    return text


def tool_label(toolkit: Toolkit, name: Any) -> str:
    """The tool's name when it exists, else a neutral label (a caller's bogus name is never echoed)."""
    return name if isinstance(name, str) and name in toolkit else "the call"


def run_tool(
    toolkit: Toolkit, name: str, arguments: dict[str, Any] | None, *, control: CallControl | None = None
) -> ToolResult:
    """Run one tool for a remote caller: never raises.

    Input faults are already error results (``Toolkit.invoke``); other sleuth errors become error results with
    their hint (:func:`~sleuth.integrations.toolset.safe_invoke`); anything else becomes an internal-error
    result and is logged to stderr.
    """
    try:
        result = safe_invoke(toolkit, name, arguments or {}, control=control)
    except Exception as e:
        logger.exception("tool %s failed", scrub_paths(str(name))[:80])
        return ToolResult(
            text=INTERNAL_ERROR_TEMPLATE.format(kind=type(e).__name__, tool=tool_label(toolkit, name)),
            data={"error": type(e).__name__},
            is_error=True,
            error_type=type(e).__name__,
        )
    if result.is_error:
        result = result.model_copy(update={"text": scrub_paths(result.text), "data": None})
    return result


def call_timeout_for(toolkit: Toolkit, name: str, default: float) -> float:
    """The deadline of a call: ``default``, or :data:`LONG_CALL_TIMEOUT` for tools that run a model."""
    tool = toolkit.tools.get(name) if isinstance(name, str) else None
    if tool is not None and tool.tags & LONG_TOOL_TAGS:
        return max(default, LONG_CALL_TIMEOUT)
    return default


# --- schemas and results ---------------------------------------------------------------------------------------


def output_schema(tool: Tool[Any]) -> dict[str, Any] | None:
    """The tool's ``outputSchema``: its data schema, wrapped as ``{"result": ...}`` when the data is not an object
    (protocol versions up to 2025-11-25 require an object at the root)."""
    schema = tool.output_schema()
    if schema is None or schema.get("type") == "object":
        return schema
    inner = dict(schema)
    defs = inner.pop("$defs", None)
    wrapped: dict[str, Any] = {"type": "object", "properties": {"result": inner}, "required": ["result"]}
    if defs:
        wrapped["$defs"] = defs
    return wrapped


def structured_content(tool: Tool[Any] | None, data: Any) -> Any:
    """``data`` as the result's structured content: an object, wrapped as ``{"result": data}`` when it is not one
    or when the tool's schema says so."""
    if data is None:
        return None
    schema = tool.output_schema() if tool is not None else None
    if isinstance(data, dict) and (schema is None or schema.get("type") == "object"):
        return data
    return {"result": data}


def _json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def _largest_cuttable(value: Any) -> tuple[Any, Any, int]:
    """``(container, key, size)`` of the largest non-empty list or string inside ``value`` (by JSON size)."""
    best: tuple[Any, Any, int] = (None, None, 0)
    stack: list[tuple[Any, Any, Any]] = [(None, None, value)]
    while stack:
        parent, key, node = stack.pop()
        if isinstance(node, str):
            size = len(node) + 2
            if len(node) > 40 and size > best[2]:
                best = (parent, key, size)
        elif isinstance(node, list):
            if node and parent is not None:
                size = _json_size(node)
                if size > best[2]:
                    best = (parent, key, size)
            stack.extend((node, i, v) for i, v in enumerate(node))
        elif isinstance(node, dict):
            stack.extend((node, k, v) for k, v in node.items())
    return best


def cap_json(value: Any, max_chars: int) -> tuple[Any, int]:
    """A copy of ``value`` whose JSON is at most ``max_chars`` characters, made by halving its largest lists (their
    first half kept) and strings (cut with a mark), largest first; and the number of cuts. Keys and types are
    kept, so the result still matches the schema it matched. May stay larger when only keys and scalars are left."""
    if _json_size(value) <= max_chars:
        return value, 0
    value = json.loads(json.dumps(value))
    cuts = 0
    for _ in range(400):
        if _json_size(value) <= max_chars:
            break
        parent, key, _size = _largest_cuttable(value)
        if parent is None:
            break
        node = parent[key]
        if isinstance(node, list):
            parent[key] = node[: len(node) // 2]
        else:
            parent[key] = node[: len(node) // 2] + " …[cut]"
        cuts += 1
    return value, cuts


def to_call_result(result: ToolResult, tool: Tool[Any] | None, max_chars: int) -> Any:
    """The ``CallToolResult`` for ``result``, text plus structured content bounded by ``max_chars``."""
    import mcp_types as types

    meta: dict[str, Any] = {}
    if result.truncated:
        meta["truncated"] = True
    if result.error_type:
        meta["error_type"] = result.error_type
    text = result.text
    structured = None if result.is_error else structured_content(tool, result.data)
    size = len(text) + (_json_size(structured) if structured is not None else 0)
    if size > max_chars:
        cuts = 0
        if structured is not None:
            structured, cuts = cap_json(structured, max(max_chars // 2, max_chars - len(text)))
        room = max_chars - (_json_size(structured) if structured is not None else 0)
        if room < MIN_RESULT_CHARS // 2:
            label = tool.name if tool is not None else "the call"
            text = TOO_LARGE_TEMPLATE.format(tool=label, size=size, limit=max_chars)
            return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True,
                                        _meta={"sleuth": {"error_type": "ResultTooLargeError"}})
        if len(text) > room or cuts:
            note_room = room - 400
            shown = min(len(text), note_room)
            cut_at = text.rfind("\n", int(shown * 0.8), shown) if shown < len(text) else shown
            shown = cut_at if cut_at > 0 else shown
            data_note = f"; the structured copy was shortened ({cuts} lists or strings halved)" if cuts else ""
            text = text[:shown] + CUT_NOTE.format(limit=max_chars, shown=shown, total=len(result.text), data=data_note)
        meta["truncated"] = True
        meta["cut"] = {"text_chars": len(result.text), "shown_chars": min(len(result.text), len(text)),
                       "structured_cuts": cuts}
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=structured,
        is_error=result.is_error,
        _meta={"sleuth": meta} if meta else None,
    )


# --- progress --------------------------------------------------------------------------------------------------

Report = Callable[[float, float | None, str | None], Awaitable[None]]
FLUSH_S = 2.0  # at most this long to send the last lines a tool posted before its answer goes out


class ProgressSender:
    """The progress notifications of one call: each line the tool posts (from its thread), and a heartbeat every
    ``interval`` seconds while it posts nothing. ``progress`` counts notifications (it only increases)."""

    def __init__(self, report: Report, label: str, interval: float) -> None:
        self._report = report
        self._label = label
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: deque[str] = deque(maxlen=MAX_PENDING_PROGRESS)
        self._last = ""
        self.sent = 0

    def post(self, message: str) -> None:
        with self._lock:
            self._pending.append(message)

    def _take(self) -> list[str]:
        with self._lock:
            lines = list(self._pending)
            self._pending.clear()
        if lines:
            self._last = lines[-1]
        return lines

    async def _send(self, lines: list[str]) -> bool:
        for line in lines:
            self.sent += 1
            try:
                await self._report(float(self.sent), None, line)
            except Exception as e:  # the client went away: the call's cancellation follows
                logger.debug("progress not sent: %s", type(e).__name__)
                return False
        return True

    async def run(self) -> None:
        import anyio

        t0 = last = anyio.current_time()
        while True:
            await anyio.sleep(POLL_S)
            lines = self._take()
            now = anyio.current_time()
            if not lines and now - last >= self._interval:
                lines = [f"{self._label}: working, {now - t0:.0f}s" + (f" (last: {self._last})" if self._last else "")]
            if lines:
                if not await self._send(lines):
                    return
                last = now

    async def flush(self, timeout: float = FLUSH_S) -> None:
        """Send what the tool posted since the last poll (its last steps), before the call's answer goes out."""
        import anyio

        with anyio.move_on_after(timeout):
            await self._send(self._take())


# --- one call --------------------------------------------------------------------------------------------------


async def run_call(
    report: Report,
    toolkit: Toolkit,
    name: str,
    arguments: dict[str, Any] | None,
    *,
    limiter: Any,
    timeout: float,
    cancel_grace: float = DEFAULT_CANCEL_GRACE,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> Any:
    """Run ``name`` in a worker thread under ``limiter`` and answer with a ``CallToolResult`` (module docstring)."""
    import anyio

    label = tool_label(toolkit, name)
    sender = ProgressSender(report, label, progress_interval)
    control = CallControl(on_progress=sender.post)
    finished = threading.Event()

    def work() -> ToolResult:
        thread = threading.current_thread()
        old_name, thread.name = thread.name, f"{THREAD_PREFIX}:{label}"
        try:
            return run_tool(toolkit, name, arguments, control=control)
        finally:
            thread.name = old_name
            finished.set()
            if control.cancelled:
                logger.info("%s stopped after it was cancelled (%s)", label, control.reason)

    result: ToolResult | None = None
    with anyio.move_on_after(timeout) as deadline:
        async with limiter:
            try:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(sender.run)
                    result = await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
                    tg.cancel_scope.cancel()
                await sender.flush()  # the last steps' lines, posted after the sender's last poll
            finally:
                if result is None and deadline.cancel_called:  # past the deadline: the slot is freed at once
                    control.cancel(f"past its {timeout:g}s deadline")
                elif result is None:  # cancelled by the client
                    await _stop(control, finished, cancel_grace, label, "cancelled by the client")
    if result is None:
        logger.warning("%s abandoned after %.1fs (deadline)", label, timeout)
        result = ToolResult(text=TIMEOUT_TEMPLATE.format(tool=label, seconds=timeout), is_error=True,
                            error_type="ToolTimeoutError")
    return to_call_result(result, toolkit.tools.get(name) if isinstance(name, str) else None, max_result_chars)


async def _stop(control: CallControl, finished: threading.Event, grace: float, label: str, why: str) -> None:
    """Cancel the call's control and wait (shielded) up to ``grace`` seconds for its worker to stop."""
    import anyio

    control.cancel(why)
    t0 = time.monotonic()
    with anyio.CancelScope(shield=True):
        while not finished.is_set() and time.monotonic() - t0 < grace:
            await anyio.sleep(0.05)
    if not finished.is_set():
        logger.warning("%s still running %.1fs after it was %s: its worker is abandoned and stops at its next "
                       "check", label, grace, why)
