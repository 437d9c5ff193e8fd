"""`sleuth eval report RUN_DIR...`: compare runs side by side as Markdown, a self-contained HTML page, or JSON.

The HTML page embeds its plots as base64 PNGs (matplotlib, Agg backend), one metric per axis: each primary metric
against tokens per question, one panel of bars per metric, and the distribution of seconds per question; each run
is named by its folder and system label (two runs of one system stay apart). Its tables have the runs as columns,
so a dozen metrics fit the window. Summaries are recomputed
from ``rows.jsonl`` (the last row per question), so a report on a run that is still going is up to date.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

from sleuth.errors import DataError
from sleuth.evals.results import read_manifest, read_rows, summarize

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
MANIFEST_KEYS = ("sleuth_version", "git_commit", "created", "config", "limit", "bad_records", "corpus")


def _label(manifest: dict[str, Any]) -> str:
    from sleuth.evals.build import system_label

    return system_label(manifest.get("config", {}).get("system", {}))


def load_runs(run_dirs: list[str | Path]) -> list[dict[str, Any]]:
    """One entry per run: its directory, label, manifest, summary and per-question seconds."""
    if not run_dirs:
        raise DataError("no run directories given", hint="pass one or more --out folders of `sleuth eval` runs")
    runs = []
    for d in run_dirs:
        manifest = read_manifest(d)
        rows = read_rows(d)
        summary = summarize(rows)
        primary = manifest.get("primary_metric", "ndcg@10")
        runs.append(
            {
                "run_dir": str(d),
                "label": _label(manifest),
                "task": manifest.get("config", {}).get("task"),
                "dataset": manifest.get("dataset"),
                "primary_metric": primary,
                "primary": summary["metrics"].get(primary),
                "summary": summary,
                "seconds": [r.seconds for r in rows if r.status == "ok"],
                "manifest": {k: manifest.get(k) for k in MANIFEST_KEYS},
            }
        )
    return runs


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def _groups(runs: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in runs:
        out.setdefault((str(r["task"]), str(r["dataset"])), []).append(r)
    return out


def _table(runs: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    names: dict[str, None] = {}
    for r in runs:
        for k in r["summary"]["metrics"]:
            names.setdefault(k, None)
    metric_names = sorted(names, key=lambda k: (k != runs[0]["primary_metric"], k))
    judged = any(r["summary"].get("judge") for r in runs)
    header = ["run", "system", "questions", *metric_names, "tokens/q", "cost", "LLM calls/q", "tool calls/q", "s/q",
              "p90 s", "n_errors", *(["n_judge_errors"] if judged else [])]
    rows = []
    for r in runs:
        s = r["summary"]
        cost = s["cost"] if isinstance(s["cost"], str) else f"${s['cost']:.4f}"
        rows.append(
            [
                Path(r["run_dir"]).name,
                r["label"],
                str(s["questions"]),
                *(_fmt(s["metrics"].get(m)) for m in metric_names),
                _fmt(s["tokens_per_question"], 0),
                cost,
                _fmt(s["llm_calls_per_question"], 2),
                _fmt(s["tool_calls_per_question"], 2),
                _fmt(s["seconds_per_question"], 3),
                _fmt(s["seconds_p90"], 3),
                str(s["errors"]),
                *([str(s.get("n_judge_errors", 0))] if judged else []),
            ]
        )
    return header, rows


SP_NOTE = (
    "`sp_*` score the supporting paragraphs the system cited, and only those it was shown (never a default "
    "citation); `sp_retrieved_not_cited` is the share of supporting paragraphs the model was shown or read but did "
    "not cite (a strategy that cites nothing, such as iter-retgen in the paper's form, has all its found paragraphs "
    "there)."
)


def _notes(group: list[dict[str, Any]]) -> list[str]:
    """What the group's columns mean, where a name alone could mislead."""
    names = {k for r in group for k in r["summary"]["metrics"]}
    return [SP_NOTE] if any(k.startswith("sp_") for k in names) else []


