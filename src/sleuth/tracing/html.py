"""`sleuth trace html FILE`: a run's trace as one self-contained HTML page (no network, no external files).

The page holds:

* a summary: the question, the answer (or "no answer" and why, never the fallback text as an answer), and the
  run's counts: LLM calls, tool calls, tokens, seconds and cost, counted by
  :class:`~sleuth.tracing.tracer.CallTally` as ``sleuth ask --json`` counts them;
* a waterfall (:mod:`sleuth.tracing.waterfall`): one row per event, nested as its spans nest (a model call under
  its node, a SIRA call under its tool call), with a bar for when it ran and its tokens and seconds; instants
  (notes, budgets, the answer) are marks;
* behind each row (``<details>``, so it works without scripts): a model call's prompt (every message sent) and
  reply when the trace captured content (``--trace-content``), and says so when it did not; a tool call's
  arguments and result; the event's other data as JSON.

A few lines of inline script add "expand all" and filtering by kind.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.show import _answer_of, summarize
from sleuth.tracing.waterfall import Row, build_rows

COLORS = {
    "run": "#555",
    "node": "#8a8f98",
    "llm": "#9b3fd0",
    "tool": "#13889c",
    "retrieval": "#2f62c9",
    "sira": "#2f62c9",
    "rerank": "#2f62c9",
    "budget": "#c98a00",
    "error": "#c92f2f",
    "answer": "#2f9c46",
    "note": "#b58b00",
}
LABELS = {"llm": "model", "node": "step"}
NO_ANSWER_COLOR = "#9a6a00"
INDENT_PX = 14
MAX_DEPTH_INDENT = 8  # deeper rows stop indenting (the label keeps its room)

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;padding:18px 24px;color:#1f2328;
 background:#fff}
h1{font-size:1.25em;margin:0 0 .2em;overflow-wrap:anywhere}
.q{font-size:1.05em;color:#333;margin:.2em 0 .8em;overflow-wrap:anywhere}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0 0 14px}
.card{background:#f6f7f9;border:1px solid #e4e6ea;border-radius:8px;padding:8px 12px;min-width:0}
.card .k{font-size:.78em;color:#667;text-transform:uppercase;letter-spacing:.03em}
.card .v{font-size:1.25em;font-weight:600;font-variant-numeric:tabular-nums}
.card .s{font-size:.8em;color:#667}
.result{border-radius:8px;padding:10px 14px;margin:0 0 14px;overflow-wrap:anywhere}
.result.ok{background:#eef8f0;border:1px solid #b9e2c3}
.result.none{background:#fff7e6;border:1px solid #f0d28a}
.result.open{background:#f3f3f3;border:1px solid #ddd}
.result .k{font-size:.78em;color:#667;text-transform:uppercase;letter-spacing:.03em}
.answer{font-size:1.2em;font-weight:600;color:#1d6e31}
.noanswer{font-size:1.2em;font-weight:600;color:#9a6a00}
.meta{color:#555;font-size:.9em}
.controls{margin:4px 0 8px;display:flex;flex-wrap:wrap;gap:4px 12px;align-items:center;font-size:.9em}
.content-note{font-size:.85em;color:#555;margin:0 0 10px}
.wf{border-top:1px solid #e4e6ea}
.grid{display:grid;grid-template-columns:minmax(0,2fr) 6.5em 4.5em minmax(0,3fr);gap:0 10px;align-items:center}
.wf-head{font-size:.78em;color:#667;padding:4px 0;border-bottom:1px solid #e4e6ea}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap;overflow:hidden}
.axis{position:relative;height:1.3em;overflow:hidden}
.axis span{position:absolute;top:0;white-space:nowrap}
details.row{border-bottom:1px solid #f0f1f3}
details.row>summary{cursor:pointer;list-style:none;padding:3px 0;font-size:.92em}
details.row>summary::-webkit-details-marker{display:none}
details.row>summary:hover{background:#f7f8fa}
.label{display:flex;align-items:center;gap:6px;overflow:hidden;white-space:nowrap;min-width:0}
.badge{flex:none;font-size:.75em;font-weight:600;color:#fff;border-radius:4px;padding:0 5px;line-height:1.6}
.name{overflow:hidden;text-overflow:ellipsis;min-width:0}
.hint{color:#778;overflow:hidden;text-overflow:ellipsis;min-width:0;flex:1 1 0}
.track{position:relative;height:14px;background:#f3f4f6;border-radius:3px;overflow:hidden}
.bar{position:absolute;top:2px;height:10px;border-radius:3px;min-width:2px}
.mark{position:absolute;top:2px;width:10px;height:10px;transform:translateX(-50%) rotate(45deg)}
.err>summary{background:#fff3f3}
.body{padding:6px 0 12px 18px;min-width:0}
.body h4{margin:.6em 0 .2em;font-size:.85em;color:#445}
.msg{border-left:3px solid #ccd;padding:0 0 0 8px;margin:4px 0}
.msg .role{font-size:.75em;font-weight:600;color:#556;text-transform:uppercase}
.msg.assistant{border-color:#9b3fd0}.msg.tool{border-color:#13889c}.msg.system{border-color:#999}
pre{background:#fafbfc;border:1px solid #eceef1;padding:6px 8px;white-space:pre-wrap;overflow-wrap:anywhere;
 margin:2px 0;max-height:26em;overflow:auto;font-size:.84em}
.nocontent{color:#8a5a00;font-size:.9em}
@media (max-width:900px){.grid{grid-template-columns:minmax(0,1fr) 5.5em 4em minmax(0,1fr);gap:0 6px}
 body{padding:12px}}
"""

