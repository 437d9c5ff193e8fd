"""SIRA corpus side in the reference's form (the default): its document filter, the kept phrases appended to each
document in a separate index build (postings, df, lengths, new vocabulary, per-phrase bigrams), staleness, resume
after a killed run, and the retrievers and eval systems over it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ConfigError, IndexMissingError, StaleIndexError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval import get_retriever
from sleuth.retrieval.bm25 import BM25Index, build_index
from sleuth.retrieval.enrich import EnrichParams, enrich_corpus, read_records
from sleuth.retrieval.enriched import open_enriched, target_of

REPO = Path(__file__).resolve().parents[2]

DOCS = {f"n{i:02d}.txt": f"Filler note {i} about weather and gardens." for i in range(20)}
DOCS["heart.txt"] = "Myocardial infarction: troponin rises after coronary occlusion."
DOCS["mi.txt"] = "A heart attack is what people call it; cardiac arrest differs."
DOCS["sugar.txt"] = "Hyperglycemia and insulin resistance in type 2 diabetes."
DOCS["meter.txt"] = "Blood sugar meters for home use."
N = len(DOCS)  # 24: int(24 * 0.2) = 4


def propose(messages, tools):  # type: ignore[no-untyped-def]
    doc = messages[-1]["content"]
    if "Myocardial" in doc:
        return {"phrases": ["heart attack", "troponin", "weather", "zzz unknown", "cardiac arrest", "the of"]}
    if "Hyperglycemia" in doc:
        return {"phrases": ["blood sugar", "glucose spike"]}
    return {"phrases": []}


@pytest.fixture()
def corpus(make_corpus) -> Corpus:
    return Corpus(make_corpus(DOCS))


def enrich(corpus: Corpus, **kw) -> object:  # type: ignore[no-untyped-def]
    return enrich_corpus(corpus, ScriptedModel(default=propose), params=EnrichParams(max_df_ratio=0.2, **kw))


def test_the_reference_document_filter(corpus: Corpus) -> None:
    rep = enrich(corpus)
    recs = read_records(corpus.state_dir / "enrich" / "enrich.jsonl")
    heart = recs["heart.txt"]
    # by hand: max_df = int(24 * 0.2) = 4; "heart" df 1 (mi.txt), "troponin" df 1 (heart.txt itself: the reference
    # does not look at the document), "weather" df 20 > 4, "zzz unknown" never seen: new vocabulary, kept
    assert heart.kept == ["heart attack", "troponin", "zzz unknown", "cardiac arrest"]
    assert {r["phrase"]: r["reason"] for r in heart.rejected} == {
        "weather": "too common (rarest 1..2-gram df = 20 > 4)", "the of": "no indexable words"}
    assert heart.filter == "reference" and recs["sugar.txt"].kept == ["blood sugar", "glucose spike"]
    assert rep.filter == "reference" and rep.enriched_docs == 2 and rep.new_terms == 4  # zzz, unknown, glucos, spike
    assert "enriched index: 2 documents with phrases, 4 new terms" in rep.summary()


def test_phrases_are_appended_in_the_index(corpus: Corpus) -> None:
    before = {p.name: p.read_bytes() for p in corpus.root.iterdir() if p.is_file()}
    enrich(corpus)
    assert {p.name: p.read_bytes() for p in corpus.root.iterdir() if p.is_file()} == before  # raw files untouched
    base = BM25Index.open(corpus)
    enr = open_enriched(corpus, base)
    assert enr.meta["kind"] == "enriched" and enr.doc_ids == base.doc_ids
    # the unigram tier is exactly an index of "text + kept phrases" (lengths, df, avgdl and idf all change)
    recs = read_records(corpus.state_dir / "enrich" / "enrich.jsonl")
    texts = [corpus.read_text(d) + "\n" + "\n".join(recs[d].kept if d in recs else []) for d in base.doc_ids]
    build_index(corpus.root.parent / "appended", base.doc_ids, texts, bigrams=False)
    appended = BM25Index.load(corpus.root.parent / "appended")
    assert set(appended.vocab) == set(enr.vocab) and appended.meta["n_tokens"] == enr.meta["n_tokens"]
    assert np.array_equal(np.diff(appended.doc_offsets), np.diff(enr.doc_offsets))
    for term in ("heart", "attack", "troponin", "zzz", "sugar", "weather", "insulin"):
        one = np.ones(1, np.float32)
        a = appended.score_vector(np.array([appended.vocab[term]], np.int32), one)
        b = enr.score_vector(np.array([enr.vocab[term]], np.int32), one)
        assert np.allclose(a, b, rtol=1e-6), term
    i = base.doc_ids.index("heart.txt")
    assert int(enr.doc_offsets[i + 1] - enr.doc_offsets[i]) == int(base.doc_offsets[i + 1] - base.doc_offsets[i]) + 7
    assert "zzz" not in base.vocab and enr.doc_freq(enr.vocab["zzz"]) == 1  # vocabulary new to the corpus

    # bigrams: each phrase is its own segment (none across the document/phrase boundary nor between phrases)
    tier = enr.bigrams
    assert tier is not None
    v = enr.vocab

    def df(a: str, b: str) -> int:
        ids = tier.pair_ids([v[a], v[b]])
        return tier.df(ids[0]) if ids else 0

    assert df("zzz", "unknown") == 1 and df("heart", "attack") == 2  # mi.txt's own + heart.txt's phrase
    assert df("occlus", "heart") == 0  # the document's last word, then its first phrase
    assert df("attack", "troponin") == 0 and df("troponin", "zzz") == 0  # between two phrases
    assert enr.meta["segments"] == 6 and enr.meta["enrichment_phrases"] == 6


def test_retrievers_over_the_enriched_index(corpus: Corpus) -> None:
    enrich(corpus)
    plain = get_retriever("bm25", corpus)
    enriched = get_retriever("bm25", corpus, enriched=True)
    assert plain.search("zzz unknown", 3) == []
    assert [h.doc_id for h in enriched.search("zzz unknown", 3)] == ["heart.txt"]
    assert enriched.search("glucose", 1)[0].text.startswith("Hyperglycemia")  # hits carry the document's text
    sira = get_retriever("sira", corpus, enriched=True, model=ScriptedModel([{"phrases": ["glucose spike"]}]))
    res = sira.run("diabetes", 3)  # type: ignore[attr-defined]
    assert res.kept_phrases() == ["glucose spike"] and res.stats["index"] == "enriched"
    assert res.hits[0].doc_id == "sugar.txt"
    with pytest.raises(ConfigError):
        get_retriever("bm25", corpus, enriched=True, enrich_weight=0.3)
    # the fused field (sleuth's earlier form) is built from the same file on first use
    fused = get_retriever("bm25", corpus, enrich_weight=0.5)
    assert [h.doc_id for h in fused.search("zzz", 2)] == ["heart.txt"]


def test_no_enrichment_is_a_typed_error_naming_the_fix(corpus: Corpus) -> None:
    with pytest.raises(IndexMissingError) as e:
        get_retriever("bm25", corpus, enriched=True)
    assert f"sleuth enrich {corpus.root}" in e.value.hint


def test_an_enriched_index_whose_base_changed_is_refused(corpus: Corpus) -> None:
    enrich(corpus)
    (corpus.root / "meter.txt").write_text("Glucose meters for home use, and blood sugar logs.", encoding="utf-8")
    corpus = Corpus(corpus.root)
    base = BM25Index.open(corpus, rebuild=True)  # the base index is brought up to date
    with pytest.raises(StaleIndexError) as e:
        open_enriched(corpus, base)
    assert "base BM25 index changed" in e.value.message and f"sleuth enrich {corpus.root}" in e.value.hint
    with pytest.raises(StaleIndexError):
        get_retriever("bm25", corpus, enriched=True)
    # the fix named: enrich again (only the changed document is sent), which rebuilds the enriched index
    model = ScriptedModel(default=propose)
    rep = enrich_corpus(corpus, model, params=EnrichParams(max_df_ratio=0.2))
    assert len(model.calls) == 1 and rep.done_before == N - 1
    assert get_retriever("bm25", corpus, enriched=True).search("zzz", 1)[0].doc_id == "heart.txt"


def test_an_enrichment_file_changed_by_hand_is_stale_and_limit_0_rebuilds(corpus: Corpus) -> None:
    enrich(corpus)
    path = corpus.state_dir / "enrich" / "enrich.jsonl"
    recs = read_records(path)
    rec = recs["meter.txt"].model_copy(update={"kept": ["glucometer"]})
    with path.open("a", encoding="utf-8") as fh:
        fh.write(rec.model_dump_json() + "\n")
    with pytest.raises(StaleIndexError, match="enrichment file changed"):
        get_retriever("bm25", corpus, enriched=True)
    rep = enrich_corpus(corpus, None, limit=0)  # no model needed: only the rebuild
    assert rep.enriched_now == 0 and rep.usage.calls == 0
    assert get_retriever("bm25", corpus, enriched=True).search("glucometer", 1)[0].doc_id == "meter.txt"
    with pytest.raises(ConfigError, match="needs a model"):
        (corpus.root / "new.txt").write_text("A new note on kidneys.", encoding="utf-8")
        BM25Index.open(Corpus(corpus.root), rebuild=True)
        enrich_corpus(Corpus(corpus.root), None)


def test_an_enriched_index_with_a_corrupt_file_names_the_rebuild(corpus: Corpus) -> None:
    from sleuth.errors import IndexCorruptError

    enrich(corpus)
    p = target_of(corpus) / "bigram_indices.npy"
    a = np.load(p)
    a[0] = 10**6
    np.save(p, a)
    with pytest.raises(IndexCorruptError) as e:
        get_retriever("bm25", corpus, enriched=True)
    assert f"sleuth enrich {corpus.root} --limit 0" in e.value.hint


CHILD = """
import sys, time
from sleuth.corpus import Corpus
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.enrich import EnrichParams, enrich_corpus

