"""The evaluation runner: run a system over questions, one JSONL row per question, resumable.

* Questions are taken in file order, or shuffled with ``seed``; then ``limit`` keeps the first N.
* Up to ``concurrency`` questions run at once (threads: systems spend their time in model servers, rg or numpy),
  or on Ray workers (``executor``, :mod:`sleuth.evals.executors`).
  Each finished question's row is appended to ``rows.jsonl`` and flushed at once, so a killed run loses at most
  the questions in flight.
* ``resume=True`` skips the questions that already have an ``ok`` row (errored ones are retried). A run
  directory made with a different configuration (system, model, parameters, data checksum, seed) is refused with
  :class:`~sleuth.errors.RunConfigMismatchError`; ``limit`` may change (to extend a run).
* Each question's trace events (model and tool calls) go to ``traces/<id>.jsonl`` when the system emits any.
* ``manifest.json`` records the sleuth version, git commit, configuration, data checksum and corpus fingerprint.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError, RunConfigMismatchError, SleuthError
from sleuth.evals.datasets.base import EvalQuestion, EvalSet, seeded_order
from sleuth.evals.executors import Executor, Threads
from sleuth.evals.results import BAD, MANIFEST, ROWS, SUMMARY, EvalRow, read_rows, summarize, truncate_torn_row
from sleuth.evals.scoring import Scorer
from sleuth.evals.systems import System, SystemOutput
from sleuth.fsutil import atomic_write_text
from sleuth.records import TraceEvent

RANKING_KEEP = 100
TRACES = "traces"


class RunConfig(BaseModel):
    """Everything that decides a run's numbers. Two runs with equal configs may share a run directory."""

    task: str
    data_checksum: str
    system: dict[str, Any] = Field(default_factory=dict)  # agent, method, rerank, model, k, ...
    seed: int | None = None
    judge_model: str | None = None

    def diff(self, other: RunConfig) -> list[str]:
        a, b = self.model_dump(), other.model_dump()
        out = []
        for key in sorted(set(a) | set(b)):
            if key == "system":
                for sk in sorted(set(a["system"]) | set(b["system"])):
                    if a["system"].get(sk) != b["system"].get(sk):
                        out.append(f"system.{sk}: {a['system'].get(sk)!r} (run dir) vs {b['system'].get(sk)!r} (now)")
            elif a.get(key) != b.get(key):
                out.append(f"{key}: {a.get(key)!r} (run dir) vs {b.get(key)!r} (now)")
        return out


class RunResult(BaseModel):
    run_dir: str
    summary: dict[str, Any]
    ran: int
    skipped: int
    interrupted: bool = False


def git_commit() -> str | None:
    """The commit of the sleuth source tree (with ``-dirty`` when it has local changes), if it is a checkout."""
    src = Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        status = ["git", "status", "--porcelain", "--untracked-files=no"]
        dirty = subprocess.run(status, cwd=src, capture_output=True, text=True, timeout=10)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def _check_resume(run_dir: Path, config: RunConfig, resume: bool) -> dict[str, Any] | None:
    manifest_path = run_dir / MANIFEST
    has_rows = (run_dir / ROWS).is_file() and (run_dir / ROWS).stat().st_size > 0
    if not manifest_path.is_file():
        if has_rows:
            raise ConfigError(f"{run_dir} holds rows but no {MANIFEST}", hint="use a new --out folder")
        return None
    try:
        old = json.loads(manifest_path.read_text(encoding="utf-8"))
        old_config = RunConfig.model_validate(old["config"])
    except (json.JSONDecodeError, KeyError, ValueError) as e:
        raise RunConfigMismatchError(f"{manifest_path} is unreadable ({e}); cannot check it matches this run") from None
    if not resume:
        if has_rows:
            raise ConfigError(
                f"{run_dir} already holds a run",
                hint="pass --resume to continue it, or choose a new --out folder",
            )
        return None
    diffs = old_config.diff(config)
    if diffs:
        raise RunConfigMismatchError(f"{run_dir} was made with a different configuration: " + "; ".join(diffs))
    return old


def _row(
    q: EvalQuestion, out: SystemOutput, seconds: float, metrics: dict[str, float], details: dict[str, Any]
) -> EvalRow:
    return EvalRow(
        id=q.id,
        status="ok",
        question=q.question,
        answer=out.answer,
        gold_answers=q.answers,
        ranking=out.ranking[:RANKING_KEEP],
        cited=out.cited,
        metrics={k: round(float(v), 6) for k, v in metrics.items()},
        details={**details, **({"system": out.extra} if out.extra else {})},
        usage=out.usage,
        tokens=out.usage.total_tokens,
        cost=out.usage.cost,
        llm_calls=out.count_llm_calls(),
        tool_calls=out.count_tool_calls(),
        seconds=round(seconds, 4),
    )


def _one(system: System, scorer: Scorer, q: EvalQuestion) -> tuple[EvalRow, list[TraceEvent]]:
    t0 = time.perf_counter()
    try:
        out = system(q)
    except Exception as e:  # one failed question must not stop the run; its row says why
        if isinstance(e, SleuthError):
            err = f"{type(e).__name__}: {e}"
        else:
            err = "".join(traceback.format_exception_only(e)).strip()
        seconds = round(time.perf_counter() - t0, 4)
        row = EvalRow(id=q.id, status="error", question=q.question, gold_answers=q.answers, seconds=seconds,
                      error=err[:2000])
        return row, []
    seconds = time.perf_counter() - t0
    metrics, details = scorer(q, out)
    return _row(q, out, seconds, metrics, details), out.events


