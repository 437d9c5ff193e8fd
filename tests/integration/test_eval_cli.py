"""`sleuth eval` on the real data in ../shared/data (skipped when absent).

Most commands run in-process through typer's CliRunner (one ranx/numba start-up for the whole module, which is
slow on a busy machine); the SciFact evidence run and the kill test use real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import shared_path

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]
pytestmark = pytest.mark.data


class Result:
    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(*args: str, home: Path, ok: bool = True, subprocess_: bool = False, timeout: int = 900) -> Result:
    if subprocess_:
        env = {**os.environ, "SLEUTH_HOME": str(home)}
        p = subprocess.run([*SLEUTH, *args], capture_output=True, text=True, timeout=timeout, env=env)
        res = Result(p.returncode, p.stdout, p.stderr)
    else:
        from typer.testing import CliRunner

        from sleuth.cli.main import register_all, app

        if not any(getattr(g, "name", None) == "eval" for g in app.registered_groups):
            register_all()
        old = os.environ.get("SLEUTH_HOME")
        os.environ["SLEUTH_HOME"] = str(home)
        try:
            r = CliRunner().invoke(app, list(args))
        finally:
            if old is None:
                os.environ.pop("SLEUTH_HOME", None)
            else:
                os.environ["SLEUTH_HOME"] = old
        if r.exception is not None and not isinstance(r.exception, SystemExit):
            raise r.exception
        res = Result(r.exit_code, r.stdout, r.stderr)
    if ok:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.mark.slow
def test_scifact_bm25_ndcg(tmp_path: Path) -> None:
    """The evidence run: all 300 SciFact test queries, title+text, BM25 (Anserini's published nDCG@10 is 0.679)."""
    data = shared_path("beir", "scifact")
    out = json.loads(run("eval", "beir", "--data", str(data), "--method", "bm25", "--out", str(tmp_path / "run"), "--json", home=tmp_path, subprocess_=True).stdout)
    assert out["questions_ok"] == 300 and out["errors"] == 0
    assert 0.66 <= out["metrics"]["ndcg@10"] <= 0.69
    assert out["metrics"]["recall@100"] > 0.88
    # cross-check trec_eval (pytrec_eval, what the harness uses) against ranx on the stored rankings
    import ranx

    from sleuth.evals.datasets import load_beir
    from sleuth.evals.metrics import rank_scores
    from sleuth.evals.results import read_rows

    es = load_beir(data)
    rows = {r.id: r for r in read_rows(tmp_path / "run")}
    qrels = ranx.Qrels({q.id: q.relevance for q in es.questions})
    ranking = ranx.Run({q.id: rank_scores(rows[q.id].ranking) for q in es.questions})
    ranx_ndcg = ranx.evaluate(qrels, ranking, "ndcg@10")
    assert abs(ranx_ndcg - out["metrics"]["ndcg@10"]) < 1e-4


def test_hotpotqa_retrieval_mode_resume_and_report(tmp_path: Path) -> None:
    data = shared_path("hotpotqa", "distractor_dev_reflexion100.jsonl")
    out = tmp_path / "hp"
    first = json.loads(run("eval", "hotpotqa", "--data", str(data), "--method", "bm25", "--limit", "5", "--out", str(out), "--json", home=tmp_path).stdout)
    assert first["questions_ok"] == 5 and first["primary_metric"] == "recall@5"
    assert 0.0 < first["metrics"]["recall@10"] <= 1.0
    more = json.loads(run("eval", "hotpotqa", "--data", str(data), "--method", "bm25", "--limit", "8", "--out", str(out), "--resume", "--json", home=tmp_path).stdout)
    assert (more["ran"], more["skipped_finished"], more["questions_ok"]) == (3, 5, 8)
    # the corpus: every question's paragraphs pooled, one document per title, original id = title
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["corpus"]["documents"] > 900 and manifest["dataset"] == "distractor_dev_reflexion100"
    # a different configuration is refused, with a hint
    p = run("eval", "hotpotqa", "--data", str(data), "--method", "bm25", "--k", "7", "--out", str(out), "--resume", home=tmp_path, ok=False)
    assert p.returncode == 2 and "RunConfigMismatchError" in p.stderr and "system.k" in p.stderr and "hint" in p.stderr
    rep = json.loads(run("eval", "report", str(out), "--json", home=tmp_path).stdout)
    assert Path(rep["paths"]["html"]).read_text().count("data:image/png;base64,") == 3
    assert rep["runs"][0]["summary"]["questions"] == 8


def test_tools_mtrb_restbench_bm25(tmp_path: Path) -> None:
    data = shared_path("mtrb")
    out = json.loads(run("eval", "tools", "--data", str(data), "--subset", "restbench", "--method", "bm25", "--out", str(tmp_path / "t"), "--json", home=tmp_path).stdout)
    assert out["questions_ok"] == 90 and out["bad_records"] == 0
    assert 0.0 < out["metrics"]["sufficiency@10"] <= out["metrics"]["recall@10"] + 1e-9 or out["metrics"]["sufficiency@10"] <= 1.0
    assert set(out["metrics"]) >= {"ndcg@10", "recall@5", "recall@10", "sufficiency@5", "sufficiency@10"}


def test_bad_inputs_exit_2_with_hints(tmp_path: Path) -> None:
    p = run("eval", "tools", "--data", str(shared_path("gorilla_apibench")), "--json", home=tmp_path, ok=False)
    err = json.loads(p.stdout)
    assert p.returncode == 2 and err["error"] == "DataError" and "--subset" in err["hint"]
    p = run("eval", "browsecomp-plus", "--data", str(shared_path("browsecomp_plus")), "--json", home=tmp_path, ok=False)
    assert p.returncode == 2 and "--corpus" in json.loads(p.stdout)["hint"]
    p = run("eval", "beir", "--data", str(shared_path("beir", "scifact")), "--split", "dev", home=tmp_path, ok=False)
    assert p.returncode == 2 and "qrels/dev.tsv" in p.stderr
    p = run("eval", "report", str(tmp_path), home=tmp_path, ok=False)
    assert p.returncode == 2 and "not an eval run directory" in p.stderr


def test_browsecomp_plus_real_queries_with_a_generated_corpus(tmp_path: Path) -> None:
    """Real queries and qrels; a corpus made of stand-in pages for the first queries' evidence documents
    (one left out, to exercise the missing-document report); BM25 over it."""
    data = shared_path("browsecomp_plus")
    queries = [line.split("\t", 1) for line in (data / "queries.tsv").read_text().splitlines()[:3]]
    wanted = {qid for qid, _ in queries}
    docs = {}
    for line in (data / "qrel_evidence.txt").read_text().splitlines():
        qid, _, doc, _ = line.split()
        if qid in wanted:
            docs[doc] = dict(queries)[qid][:400]  # a page that shares words with its query
    left_out = sorted(docs)[0]
    with (tmp_path / "corpus.jsonl").open("w") as fh:
        for doc, text in docs.items():
            if doc != left_out:
                fh.write(json.dumps({"docid": doc, "text": f"stand-in page {doc}. {text}", "url": f"https://x/{doc}"}) + "\n")
        for i in range(50):
            fh.write(json.dumps({"docid": f"noise{i}", "text": f"unrelated filler page number {i} about weather"}) + "\n")
    out = json.loads(
        run("eval", "browsecomp-plus", "--data", str(data), "--corpus", str(tmp_path / "corpus.jsonl"), "--method", "bm25",
            "--limit", "3", "--out", str(tmp_path / "run"), "--json", home=tmp_path).stdout
    )
    assert out["questions_ok"] == 3 and out["primary_metric"] == "recall@100"
    assert out["metrics"]["recall@100"] == 1.0  # every evidence page that exists is retrieved within 100
    bad = [json.loads(x) for x in (tmp_path / "run" / "bad_records.jsonl").read_text().splitlines()]
    assert any(left_out in b["error"] and b["where"].startswith("line ") for b in bad)


def test_killed_run_loses_at_most_the_question_in_flight(tmp_path: Path) -> None:
    """A real kill (SIGKILL) of a running eval process, then --resume-style continuation."""
    script = tmp_path / "slow_eval.py"
    script.write_text(
        "import sys, time\n"
        "from sleuth.evals.datasets.base import EvalQuestion, EvalSet\n"
        "from sleuth.evals.runner import RunConfig, run_eval\n"
        "from sleuth.evals.scoring import retrieval_scorer\n"
        "from sleuth.evals.systems import SystemOutput\n"
        "qs = [EvalQuestion(id=f'q{i}', question='x', relevance={f'd{i}': 1}) for i in range(40)]\n"
        "es = EvalSet(name='slow', kind='retrieval', questions=qs, checksum='c')\n"
        "def system(q):\n"
        "    time.sleep(0.3)\n"
        "    return SystemOutput(ranking=['d' + q.id[1:]])\n"
        "cfg = RunConfig(task='slow', data_checksum='c', system={'method': 'sleep'})\n"
        "run_eval(es, system, retrieval_scorer(['mrr@10']), sys.argv[1], cfg, primary='mrr@10', resume=True, progress=False)\n"
    )
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(out)])
    rows = out / "rows.jsonl"
    deadline = time.time() + 180
    while time.time() < deadline and (not rows.exists() or len(rows.read_text().splitlines()) < 4):
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    done_before = len([x for x in rows.read_text().splitlines() if x.strip()])
    assert 4 <= done_before < 40
    # continue in this process: nothing finished is run again, everything else is
    from sleuth.evals.datasets.base import EvalQuestion, EvalSet
    from sleuth.evals.results import read_rows
    from sleuth.evals.runner import RunConfig, run_eval
    from sleuth.evals.scoring import retrieval_scorer
    from sleuth.evals.systems import SystemOutput

    calls = []

    def system(q: EvalQuestion) -> SystemOutput:
        calls.append(q.id)
        return SystemOutput(ranking=["d" + q.id[1:]])

    es = EvalSet(name="slow", kind="retrieval", questions=[EvalQuestion(id=f"q{i}", question="x", relevance={f"d{i}": 1}) for i in range(40)], checksum="c")
    cfg = RunConfig(task="slow", data_checksum="c", system={"method": "sleep"})
    res = run_eval(es, system, retrieval_scorer(["mrr@10"]), out, cfg, primary="mrr@10", resume=True, progress=False)
    assert len(calls) == 40 - done_before and res.summary["ok"] == 40
    assert sorted(r.id for r in read_rows(out)) == sorted(f"q{i}" for i in range(40))
    assert res.summary["metrics"]["mrr@10"] == 1.0


