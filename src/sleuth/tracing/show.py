"""`sleuth trace show FILE`: a run's trace as a readable timeline in the terminal (rich).

One row per event: time since the run started, kind, node, name, what went in (arguments), what came out (a
preview and its size), tokens, latency and errors; then the totals. ``summarize`` gives the same totals as a
dict (for ``--json``).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.tracer import CallTally, TraceFile, read_trace_file

KIND_STYLE = {
    "run": "bold white",
    "node": "dim",
    "llm": "magenta",
    "tool": "cyan",
    "retrieval": "blue",
    "sira": "blue",
    "rerank": "blue",
    "budget": "bold yellow",
    "error": "bold red",
    "answer": "bold green",
    "note": "yellow",
}


def load_events(path: str | Path, *, skip_corrupt: bool = False) -> list[TraceEvent]:
    """The events of a trace file for display (see :func:`~sleuth.tracing.tracer.read_trace_file`): an empty file
    gives none; a non-empty file without a single event is an error."""
    return load_trace(path, skip_corrupt=skip_corrupt).events


def load_trace(path: str | Path, *, skip_corrupt: bool = False) -> TraceFile:
    from sleuth.errors import TraceFormatError

    got = read_trace_file(path, skip_corrupt=skip_corrupt)
    if not got.events and got.path.stat().st_size:
        raise TraceFormatError(f"{got.path} holds no sleuth trace events")
    return got


def summarize(events: list[TraceEvent]) -> dict[str, Any]:
    """Totals of a trace: LLM calls, tool calls and usage counted by :class:`~sleuth.tracing.CallTally` (the count
    the run itself reports), the answer, or ``answer: None`` with the ``note`` that says why there is none."""
    tally = CallTally.of(events)
    kinds = Counter(e.kind for e in events)
    end = next((e for e in reversed(events) if e.kind == "answer"), None)
    route = next((e for e in events if e.kind == "note" and e.name == "route"), None)
    t = [e.ts for e in events]
    answer, note = _answer_of(end)
    return {
        "run_ids": sorted({e.run_id for e in events if e.run_id}),
        "events": len(events),
        "kinds": dict(kinds),
        "llm_calls": tally.llm_calls,
        "tool_calls": tally.tool_calls,
        "errors": sum(1 for e in events if e.error),
        "usage": tally.usage.model_dump(mode="json"),
        "seconds": round(max(t) - min(t), 3) if t else 0.0,
        "route": route.data if route else None,
        "finished": end is not None,
        "answer": answer,
        "note": note,
        "doc_ids": end.data.get("doc_ids") if end else None,
        "stop_reason": end.data.get("stop_reason") if end else None,
    }


def _answer_of(end: TraceEvent | None) -> tuple[str | None, str | None]:
    """``(answer, note)`` of a run's last ``answer`` event. Traces written before the result contract held the
    fallback text ("No answer: ...") in the answer field with ``answered_by="fallback"``: that is no answer."""
    if end is None:
        return None, None
    answer = end.data.get("answer")
    if end.name == "fallback" or not answer:
        return None, str(end.data.get("note") or answer or "no answer")
    return str(answer), None


def args_text(event: TraceEvent, limit: int = 90) -> str:
    if not event.args:
        return ""
    text = json.dumps(event.args, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def out_text(event: TraceEvent, limit: int = 110) -> str:
    if event.error:
        text = event.error
    elif event.kind == "node":
        text = ", ".join(f"{k}={v}" for k, v in event.data.items() if k not in ("usage", "elapsed_s"))
    elif event.kind == "budget":
        text = f"budget '{event.name}' ran out; remaining {event.data.get('remaining')}"
    elif event.kind == "note" and not event.preview:
        text = json.dumps(event.data, ensure_ascii=False, default=str)
    else:
        text = event.preview
    text = " ".join(str(text).split())
    if event.result_chars is not None and event.kind in ("tool", "retrieval", "sira", "llm"):
        text = f"[{event.result_chars} ch] {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tokens_text(event: TraceEvent) -> str:
    if event.kind != "llm" or event.usage is None:
        return ""
    return f"{event.usage.prompt_tokens}→{event.usage.completion_tokens}"


def render(events: list[TraceEvent], console: Any = None, *, show_nodes: bool = True) -> None:
    """A timeline, one block per event: a header line (step, time, kind, node, name, tokens, latency), then what
    went in and what came out, indented. Works in narrow terminals."""
    from rich.console import Console
    from rich.markup import escape
    from rich.text import Text

    console = console or Console()
    t0 = min((e.ts - (e.latency_s or 0.0) for e in events), default=0.0)
    width = max(40, (console.width or 100) - 8)
    for e in events:
        if e.kind == "node" and not show_nodes:
            continue
        style = "red" if e.error else KIND_STYLE.get(e.kind, "")
        if e.kind == "answer" and _answer_of(e)[0] is None:
            style = "bold yellow"
        head = Text()
        head.append(f"{e.step:>3} ", style="dim")
        head.append(f"+{e.ts - t0:7.2f}s ", style="dim")
        head.append(f"{e.kind:<10}", style=style)
        where = "/".join(dict.fromkeys(x for x in (e.node, e.name) if x and x != e.kind))
        head.append(where)
        tok = tokens_text(e)
        if tok:
            head.append(f"  {tok} tok", style="magenta")
        if e.latency_s is not None:
            head.append(f"  {e.latency_s:.2f}s", style="dim")
        console.print(head)
        if e.kind == "node":
            continue
        a = args_text(e, width)
        if a:
            console.print(Text("      in  ", style="dim") + Text(a))
        o = out_text(e, width * 2)
        if o:
            console.print(Text("      out ", style="dim") + Text(o, style="red" if e.error else ""))
    s = summarize(events)
    u = Usage.model_validate(s["usage"])
    lines = [
        f"[bold]run[/] {escape(', '.join(s['run_ids']) or '-')}: {s['events']} events, {s['llm_calls']} LLM calls, "
        f"{s['tool_calls']} tool calls, {s['errors']} errors, {s['seconds']} s",
        f"[bold]tokens[/] prompt {u.prompt_tokens}, completion {u.completion_tokens} "
        f"({u.token_source}); cost {escape(u.cost_text())}",
    ]
    if s["route"]:
        route = s["route"]
        lines.append(f"[bold]route[/] {escape(str(route.get('strategy')))}: {escape(str(route.get('reason')))}")
    docs = escape(", ".join(s["doc_ids"] or []) or "none cited")
    stop = escape(str(s["stop_reason"]))
    if s["answer"] is not None:
        lines.append(f"[bold green]answer[/] {escape(str(s['answer']))}   [dim]docs: {docs}; stop: {stop}[/]")
    elif s["finished"]:
        lines.append(f"[bold yellow]no answer[/] {escape(str(s['note']))}   [dim]stop: {stop}[/]")
    console.rule()
    for line in lines:
        console.print(line, highlight=False)