SCRIPT = """
function toggleAll(open){document.querySelectorAll('details.row').forEach(d=>{if(d.style.display!=='none')d.open=open})}
function filterKinds(){const on=new Set([...document.querySelectorAll('.kf:checked')].map(c=>c.value));
document.querySelectorAll('details.row').forEach(d=>{d.style.display=on.has(d.dataset.kind)?'':'none'})}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _json(x: Any) -> str:
    return json.dumps(x, indent=2, ensure_ascii=False, default=str)


def _secs(s: float) -> str:
    return f"{s:.2f}s" if s >= 0.01 else (f"{s * 1000:.1f}ms" if s > 0 else "0s")


def _tokens(u: Usage) -> str:
    return f"{u.prompt_tokens}→{u.completion_tokens}" if u.prompt_tokens or u.completion_tokens else ""


def _color(e: TraceEvent | None) -> str:
    if e is None:
        return COLORS["error"]
    if e.kind == "answer" and _answer_of(e)[0] is None:
        return NO_ANSWER_COLOR
    return COLORS["error"] if e.error else COLORS.get(e.kind, "#666")


def _hint(e: TraceEvent) -> str:
    """A few words after the name: a tool's arguments, a model call's reply, an answer."""
    if e.kind == "answer":
        answer, note = _answer_of(e)
        text = answer if answer is not None else f"no answer: {note}"
    elif e.error:
        text = e.error
    elif e.kind in ("tool", "retrieval", "sira", "rerank") and e.args:
        text = json.dumps(e.args, ensure_ascii=False, default=str)
    elif e.kind == "llm":
        text = e.preview
    elif e.kind in ("note", "budget") and not e.preview:
        text = json.dumps(e.data, ensure_ascii=False, default=str)
    else:
        text = e.preview
    text = " ".join(str(text).split())
    return text[:160]


def _message(m: Any) -> str:
    if not isinstance(m, dict):
        return f'<div class="msg"><pre>{_e(m)}</pre></div>'
    role = str(m.get("role") or "message")
    parts = []
    content = m.get("content")
    if isinstance(content, list):  # content parts
        content = "\n".join(str(p.get("text", p)) if isinstance(p, dict) else str(p) for p in content)
    if content:
        parts.append(f"<pre>{_e(content)}</pre>")
    for call in m.get("tool_calls") or []:
        fn = call.get("function", call) if isinstance(call, dict) else {}
        parts.append(f"<pre>→ {_e(fn.get('name', '?'))}({_e(fn.get('arguments', ''))})</pre>")
    if not parts:
        parts.append("<pre><i>(empty)</i></pre>")
    who = role + (f" · {m['name']}" if m.get("name") else "") + (
        f" · {m['tool_call_id']}" if m.get("tool_call_id") else "")
    return f'<div class="msg {_e(role)}"><div class="role">{_e(who)}</div>{"".join(parts)}</div>'


def _body(e: TraceEvent) -> str:
    out: list[str] = []
    content = e.data.get("content") if isinstance(e.data.get("content"), dict) else None
    if e.kind == "llm":
        req = ", ".join(f"{k} {v}" for k, v in e.args.items())
        out.append(f'<div class="meta">{_e(req)}</div>')
        if e.usage is not None:
            out.append(
                f'<div class="meta">tokens: prompt {e.usage.prompt_tokens}, completion {e.usage.completion_tokens}'
                f" ({_e(e.usage.token_source)}); cost {_e(e.usage.cost_text())}; "
                f"{_e(_secs(e.latency_s or 0.0))}</div>"
            )
        asked = [c.get("name") for c in e.data.get("tool_calls") or [] if isinstance(c, dict)]
        if asked:
            out.append(f'<div class="meta">asked for: {_e(", ".join(str(a) for a in asked))}</div>')
        if content is not None:
            msgs = content.get("input") or []
            out.append(f"<h4>prompt ({len(msgs)} messages)</h4>" + "".join(_message(m) for m in msgs))
            if "output" in content:
                out.append("<h4>reply</h4>" + _message(content["output"]))
        else:
            out.append(
                '<p class="nocontent">This trace did not capture the prompt and reply (run with '
                "<code>--trace-content</code> to record them).</p>"
            )
            if e.preview:
                out.append(f"<h4>reply (preview)</h4><pre>{_e(e.preview)}</pre>")
    else:
        if e.args:
            out.append(f"<h4>arguments</h4><pre>{_e(_json(e.args))}</pre>")
        if content is not None and "result" in content:
            out.append(f"<h4>result ({len(str(content['result']))} characters)</h4><pre>{_e(content['result'])}</pre>")
        elif e.preview:
            size = f", preview of {e.result_chars} characters" if e.result_chars is not None else ""
            out.append(f"<h4>result{_e(size)}</h4><pre>{_e(e.preview)}</pre>")
    if e.error:
        out.append(f"<h4>error</h4><pre>{_e(e.error)}</pre>")
    rest = {k: v for k, v in e.data.items() if k != "content"}
    if rest:
        out.append(f"<h4>data</h4><pre>{_e(_json(rest))}</pre>")
    return "".join(out) or "<i>no details</i>"


def _row(r: Row, t0: float, span: float) -> str:
    e = r.event
    color = _color(e)
    left = min(max((r.start - t0) / span * 100, 0.0), 100.0)
    if e is None:
        kind, name, hint, body = "error", "unfinished step", "the run stopped before this step ended", ""
    else:
        kind = e.kind
        name = e.name or e.node or e.kind
        if e.kind == "answer" and _answer_of(e)[0] is None:
            name = "no answer"
        hint, body = _hint(e), _body(e)
    if r.instant:
        mark = f'<span class="mark" style="left:clamp(6px,{left:.2f}%,calc(100% - 6px));background:{color}"></span>'
        secs = ""
    else:
        width = min(max(r.seconds / span * 100, 0.0), 100.0 - left)
        mark = f'<span class="bar" style="left:{left:.2f}%;width:{width:.2f}%;background:{color}"></span>'
        secs = _secs(r.seconds)
    pad = INDENT_PX * min(r.depth, MAX_DEPTH_INDENT)
    title = f"{LABELS.get(kind, kind)} {name}: +{r.start - t0:.3f}s, {secs or 'instant'}"
    step = f"#{e.step} " if e is not None else ""
    return (
        f'<details class="row{" err" if e is None or e.error else ""}" data-kind="{_e(kind)}" data-depth="{r.depth}">'
        f'<summary class="grid" title="{_e(title)}">'
        f'<span class="label" style="padding-left:{pad}px">'
        f'<span class="badge" style="background:{color}">{_e(LABELS.get(kind, kind))}</span>'
        f'<span class="name">{_e(step)}{_e(name)}</span><span class="hint">{_e(hint)}</span></span>'
        f'<span class="num tok">{_e(_tokens(r.tokens))}</span><span class="num sec">{_e(secs)}</span>'
        f'<span class="track">{mark}</span></summary><div class="body">{body}</div></details>'
    )


def _axis(span: float) -> str:
    ticks = []
    for i in range(5):
        frac = i / 4
        shift = "0" if i == 0 else ("-100%" if i == 4 else "-50%")
        ticks.append(f'<span style="left:{frac * 100:.0f}%;transform:translateX({shift})">{_secs(span * frac)}</span>')
    return f'<span class="axis">{"".join(ticks)}</span>'


def _card(key: str, value: Any, sub: str = "", attr: str = "") -> str:
    data = f' data-{attr}="{_e(value)}"' if attr else ""
    sub_html = f'<div class="s">{_e(sub)}</div>' if sub else ""
    return f'<div class="card"{data}><div class="k">{_e(key)}</div><div class="v">{_e(value)}</div>{sub_html}</div>'


def _result(s: dict[str, Any]) -> str:
    docs = ", ".join(s["doc_ids"] or []) or "none cited"
    if s["answer"] is not None:
        return (
            f'<div class="result ok"><div class="k">answer</div><div class="answer">{_e(s["answer"])}</div>'
            f'<div class="meta">documents: {_e(docs)} · stop: {_e(s["stop_reason"])}</div></div>'
        )
    if s["finished"]:
        return (
            f'<div class="result none"><div class="k">result</div><div class="noanswer">no answer</div>'
            f'<div class="meta">why: {_e(s["note"])} · stop: {_e(s["stop_reason"])}</div></div>'
        )
    return ('<div class="result open"><div class="k">result</div>'
            "<div>the run did not finish (no answer event)</div></div>")


def render_html(events: list[TraceEvent], title: str = "sleuth trace") -> str:
    s = summarize(events)
    u = Usage.model_validate(s["usage"])
    rows = build_rows(events)
    t0 = min((r.start for r in rows), default=0.0)
    t1 = max((r.end for r in rows), default=0.0)
    span = max(t1 - t0, 1e-6)
    start = next((e for e in events if e.kind == "run" and e.name == "start"), None)
    question = (start.args.get("question") or start.args.get("query")) if start else None
    agent = start.args.get("agent") if start else None
    llm = [e for e in events if e.kind == "llm"]
    captured = sum(1 for e in llm if isinstance(e.data.get("content"), dict))
    if not llm:
        content_note = "no model calls in this run"
    elif captured == len(llm):
        content_note = "prompts and replies: captured for every model call (open a model row to read them)"
    elif captured:
        content_note = f"prompts and replies: captured for {captured} of {len(llm)} model calls"
    else:
        content_note = "prompts and replies: not captured by this trace (run with --trace-content to record them)"
    route = s["route"] or {}
    cards = [
        _card("LLM calls", s["llm_calls"], attr="llm-calls"),
        _card("tool calls", s["tool_calls"], attr="tool-calls"),
        _card("tokens", u.total_tokens, f"prompt {u.prompt_tokens} · completion {u.completion_tokens}",
              attr="tokens"),
        _card("seconds", s["seconds"]),
        _card("cost", u.cost_text(), u.token_source),
        _card("errors", s["errors"]),
    ]
    if agent or route:
        cards.append(_card("agent", agent or "-", f"route {route.get('strategy')}" if route else ""))
    cards.append(_card("run", ", ".join(s["run_ids"]) or "-", f"{s['events']} events"))
    kinds = sorted(s["kinds"])
    filters = "".join(
        f'<label><input type="checkbox" class="kf" value="{_e(k)}" checked onchange="filterKinds()"> '
        f'<span style="color:{COLORS.get(k, "#666")}">{_e(LABELS.get(k, k))}</span> ({s["kinds"][k]})</label>'
        for k in kinds
    )
    body_rows = "\n".join(_row(r, t0, span) for r in rows)
    q = f'<div class="q">{_e(question)}</div>' if question else ""
    why = f'<div class="meta">route: {_e(route.get("reason"))}</div>' if route.get("reason") else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>"
        f"<h1>{_e(title)}</h1>{q}{_result(s)}<div class=\"cards\">{''.join(cards)}</div>{why}"
        f'<div class="controls"><button onclick="toggleAll(true)">expand all</button>'
        f'<button onclick="toggleAll(false)">collapse all</button>{filters}</div>'
        f'<div class="content-note">{_e(content_note)}</div>'
        f'<div class="wf"><div class="grid wf-head"><span>step (nested as it ran)</span><span class="num">tokens'
        f'</span><span class="num">time</span>{_axis(span)}</div>'
        f"{body_rows}</div></body></html>\n"
    )


def write_html(
    trace_path: str | Path,
    out: str | Path | None = None,
    *,
    skip_corrupt: bool = False,
    events: list[TraceEvent] | None = None,
) -> Path:
    """Write the page of the trace at ``trace_path`` (``events``: already read from it) to ``out`` (default: the
    trace's path with ``.html``)."""
    from sleuth.fsutil import atomic_write_text
    from sleuth.tracing.show import load_events

    src = Path(trace_path)
    if events is None:
        events = load_events(src, skip_corrupt=skip_corrupt)
    dest = Path(out) if out else src.with_suffix(".html")
    atomic_write_text(dest, render_html(events, title=f"sleuth trace: {src.name}"))
    return dest