@pytest.mark.slow
def test_tools_hybrid_fusion_is_named_in_the_run_and_each_trace(tmp_path: Path) -> None:
    """--fusion and --calibrate reach the catalog, the run config and every question's `hybrid` trace event."""
    pytest.importorskip("sentence_transformers", reason="needs sleuth[dense]")
    data = str(shared_path("mtrb"))
    out = json.loads(run("eval", "tools", "--data", data, "--subset", "restbench", "--method", "hybrid", "--fusion",
                         "adaptive", "--calibrate", "--out", str(tmp_path / "a"), "--json", home=tmp_path).stdout)
    assert out["questions_ok"] == 90 and 0.0 < out["metrics"]["ndcg@10"] <= 1.0
    system = json.loads((tmp_path / "a" / "manifest.json").read_text())["config"]["system"]
    assert system["fusion"] == "adaptive" and system["calibrate"].startswith("cross")
    traces = sorted((tmp_path / "a" / "traces").glob("*.jsonl"))
    assert len(traces) == 90
    event = [json.loads(line) for line in traces[0].read_text().splitlines() if '"hybrid"' in line][0]
    assert event["data"]["fusion"] == "adaptive" and set(event["data"]["weights"]) == {"bm25", "dense"}
    assert abs(sum(event["data"]["weights"].values()) - 1) < 1e-3 and event["data"]["signals"]["prior_term"]
    for bad, hint in ((["--method", "bm25", "--calibrate"], "--fusion adaptive"),
                      (["--method", "hybrid", "--fusion", "borda"], "rrf")):
        p = run("eval", "tools", "--data", data, "--subset", "restbench", *bad, "--out", str(tmp_path / "b"),
                "--json", home=tmp_path, ok=False)
        assert p.returncode == 2 and hint in json.loads(p.stdout)["hint"], p.stdout