def render_markdown(runs: list[dict[str, Any]]) -> str:
    lines = ["# sleuth eval report", ""]
    for (task, dataset), group in _groups(runs).items():
        header, rows = _table(group)
        lines += [f"## {task}: {dataset}", "", f"Primary metric: `{group[0]['primary_metric']}`. Errored questions "
                  "count 0 in every mean; `n_errors` says how many there were.", ""]
        lines += [n for note in _notes(group) for n in (note, "")]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "|".join("---" for _ in header) + "|")
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        lines.append("")
    lines.append("## Runs")
    lines.append("")
    for r in runs:
        m = r["manifest"]
        lines.append(
            f"- `{r['run_dir']}`: sleuth {m.get('sleuth_version')}, commit {m.get('git_commit') or 'unknown'}, "
            f"created {m.get('created')}, limit {m.get('limit')}, "
            f"data checksum {m.get('config', {}).get('data_checksum')}, "
            f"seed {m.get('config', {}).get('seed')}, skipped records {m.get('bad_records')}"
        )
    return "\n".join(lines) + "\n"


# -- plots --------------------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def plots(runs: list[dict[str, Any]]) -> dict[str, str]:
    """``{name: base64 PNG}``: quality vs tokens, metric bars, latency distribution."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from sleuth.errors import MissingExtraError

        raise MissingExtraError("eval", "matplotlib", "eval report plots") from None
    out: dict[str, str] = {}
    # a run's label names its folder too: two runs of one system stay apart
    labels = [f"{Path(r['run_dir']).name}: {r['label']}\n{r['dataset']}" for r in runs]

    # what each method costs against what it gains: one plot per set, its primary metric alone on the y axis
    label_of = {id(r): lab for r, lab in zip(runs, labels, strict=True)}
    for i, ((_task, dataset), group) in enumerate(_groups(runs).items()):
        points = [r for r in group if r["primary"] is not None]
        if not points:
            continue
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for r in points:
            xy = (r["summary"]["tokens_per_question"] or 0.0, r["primary"])
            ax.scatter(*xy, s=50)
            ax.annotate(label_of[id(r)].split("\n")[0], xy, fontsize=7, xytext=(4, 4), textcoords="offset points")
        top = max(p["summary"]["tokens_per_question"] or 0.0 for p in points)
        ax.set_xlim(0, top * 1.15 if top > 0 else 1.0)  # zero tokens: an axis from 0, not -0.04..0.04
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("model tokens per question" + (" (no model tokens)" if top == 0 else ""))
        ax.set_ylabel(group[0]["primary_metric"])
        ax.set_title(f"{dataset}: {group[0]['primary_metric']} against tokens per question")
        ax.grid(alpha=0.3)
        out["quality_vs_tokens" if i == 0 else f"quality_vs_tokens_{i + 1}"] = _png(fig)

    names: dict[str, None] = {}
    for r in runs:
        for k in r["summary"]["metrics"]:
            if not k.startswith("judge_"):
                names.setdefault(k, None)
    metric_names = list(names)[:8]
    if metric_names:  # small multiples: one metric per axis, one bar per run
        cols = min(4, len(metric_names))
        rows_n = (len(metric_names) + cols - 1) // cols
        fig, axes = plt.subplots(rows_n, cols, figsize=(3.0 * cols, 2.6 * rows_n + 0.6), squeeze=False)
        short = [Path(r["run_dir"]).name for r in runs]
        for k, m in enumerate(metric_names):
            ax = axes[k // cols][k % cols]
            vals = [r["summary"]["metrics"].get(m) or 0.0 for r in runs]
            ax.bar(range(len(runs)), vals, color=[f"C{i % 10}" for i in range(len(runs))])
            ax.set_xticks(range(len(runs)))
            ax.set_xticklabels(short, rotation=30, ha="right", fontsize=7)
            ax.set_ylim(0, 1)
            ax.set_title(m, fontsize=9)
            ax.grid(alpha=0.3, axis="y")
        for k in range(len(metric_names), rows_n * cols):
            axes[k // cols][k % cols].axis("off")
        fig.suptitle("Metrics per run (one metric per panel)")
        fig.tight_layout()
        out["metrics_per_run"] = _png(fig)

    fig, ax = plt.subplots(figsize=(max(6.4, 1.1 * len(runs)), 4.6))
    data = [r["seconds"] or [0.0] for r in runs]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(runs) + 1))
    ax.set_xticklabels([lab.replace("\n", " · ") for lab in labels], fontsize=7, rotation=30, ha="right")
    ax.set_ylabel("seconds per question")
    ax.set_ylim(bottom=0)
    ax.set_title("Latency distribution")
    ax.grid(alpha=0.3, axis="y")
    out["latency"] = _png(fig)
    return out


def _flat(d: Any, prefix: str = "") -> dict[str, str]:
    if not isinstance(d, dict):
        return {prefix: str(d)}
    out: dict[str, str] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def manifest_differences(runs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Per run, the manifest settings (config, limit, git commit) whose value is not the same in every run."""
    flats = [_flat({"config": r["manifest"].get("config", {}), "limit": r["manifest"].get("limit"),
                    "git_commit": r["manifest"].get("git_commit")}) for r in runs]
    keys = sorted({k for f in flats for k in f})
    varying = [k for k in keys if len({f.get(k, "-") for f in flats}) > 1]
    return [{k: f.get(k, "-") for k in varying} for f in flats]


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    """The runs as columns and the measures as rows (the Markdown table's transpose): a dozen metrics then fit a
    1400 px window however many there are; each column is headed by its run folder and system label, so two runs of
    one system stay apart. Many runs scroll inside the table's box, never the page."""
    head = "".join(
        f"<th>{html.escape(row[0])}<br><span class='sys'>{html.escape(row[1])}</span></th>" for row in rows
    )
    body = []
    for i, name in enumerate(header[2:], start=2):
        cells = "".join(f"<td>{html.escape(row[i])}</td>" for row in rows)
        body.append(f"<tr><th class='m'>{html.escape(name)}</th>{cells}</tr>")
    return f"<div class='tablewrap'><table><tr><th></th>{head}</tr>{''.join(body)}</table></div>"