def trace_path(run_dir: str | Path, question_id: str) -> Path:
    """Where a question's trace events go (``sleuth trace show`` reads it)."""
    import hashlib
    import re

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", question_id)[:100]
    if safe != question_id:
        safe += "-" + hashlib.sha1(question_id.encode()).hexdigest()[:8]
    return Path(run_dir) / TRACES / f"{safe}.jsonl"


def _write_trace(run_dir: Path, question_id: str, events: list[TraceEvent]) -> str:
    path = trace_path(run_dir, question_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "".join(e.model_dump_json() + "\n" for e in events))
    return str(path.relative_to(run_dir))


def run_eval(
    es: EvalSet,
    system: System,
    scorer: Scorer,
    out_dir: str | Path,
    config: RunConfig,
    *,
    primary: str | None = None,
    concurrency: int = 1,
    resume: bool = False,
    limit: int | None = None,
    progress: bool | None = None,
    corpus_info: dict[str, Any] | None = None,
    on_row: Callable[[EvalRow], None] | None = None,
    save_traces: bool = True,
    on_trace: Callable[[EvalRow, list[TraceEvent]], None] | None = None,
    executor: Executor | None = None,
) -> RunResult:
    """Run ``system`` on ``es`` and score each question with ``scorer``; rows go to ``out_dir/rows.jsonl``.
    ``on_trace(row, events)``: each question's trace events once its row is written (a live exporter).
    ``executor``: where the questions run (:mod:`sleuth.evals.executors`; default: ``concurrency`` threads here)."""
    from sleuth.progress import progress_bar

    if concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be at least 1, got {limit}")
    run_dir = Path(out_dir).expanduser()
    run_dir.mkdir(parents=True, exist_ok=True)
    old = _check_resume(run_dir, config, resume)
    primary = primary or "ndcg@10"

    questions = select_questions(es, config.seed, limit)
    wanted = {q.id for q in questions}
    previous = [r for r in read_rows(run_dir) if r.id in wanted] if old is not None else []
    done = {r.id for r in previous if r.status == "ok"}
    pending = [q for q in questions if q.id not in done]

    manifest = _manifest(
        es, config, old, limit=limit, primary=primary, corpus_info=corpus_info, concurrency=concurrency,
        executor=(executor.describe() if executor is not None else f"threads x{concurrency}"),
    )
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    atomic_write_text(run_dir / BAD, "".join(b.model_dump_json() + "\n" for b in es.bad))
    rows_path = run_dir / ROWS
    truncate_torn_row(rows_path)  # a killed run may have left a torn last line (even mid-character): cut it off

    live = _LiveMean(es.name, primary, [r for r in previous if r.status == "ok"])
    with rows_path.open("a", encoding="utf-8") as fh, progress_bar(len(questions), live.describe(), progress) as bar:
        bar.update(completed=len(questions) - len(pending))
        lock = threading.Lock()

        def write(done: tuple[EvalRow, list[TraceEvent]]) -> None:
            row, events = done
            if events and save_traces:  # the trace first: a row on disk implies its trace is there
                row.details["trace"] = _write_trace(run_dir, row.id, events)
            with lock:
                fh.write(row.model_dump_json() + "\n")
                fh.flush()
                live.add(row)
            bar.advance(1)
            bar.update(description=live.describe())
            if on_row is not None:
                on_row(row)
            if on_trace is not None and events:
                on_trace(row, events)

        (executor or Threads(system, scorer, concurrency)).run(pending, write, _one)

    summary = summarize([r for r in read_rows(run_dir) if r.id in wanted])
    summary["primary_metric"] = primary
    atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2, ensure_ascii=False))
    return RunResult(run_dir=str(run_dir), summary=summary, ran=len(pending), skipped=len(questions) - len(pending))


def select_questions(es: EvalSet, seed: int | None, limit: int | None) -> list[EvalQuestion]:
    """File order, or shuffled with ``seed``; then the first ``limit``."""
    questions = seeded_order(es.questions, seed)
    return questions[:limit] if limit is not None else questions


def _manifest(
    es: EvalSet,
    config: RunConfig,
    old: dict[str, Any] | None,
    *,
    limit: int | None,
    primary: str,
    corpus_info: dict[str, Any] | None,
    concurrency: int,
    executor: str,
) -> dict[str, Any]:
    from sleuth import __version__

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "sleuth_version": __version__,
        "git_commit": git_commit(),
        "created": (old or {}).get("created") or now,
        "resumed": [*(old or {}).get("resumed", []), now] if old else [],
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "config": config.model_dump(mode="json"),
        "kind": es.kind,
        "dataset": es.name,
        "data_files": es.files,
        "questions_total": len(es.questions),
        "limit": limit,
        "bad_records": len(es.bad),
        "primary_metric": primary,
        "corpus": corpus_info or {},
        "concurrency": concurrency,
        "executor": executor,
    }


class _LiveMean:
    """The progress line: the primary metric's running mean (an errored question counts 0, as in the summary)."""

    def __init__(self, name: str, primary: str, previous_ok: list[EvalRow]) -> None:
        self.name, self.primary = name, primary
        values = [r.metrics[primary] for r in previous_ok if primary in r.metrics]
        self.sum, self.n, self.errors = sum(values), len(values), 0

    def add(self, row: EvalRow) -> None:
        if row.status == "ok" and self.primary in row.metrics:
            self.sum += row.metrics[self.primary]
            self.n += 1
        elif row.status != "ok":
            self.errors += 1
            self.n += 1

    def describe(self) -> str:
        mean = f"{self.sum / self.n:.3f}" if self.n else "-"
        err = f" errors {self.errors}" if self.errors else ""
        return f"{self.name} {self.primary} {mean}{err}"
