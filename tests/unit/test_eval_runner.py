"""The runner: one flushed row per question, resume, refusal of a different configuration, interruption."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from sleuth.errors import ConfigError, RunConfigMismatchError
from sleuth.evals.datasets.base import EvalQuestion, EvalSet
from sleuth.evals.report import write_report
from sleuth.evals.results import read_rows
from sleuth.evals.runner import RunConfig, run_eval
from sleuth.evals.scoring import qa_scorer, retrieval_scorer
from sleuth.evals.systems import SystemOutput
from sleuth.records import TraceEvent, Usage


def make_set(n: int = 6) -> EvalSet:
    qs = [
        EvalQuestion(id=f"q{i}", question=f"where is d{i}?", answers=[f"d{i}"], relevance={f"d{i}": 1},
                     gold_doc_ids=[f"d{i}"], supporting_titles=[f"d{i}"])
        for i in range(n)
    ]
    return EvalSet(name="toy", kind="retrieval", questions=qs, checksum="abc")


class LookupSystem:
    """Ranks d{i} first for even questions, second for odd ones; counts its calls."""

    def __init__(self, fail_on: str | None = None, interrupt_on: str | None = None) -> None:
        self.calls: list[str] = []
        self.fail_on, self.interrupt_on = fail_on, interrupt_on
        self.lock = threading.Lock()

    def __call__(self, q: EvalQuestion) -> SystemOutput:
        with self.lock:
            self.calls.append(q.id)
        if q.id == self.interrupt_on:
            raise KeyboardInterrupt
        if q.id == self.fail_on:
            raise RuntimeError("backend exploded")
        i = int(q.id[1:])
        gold = f"d{i}"
        ranking = [gold, "x"] if i % 2 == 0 else ["x", gold]
        events = [TraceEvent(kind="llm", name="chat", usage=Usage.one_call(10, 2, None, "local_tokenizer")),
                  TraceEvent(kind="tool", name="read", args={"doc_id": gold})]
        usage = Usage.one_call(10, 2, None, "local_tokenizer")
        return SystemOutput(answer=gold, ranking=ranking, cited=[gold], usage=usage, events=events)


CONFIG = RunConfig(task="toy", data_checksum="abc", system={"method": "lookup", "k": 10})


def test_rows_manifest_summary(tmp_path: Path):
    out = tmp_path / "run"
    res = run_eval(make_set(), LookupSystem(), retrieval_scorer(("mrr@10",)), out, CONFIG, primary="mrr@10",
                   progress=False)
    rows = read_rows(out)
    assert [r.id for r in rows] == [f"q{i}" for i in range(6)]
    assert rows[1].metrics == {"mrr@10": 0.5} and rows[0].metrics == {"mrr@10": 1.0}
    assert rows[0].tokens == 12 and rows[0].cost == "unmeasured" and rows[0].llm_calls == 1 and rows[0].tool_calls == 1
    assert res.summary["metrics"]["mrr@10"] == 0.75 and res.summary["cost"] == "unmeasured"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"] == CONFIG.model_dump(mode="json") and manifest["sleuth_version"]
    assert "git_commit" in manifest and manifest["primary_metric"] == "mrr@10"
    assert json.loads((out / "summary.json").read_text())["questions"] == 6


def test_resume_skips_finished_and_limit_extends(tmp_path: Path):
    out = tmp_path / "run"
    run_eval(make_set(), LookupSystem(), retrieval_scorer(), out, CONFIG, limit=2, progress=False)
    system = LookupSystem()
    res = run_eval(make_set(), system, retrieval_scorer(), out, CONFIG, resume=True, progress=False)
    assert system.calls == ["q2", "q3", "q4", "q5"] and (res.ran, res.skipped) == (4, 2)
    assert len((out / "rows.jsonl").read_text().splitlines()) == 6
    assert json.loads((out / "manifest.json").read_text())["resumed"]


def test_existing_run_without_resume_is_refused(tmp_path: Path):
    out = tmp_path / "run"
    run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, CONFIG, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, CONFIG, progress=False)


def test_resume_with_a_different_configuration_is_refused(tmp_path: Path):
    out = tmp_path / "run"
    run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, CONFIG, progress=False)
    other = CONFIG.model_copy(update={"system": {"method": "dense", "k": 10}})
    with pytest.raises(RunConfigMismatchError, match=r"system\.method: 'lookup' .* vs 'dense'") as e:
        run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, other, resume=True, progress=False)
    assert "new --out" in e.value.hint
    zzz = CONFIG.model_copy(update={"data_checksum": "zzz"})
    with pytest.raises(RunConfigMismatchError, match="data_checksum"):
        run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, zzz, resume=True, progress=False)
    with pytest.raises(RunConfigMismatchError, match="seed"):
        run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, CONFIG.model_copy(update={"seed": 3}),
                 resume=True, progress=False)


def test_failed_question_is_a_row_and_is_retried_on_resume(tmp_path: Path):
    out = tmp_path / "run"
    res = run_eval(make_set(3), LookupSystem(fail_on="q1"), retrieval_scorer(("mrr@10",)), out, CONFIG, progress=False,
                   primary="mrr@10")
    # bug: the errored question was dropped from the mean; as in the official HotpotQA script it counts 0:
    # q0 1.0, q1 error, q2 1.0 -> 2/3 (not 1.0)
    assert res.summary["metrics"]["mrr@10"] == pytest.approx(2 / 3, abs=1e-4)
    assert res.summary["errors"] == 1 and res.summary["n_errors"] == 1
    md = write_report([out], tmp_path / "rep", html_page=False)["markdown"]
    assert "| n_errors |" in md and md.rstrip().count("| 1 |") >= 1
    err = next(r for r in read_rows(out) if r.status == "error")
    assert err.id == "q1" and "backend exploded" in (err.error or "")
    system = LookupSystem()
    res = run_eval(make_set(3), system, retrieval_scorer(("mrr@10",)), out, CONFIG, resume=True, progress=False,
                   primary="mrr@10")
    assert system.calls == ["q1"] and res.summary["errors"] == 0 and res.summary["ok"] == 3
    assert res.summary["metrics"]["mrr@10"] == pytest.approx((1 + 0.5 + 1) / 3, abs=1e-4)


def test_interrupted_run_keeps_finished_rows_and_resumes(tmp_path: Path):
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_eval(make_set(), LookupSystem(interrupt_on="q3"), retrieval_scorer(), out, CONFIG, progress=False)
    assert [r.id for r in read_rows(out)] == ["q0", "q1", "q2"]
    with (out / "rows.jsonl").open("a") as fh:  # a row torn by a kill in the middle of a write
        fh.write('{"id": "q3", "status": "ok", "metr')
    system = LookupSystem()
    res = run_eval(make_set(), system, retrieval_scorer(), out, CONFIG, resume=True, progress=False)
    assert system.calls == ["q3", "q4", "q5"] and res.summary["ok"] == 6
    assert sorted(r.id for r in read_rows(out)) == [f"q{i}" for i in range(6)]


def test_concurrency_and_seeded_order(tmp_path: Path):
    system = LookupSystem()
    seeded = CONFIG.model_copy(update={"seed": 7})
    res = run_eval(make_set(8), system, retrieval_scorer(), tmp_path / "a", seeded, concurrency=3, limit=5,
                   progress=False)
    assert res.summary["ok"] == 5 and len(set(system.calls)) == 5
    again = LookupSystem()
    run_eval(make_set(8), again, retrieval_scorer(), tmp_path / "b", seeded, limit=5, progress=False)
    assert set(again.calls) == set(system.calls) and again.calls != [f"q{i}" for i in range(5)]
    with pytest.raises(ConfigError):
        run_eval(make_set(2), LookupSystem(), retrieval_scorer(), tmp_path / "c", CONFIG, concurrency=0)


def test_qa_scorer_and_report(tmp_path: Path):
    es = make_set(4)
    es.kind = "qa"
    run_eval(es, LookupSystem(), qa_scorer(), tmp_path / "r1", CONFIG, primary="f1", progress=False)
    other = CONFIG.model_copy(update={"system": {"agent": "react", "model": "scripted"}})
    run_eval(es, LookupSystem(), qa_scorer(), tmp_path / "r2", other, primary="f1", progress=False)
    row = read_rows(tmp_path / "r1")[0]
    assert row.metrics["em"] == 1.0 and row.metrics["sp_em"] == 1.0 and row.metrics["evidence_read"] == 1.0
    result = write_report([tmp_path / "r1", tmp_path / "r2"], tmp_path / "rep")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "| r1 | lookup |" in md and "| r2 | agent:react@scripted |" in md and "f1" in md
    page = (tmp_path / "rep" / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "<table>" in page
    assert [r["label"] for r in result["runs"]] == ["lookup", "agent:react@scripted"]


def test_traces_are_saved_per_question(tmp_path: Path):
    from sleuth.evals.runner import trace_path
    from sleuth.tracing.tracer import read_trace

    out = tmp_path / "run"
    run_eval(make_set(2), LookupSystem(), retrieval_scorer(), out, CONFIG, progress=False)
    row = read_rows(out)[0]
    assert row.details["trace"] == "traces/q0.jsonl"
    events = read_trace(out / row.details["trace"])
    assert [e.kind for e in events] == ["llm", "tool"] and events[1].args == {"doc_id": "d0"}
    assert trace_path(out, "a/b c").name.startswith("a_b_c-")


def test_beir_scoring_ignores_the_document_that_is_the_query():
    # bug: BEIR's rule (EvaluateRetrieval.evaluate, ignore_identical_ids=True) was not applied, so a corpus
    # holding the query itself (ArguAna, Quora, ...) pushed the relevant documents down
    q = EvalQuestion(id="q7", question="q", relevance={"d2": 1}, gold_doc_ids=["d2"])
    out = SystemOutput(ranking=["q7", "d2", "d3"])
    assert retrieval_scorer(("ndcg@10", "mrr@10"))(q, out)[0] == {"ndcg@10": 1.0, "mrr@10": 1.0}
    assert retrieval_scorer(("mrr@10",), ignore_identical_ids=False)(q, out)[0] == {"mrr@10": 0.5}


def test_resume_after_a_row_torn_inside_a_multibyte_character(tmp_path: Path):
    """A run killed while writing a row whose text is not ASCII leaves a last line that ends mid-character: the
    resume neither crashes on it nor keeps it; the torn question is run again."""
    from sleuth.evals.results import truncate_torn_row

    out = tmp_path / "run"
    system = LookupSystem()
    run_eval(make_set(3), system, retrieval_scorer(), out, CONFIG, progress=False)
    rows_path = out / "rows.jsonl"
    row = json.loads(rows_path.read_text(encoding="utf-8").splitlines()[-1])
    row["id"], row["question"] = "q3", "où est d3 — «ville» 東京?"
    full = json.dumps(row, ensure_ascii=False).encode("utf-8")
    cut = full.index("東".encode()) + 1  # inside the three bytes of 東
    with rows_path.open("ab") as fh:
        fh.write(full[:cut])
    assert [r.id for r in read_rows(out)] == ["q0", "q1", "q2"]  # read while torn: skipped, no UnicodeDecodeError

    res = run_eval(make_set(5), LookupSystem(), retrieval_scorer(), out, CONFIG, resume=True, progress=False)
    assert res.ran == 2 and res.skipped == 3
    raw = rows_path.read_bytes()
    raw.decode("utf-8")  # the torn bytes are gone: the file is valid UTF-8 again
    assert raw.endswith(b"\n") and b"ville" not in raw
    assert sorted(r.id for r in read_rows(out)) == ["q0", "q1", "q2", "q3", "q4"]
    assert truncate_torn_row(rows_path) == 0  # nothing torn now


def test_truncate_torn_row(tmp_path: Path):
    from sleuth.evals.results import truncate_torn_row

    p = tmp_path / "rows.jsonl"
    torn = b'{"b": "\xe6\x9d'
    p.write_bytes(b'{"a": 1}\n' + torn)
    assert truncate_torn_row(p) == len(torn) and p.read_bytes() == b'{"a": 1}\n'
    p.write_bytes(b'{"only": "torn \xe6')
    assert truncate_torn_row(p) == 16 and p.read_bytes() == b""
    big = b"x" * 200_000  # a torn row longer than the search block
    p.write_bytes(b'{"a": 1}\n' + big)
    assert truncate_torn_row(p) == len(big) and p.read_bytes() == b'{"a": 1}\n'
    assert truncate_torn_row(tmp_path / "missing.jsonl") == 0



def test_report_plots_quality_against_tokens_once_per_set(tmp_path: Path):
    """Cost against gain: one plot per data set, its own primary metric alone on the y axis."""
    from sleuth.evals.report import load_runs, plots

    run_eval(make_set(3), LookupSystem(), retrieval_scorer(), tmp_path / "a", CONFIG, progress=False)
    other = make_set(3)
    other.name = "toy2"
    run_eval(other, LookupSystem(), retrieval_scorer(), tmp_path / "b", CONFIG, progress=False)
    images = plots(load_runs([tmp_path / "a", tmp_path / "b"]))
    assert [k for k in images if k.startswith("quality_vs_tokens")] == ["quality_vs_tokens", "quality_vs_tokens_2"]
    single = plots(load_runs([tmp_path / "a"]))
    assert [k for k in single if k.startswith("quality_vs_tokens")] == ["quality_vs_tokens"]