def answer(messages, tools):
    if "Filler note 3 " in messages[-1]["content"]:
        print("in-flight", flush=True)
        time.sleep(600)  # killed here, mid-document
    return {"phrases": ["zzz unknown"]}

enrich_corpus(Corpus(sys.argv[1]), ScriptedModel(default=answer), params=EnrichParams(concurrency=1))
"""


def test_enrichment_killed_mid_document_resumes(corpus: Corpus, tmp_path: Path) -> None:
    """A real process, SIGKILLed while a document's model call is in flight: the finished documents stay on disk,
    a torn last line (a write cut short) is ignored, and the rerun does only what is left."""
    BM25Index.open(corpus)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SLEUTH_HOME": str(tmp_path / "h")}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(corpus.root)], stdout=subprocess.PIPE, text=True,
                            env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # blocks until the child is inside n03.txt's call
        assert line.strip() == "in-flight"
        path = corpus.state_dir / "enrich" / "enrich.jsonl"
        deadline = time.monotonic() + 30
        while path.read_text().count("\n") < 6 and time.monotonic() < deadline:  # the 6 before it are written
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    path = corpus.state_dir / "enrich" / "enrich.jsonl"
    done = [json.loads(x)["doc_id"] for x in path.read_text().splitlines()]
    order = sorted(DOCS)
    assert done == order[: order.index("n03.txt")]  # heart.txt, meter.txt, mi.txt, n00..n02: every one before it
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"doc_id": "n04.txt", "sig": "1:2", "proposed": ["half')  # a write cut mid-document
    assert not target_of(corpus).exists()  # the killed run built no enriched index
    model = ScriptedModel(default={"phrases": ["zzz unknown"]})
    t0 = time.perf_counter()
    rep = enrich_corpus(corpus, model, params=EnrichParams(concurrency=2))
    assert rep.done_before == len(done) and len(model.calls) == N - len(done)
    assert time.perf_counter() - t0 < 60
    enr = get_retriever("bm25", corpus, enriched=True)
    assert {h.doc_id for h in enr.search("zzz unknown", 50)} == set(DOCS)  # every document got its phrase once
    assert len(read_records(path)) == N


def write_beir_set(data: Path) -> Path:
    """DOCS as a BEIR folder (d0..d20) with one query, "zzz unknown", whose relevant document is d20."""
    (data / "qrels").mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "", "text": t} for i, t in enumerate(DOCS.values())]
    (data / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in docs) + "\n")
    (data / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "zzz unknown"}) + "\n")
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td20\t1\n")
    return data


def test_eval_beir_enriched_system(make_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sleuth eval beir --method bm25 --enriched` through the eval builder: recorded in the run config and label;
    over a corpus never enriched, the error names the command and the corpus."""
    from sleuth.evals.build import Options, prepare

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "h"))
    data = write_beir_set(tmp_path / "beir")
    opts = Options(task="beir", data=str(data), method="bm25", enriched=True, cache_dir=str(tmp_path / "cache"))
    with pytest.raises(IndexMissingError) as e:
        prepare(opts)
    assert "sleuth enrich" in e.value.hint and str(tmp_path / "cache") in e.value.hint
    from sleuth.evals.corpora import corpus_for
    from sleuth.evals.datasets import load_beir

    ecorpus = corpus_for(load_beir(str(data), "test"), str(tmp_path / "cache"))
    enrich_corpus(ecorpus, ScriptedModel(default=propose), params=EnrichParams(max_df_ratio=0.2))
    prepared = prepare(opts)
    assert prepared.config.system["enriched"] is True and prepared.label == "bm25+enriched"
    from sleuth.evals.datasets.base import EvalQuestion

    out = prepared.system(EvalQuestion(id="q1", question="zzz unknown"))
    assert out.ranking[0] == "d20"  # heart.txt is the 21st document
    sira = Options(task="beir", data=str(data), method="sira", enriched=True, sira_form="sleuth",
                   cache_dir=str(tmp_path / "cache"))
    p2 = prepare(sira, chat_model=ScriptedModel(default={"phrases": []}))
    assert p2.config.system["sira_form"] == "sleuth" and p2.label.startswith("sira[sleuth]+enriched")


