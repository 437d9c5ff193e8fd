"""`sleuth trace html FILE`: a run's trace as one self-contained HTML page (no network, no external files).

The page holds a summary (answer, route, tokens, cost, time) and a timeline: one expandable row per event
(``<details>``, so it works without scripts), with a bar showing when the event ran and how long it took; an
expanded row shows the arguments, the result preview, the usage and the event's data as JSON. A few lines of
inline script add "expand all" and filtering by kind.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.show import _answer_of, args_text, out_text, summarize, tokens_text

COLORS = {
    "run": "#444",
    "node": "#999",
    "llm": "#a14bd1",
    "tool": "#1b8a9c",
    "retrieval": "#2f62c9",
    "sira": "#2f62c9",
    "rerank": "#2f62c9",
    "budget": "#c98a00",
    "error": "#c92f2f",
    "answer": "#2f9c46",
    "note": "#b58b00",
}
NO_ANSWER_COLOR = "#9a6a00"

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.3em;margin:0 0 .3em}
.summary{background:#f6f6f8;border-radius:6px;padding:.8em 1em;margin-bottom:1em}
.summary div{margin:.15em 0}.k{color:#666;display:inline-block;min-width:7em}
.answer{font-size:1.1em;font-weight:600;color:#1d6e31}
.noanswer{font-size:1.1em;font-weight:600;color:#9a6a00}
.controls{margin:.5em 0 1em}.controls label{margin-right:.8em;font-size:.9em}
details{border-bottom:1px solid #eee}
summary{cursor:pointer;display:grid;grid-template-columns:3em 4.5em 6em 9em 8em 1fr 6em 4em 160px;gap:.5em;
 align-items:center;padding:.25em 0;list-style:none;font-size:.92em}
summary::-webkit-details-marker{display:none}
.kind{font-weight:600}.num{text-align:right;font-variant-numeric:tabular-nums}
.out{overflow:hidden;white-space:nowrap;text-overflow:ellipsis;color:#333}
.bar{position:relative;height:8px;background:#f0f0f0;border-radius:4px}
.bar span{position:absolute;top:0;height:8px;border-radius:4px;min-width:2px}
.body{padding:.3em 0 .8em 3.5em}
pre{background:#fafafa;border:1px solid #eee;padding:.5em;white-space:pre-wrap;word-break:break-word;margin:.3em 0;
 max-height:30em;overflow:auto;font-size:.85em}
.err summary{background:#fff3f3}
"""

SCRIPT = """
function toggleAll(open){document.querySelectorAll('details').forEach(d=>{if(d.style.display!=='none')d.open=open})}
function filterKinds(){const on=new Set([...document.querySelectorAll('.kf:checked')].map(c=>c.value));
document.querySelectorAll('details').forEach(d=>{d.style.display=on.has(d.dataset.kind)?'':'none'})}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _json(x: Any) -> str:
    return json.dumps(x, indent=2, ensure_ascii=False, default=str)


def _row(e: TraceEvent, t0: float, span: float) -> str:
    color = COLORS.get(e.kind, "#666")
    if e.kind == "answer" and _answer_of(e)[0] is None:
        color = NO_ANSWER_COLOR
    start = (e.ts - (e.latency_s or 0.0) - t0) / span * 100 if span else 0.0
    width = (e.latency_s or 0.0) / span * 100 if span else 0.0
    start = min(max(start, 0.0), 100.0)
    width = min(max(width, 0.0), 100.0 - start)
    body = []
    if e.args:
        body.append(f"<div><b>arguments</b><pre>{_e(_json(e.args))}</pre></div>")
    if e.preview:
        size = f" ({e.result_chars} characters)" if e.result_chars is not None else ""
        body.append(f"<div><b>result{_e(size)}</b><pre>{_e(e.preview)}</pre></div>")
    if e.usage is not None:
        body.append(f"<div><b>usage</b><pre>{_e(_json(e.usage.model_dump(mode='json')))}</pre></div>")
    if e.error:
        body.append(f"<div><b>error</b><pre>{_e(e.error)}</pre></div>")
    if e.data:
        body.append(f"<div><b>data</b><pre>{_e(_json(e.data))}</pre></div>")
    latency = f"{e.latency_s:.2f}s" if e.latency_s is not None else ""
    return (
        f'<details data-kind="{_e(e.kind)}"{" class=err" if e.error else ""}><summary>'
        f'<span class="num">{e.step}</span><span class="num">+{e.ts - t0:.2f}s</span>'
        f'<span class="kind" style="color:{color}">{_e(e.kind)}</span><span>{_e(e.node)}</span>'
        f'<span>{_e(e.name)}</span><span class="out" title="{_e(args_text(e, 400))}">{_e(out_text(e, 200))}</span>'
        f'<span class="num">{_e(tokens_text(e))}</span><span class="num">{latency}</span>'
        f'<span class="bar"><span style="left:{start:.2f}%;width:{width:.2f}%;background:{color}"></span></span>'
        f'</summary><div class="body">{"".join(body) or "<i>no details</i>"}</div></details>'
    )


def render_html(events: list[TraceEvent], title: str = "sleuth trace") -> str:
    s = summarize(events)
    u = Usage.model_validate(s["usage"])
    t0 = min((e.ts - (e.latency_s or 0.0) for e in events), default=0.0)
    t1 = max((e.ts for e in events), default=0.0)
    span = max(t1 - t0, 1e-6)
    kinds = sorted(s["kinds"])
    summary = [
        f'<div><span class="k">run</span>{_e(", ".join(s["run_ids"]) or "-")}</div>',
        f'<div><span class="k">events</span>{s["events"]} ({s["llm_calls"]} LLM calls, {s["tool_calls"]} tool '
        f'calls, {s["errors"]} errors), {s["seconds"]} s</div>',
        f'<div><span class="k">tokens</span>prompt {u.prompt_tokens}, completion {u.completion_tokens} '
        f"({_e(u.token_source)}); cost {_e(u.cost_text())}</div>",
    ]
    if s["route"]:
        summary.append(
            f'<div><span class="k">route</span>{_e(s["route"].get("strategy"))}: {_e(s["route"].get("reason"))}</div>'
        )
    if s["answer"] is not None:
        summary.append(f'<div><span class="k">answer</span><span class="answer">{_e(s["answer"])}</span></div>')
    elif s["finished"]:
        summary.append('<div><span class="k">answer</span><span class="noanswer">no answer</span></div>')
        summary.append(f'<div><span class="k">why</span>{_e(s["note"])}</div>')
    if s["finished"]:
        summary.append(
            f'<div><span class="k">documents</span>{_e(", ".join(s["doc_ids"] or []))}'
            f' &nbsp; <span class="k">stop</span>{_e(s["stop_reason"])}</div>'
        )
    filters = "".join(
        f'<label><input type="checkbox" class="kf" value="{_e(k)}" checked onchange="filterKinds()">'
        f'<span style="color:{COLORS.get(k, "#666")}">{_e(k)}</span> ({s["kinds"][k]})</label>'
        for k in kinds
    )
    rows = "\n".join(_row(e, t0, span) for e in events)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_e(title)}</title><style>{CSS}</style><script>{SCRIPT}</script></head><body>"
        f"<h1>{_e(title)}</h1><div class=\"summary\">{''.join(summary)}</div>"
        f'<div class="controls"><button onclick="toggleAll(true)">expand all</button> '
        f'<button onclick="toggleAll(false)">collapse all</button> &nbsp; {filters}</div>'
        f"<div class=\"timeline\">{rows}</div></body></html>\n"
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