def render_html(runs: list[dict[str, Any]], images: dict[str, str]) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>sleuth eval report</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:right}th{background:#f3f3f3}"
        "th.m{text-align:left;font-weight:600}.sys{font-weight:400;color:#555}.tablewrap{max-width:100%;overflow-x:auto}"
        "img{max-width:100%;margin:0.5em 1em 0.5em 0}"
        "code{background:#f5f5f5;padding:1px 3px}",
        "</style></head><body><h1>sleuth eval report</h1>",
    ]
    for (task, dataset), group in _groups(runs).items():
        header, rows = _table(group)
        parts.append(f"<h2>{html.escape(task)}: {html.escape(dataset)}</h2>")
        parts.append(f"<p>Primary metric: <code>{html.escape(group[0]['primary_metric'])}</code></p>")
        parts += [f"<p>{html.escape(n).replace('`', '')}</p>" for n in _notes(group)]
        parts.append(_html_table(header, rows))
    parts.append("<h2>Plots</h2><div>")
    for name, b64 in images.items():
        parts.append(f"<img alt='{html.escape(name)}' src='data:image/png;base64,{b64}'>")
    parts.append("</div><h2>Runs</h2><ul>")
    diffs = manifest_differences(runs)
    for r, diff in zip(runs, diffs, strict=True):
        m = r["manifest"]
        differs = "; differs in " + ", ".join(f"{k}={v}" for k, v in diff.items()) if diff else ""
        parts.append(
            f"<li><code>{html.escape(r['run_dir'])}</code>: sleuth {html.escape(str(m.get('sleuth_version')))}, "
            f"commit {html.escape(str(m.get('git_commit')))}, created {html.escape(str(m.get('created')))}, "
            f"data checksum {html.escape(str(m.get('config', {}).get('data_checksum')))}"
            f"<span class='diff'>{html.escape(differs)}</span></li>"
        )
    parts.append("</ul></body></html>")
    return "\n".join(parts)


def write_report(
    run_dirs: list[str | Path], out_dir: str | Path | None = None, *, html_page: bool = True
) -> dict[str, Any]:
    """Write ``report.md`` (and ``report.html``) into ``out_dir`` (default: the single run's directory, or
    ``./sleuth-eval-report`` for several). Returns the JSON form: paths and each run's summary."""
    from sleuth.fsutil import atomic_write_text

    runs = load_runs(run_dirs)
    default = Path(run_dirs[0]) if len(run_dirs) == 1 else Path("sleuth-eval-report")
    out = Path(out_dir) if out_dir is not None else default
    out.mkdir(parents=True, exist_ok=True)
    md = render_markdown(runs)
    atomic_write_text(out / REPORT_MD, md)
    paths = {"markdown": str(out / REPORT_MD)}
    if html_page:
        atomic_write_text(out / REPORT_HTML, render_html(runs, plots(runs)))
        paths["html"] = str(out / REPORT_HTML)
    return {
        "ok": True,
        "paths": paths,
        "runs": [{k: v for k, v in r.items() if k != "seconds"} for r in runs],
        "markdown": md,
    }
