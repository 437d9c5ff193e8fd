"""Run directories: the row format, reading rows back (last row per question wins), and summaries.

A run directory holds ``manifest.json`` (what was run, on which data, by which code), ``rows.jsonl`` (one row per
finished question, appended and flushed as each finishes), ``bad_records.jsonl`` (records the loader skipped)
and ``summary.json``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import DataError
from sleuth.records import UNMEASURED, Usage

MANIFEST = "manifest.json"
ROWS = "rows.jsonl"
SUMMARY = "summary.json"
BAD = "bad_records.jsonl"


class EvalRow(BaseModel):
    id: str
    status: str  # "ok" | "error"
    question: str = ""
    answer: str | None = None
    gold_answers: list[str] = Field(default_factory=list)
    ranking: list[str] = Field(default_factory=list)  # top of the ranking, original ids
    cited: list[str] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    usage: Usage = Field(default_factory=Usage)
    tokens: int = 0
    cost: float | str = UNMEASURED
    llm_calls: int = 0
    tool_calls: int = 0
    seconds: float = 0.0
    error: str | None = None


def read_rows(run_dir: str | Path) -> list[EvalRow]:
    """Rows of a run, the last one per question id (a resumed run may have retried an errored question).
    A torn line (the run was killed mid-write, possibly inside a multi-byte character) is skipped: lines are
    split as bytes and each is decoded on its own."""
    path = Path(run_dir) / ROWS
    if not path.is_file():
        return []
    rows: dict[str, EvalRow] = {}
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                row = EvalRow.model_validate(json.loads(raw.decode("utf-8")))
            except ValueError:  # UnicodeDecodeError, JSONDecodeError, ValidationError
                continue
            rows.pop(row.id, None)
            rows[row.id] = row
    return list(rows.values())


def truncate_torn_row(path: str | Path) -> int:
    """Cut a torn last line (no final newline: a run killed mid-write) off a JSONL file, before appending to it.
    Returns how many bytes were removed. Only for the one process that writes the file (a resuming run)."""
    path = Path(path)
    if not path.is_file():
        return 0
    with path.open("rb+") as fh:
        size = fh.seek(0, 2)
        if size == 0:
            return 0
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return 0
        end = size  # find the last newline: everything after it is the torn row
        chunk = 1 << 16
        while end > 0:
            start = max(0, end - chunk)
            fh.seek(start)
            block = fh.read(end - start)
            nl = block.rfind(b"\n")
            if nl >= 0:
                keep = start + nl + 1
                break
            end = start
        else:
            keep = 0
        fh.truncate(keep)
        return size - keep


def read_manifest(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / MANIFEST
    if not path.is_file():
        raise DataError(
            f"{run_dir} is not an eval run directory (no {MANIFEST})",
            hint="pass the --out folder of a `sleuth eval` run",
        )
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(
            f"{path} is not valid JSON: {e}", hint="the run directory is damaged; rerun into a new --out"
        ) from None


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    i = min(len(s) - 1, max(0, round(q * (len(s) - 1))))
    return s[i]


def summarize(rows: list[EvalRow]) -> dict[str, Any]:
    """Means of every metric, an errored question counting 0 (:func:`sleuth.evals.metrics.means`), the error
    counts apart (``n_errors``: questions whose system failed; ``n_judge_errors``: answers the judge failed to
    grade, scored 0), plus cost/tokens/calls/latency per question that ran."""
    from sleuth.evals.metrics import means

    ok = [r for r in rows if r.status == "ok"]
    n_errors = len(rows) - len(ok)
    metrics = means([r.metrics for r in ok], n_errors)
    usage = Usage()
    for r in ok:
        usage = usage + r.usage
    secs = [r.seconds for r in ok]
    n = len(ok) or 1
    judged = [r.details.get("judge", {}).get("status") for r in ok if "judge" in r.details]
    return {
        "questions": len(rows),
        "ok": len(ok),
        "errors": n_errors,
        "n_errors": n_errors,
        "n_judge_errors": judged.count("error"),
        "metrics": metrics,
        "tokens_per_question": round(usage.total_tokens / n, 1),
        "prompt_tokens_per_question": round(usage.prompt_tokens / n, 1),
        "completion_tokens_per_question": round(usage.completion_tokens / n, 1),
        "cost": usage.cost,
        "cost_complete": usage.cost_complete,
        "llm_calls_per_question": round(sum(r.llm_calls for r in ok) / n, 2),
        "tool_calls_per_question": round(sum(r.tool_calls for r in ok) / n, 2),
        "seconds_per_question": round(sum(secs) / n, 3),
        "seconds_p50": round(statistics.median(secs), 3) if secs else 0.0,
        "seconds_p90": round(_pct(secs, 0.9), 3),
        "judge": {s: judged.count(s) for s in sorted(set(judged))} if judged else {},
    }