def test_cli_eval_beir_enriched(app, make_corpus, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sleuth eval beir --method bm25 --enriched` from the command line: refused with the fix named before any
    enrichment, then a run whose config and label say it searched the enriched index."""
    from typer.testing import CliRunner

    from sleuth.evals.corpora import corpus_for
    from sleuth.evals.datasets import load_beir

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "h"))
    data = write_beir_set(tmp_path / "beir")
    cache = str(tmp_path / "cache")
    args = ["eval", "beir", "--data", str(data), "--method", "bm25", "--enriched", "--cache-dir", cache, "--json",
            "--no-progress"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run0")])
    err = json.loads(r.stdout)
    assert r.exit_code == 2 and err["error"] == "IndexMissingError" and "sleuth enrich" in err["hint"]
    ecorpus = corpus_for(load_beir(str(data), "test"), cache)
    enrich_corpus(ecorpus, ScriptedModel(default=propose), params=EnrichParams(max_df_ratio=0.2))
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "run1")])
    out = json.loads(r.stdout)
    assert r.exit_code == 0 and out["system"] == "bm25+enriched" and out["metrics"]["ndcg@10"] == 1.0
    manifest = json.loads((tmp_path / "run1" / "manifest.json").read_text())
    assert manifest["config"]["system"]["enriched"] is True
    bad = CliRunner().invoke(app, ["eval", "beir", "--data", str(data), "--method", "dense", "--enriched",
                                   "--cache-dir", cache, "--json", "--no-progress", "--out", str(tmp_path / "run2")])
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"] == "ConfigError"


def test_the_document_filter_bound_on_a_tiny_corpus(make_corpus) -> None:
    """int(10 * 0.05) = 0: as in the reference's script, every phrase with a word the corpus has is too common;
    only new vocabulary is kept (the query side reads 0 as no bound instead: test_sira_reference.py)."""
    from sleuth.retrieval.enrich import reference_filter

    index = BM25Index.open(Corpus(make_corpus({f"n{i}.txt": f"Filler note {i} about weather." for i in range(10)})))
    kept, rejected = reference_filter(index, ["weather", "zzz unknown", "weather zzz"], EnrichParams())
    assert kept == ["zzz unknown"]
    assert [r["reason"] for r in rejected] == ["too common (rarest 1..2-gram df = 10 > 0)"] * 2
