"""SIRA corpus side: resumable enrichment with a scripted model, sleuth's df filter, the fused second index (the
reference's in-index form: test_sira_enriched.py)."""

from __future__ import annotations

import json

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ModelConnectionError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval import get_retriever
from sleuth.retrieval.enrich import EnrichParams, enrich_corpus, read_records

DOCS = {f"n{i:02d}.txt": f"Filler note {i} about weather and gardens." for i in range(20)}
DOCS["heart.txt"] = "Myocardial infarction: troponin rises after coronary occlusion."
DOCS["mi.txt"] = "A heart attack is what people call it; cardiac arrest differs."
DOCS["sugar.txt"] = "Hyperglycemia and insulin resistance in type 2 diabetes."
DOCS["meter.txt"] = "Blood sugar meters for home use."


@pytest.fixture()
def corpus(make_corpus) -> Corpus:
    return Corpus(make_corpus(DOCS))


def propose(messages, tools):  # type: ignore[no-untyped-def]
    doc = messages[-1]["content"]
    if "Myocardial" in doc:
        return {"phrases": ["heart attack", "troponin", "weather", "zzz unknown", "cardiac arrest"]}
    if "Hyperglycemia" in doc:
        return {"phrases": ["blood sugar", "heart attack"]}
    return "no json here"


def test_enrich_resume_and_fused_search(corpus: Corpus) -> None:
    before = {p.name: p.read_text() for p in corpus.root.iterdir() if p.is_file()}
    model = ScriptedModel(default=propose)
    rep = enrich_corpus(corpus, model, params=EnrichParams(concurrency=2, max_df_ratio=0.2, filter="sleuth"), limit=5)
    assert rep.enriched_now + rep.errors == 5 and rep.done_before == 0
    assert rep.usage.calls >= 5 and "tokens" in rep.summary()
    recs = read_records(corpus.state_dir / "enrich" / "enrich.jsonl")
    assert len(recs) == 5
    heart = recs["heart.txt"]
    rej = {r["phrase"]: r["reason"] for r in heart.rejected}
    assert heart.kept == ["heart attack", "cardiac arrest"]
    assert rej["troponin"] == "already in the document"
    assert rej["weather"].startswith("too common")
    assert rej["zzz unknown"].startswith("absent")
    calls_first = len(model.calls)

    # resume: only the documents not done (or errored) are sent again
    model2 = ScriptedModel(default=propose)
    rep2 = enrich_corpus(corpus, model2, params=EnrichParams(concurrency=2, max_df_ratio=0.2, filter="sleuth"))
    errored_first = sum(1 for r in recs.values() if r.error)
    assert rep2.done_before == 5 - errored_first
    sent = {m["messages"][-1]["content"] for m in model2.calls}
    assert not any("Myocardial" in s for s in sent)
    assert calls_first > 0

    # raw documents untouched
    assert {p.name: p.read_text() for p in corpus.root.iterdir() if p.is_file()} == before

    plain = get_retriever("bm25", corpus)
    fused = get_retriever("bm25", corpus, enrich_weight=0.5)
    assert [h.doc_id for h in plain.search("blood sugar", 5)] == ["meter.txt"]
    assert [h.doc_id for h in fused.search("blood sugar", 5)] == ["meter.txt", "sugar.txt"]
    # the enrichment never outweighs a document's own words at weight < 1
    assert fused.search("heart attack", 1)[0].doc_id == "mi.txt"


def test_interrupted_enrichment_keeps_finished_lines(corpus: Corpus) -> None:
    script = [{"phrases": ["heart attack"]}] * 3 + [ModelConnectionError("server died")]
    with pytest.raises(ModelConnectionError):
        enrich_corpus(corpus, ScriptedModel(script), params=EnrichParams(concurrency=1, max_df_ratio=0.5))
    path = corpus.state_dir / "enrich" / "enrich.jsonl"
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) == 3
    with path.open("a") as fh:
        fh.write('{"doc_id": "torn')  # a torn last line is ignored
    model = ScriptedModel(default={"phrases": []})
    rep = enrich_corpus(corpus, model, params=EnrichParams(concurrency=1, max_df_ratio=0.5), limit=2)
    assert rep.done_before == 3 and len(model.calls) == 2


def test_unreadable_files_are_never_sent_and_other_encodings_are(corpus: Corpus) -> None:
    """A file that is not a document (a damaged PDF) never reaches the model; a Latin-1 file is a document, sent in
    its decoded text; the rerun sends nothing."""
    (corpus.root / "scan.pdf").write_bytes(b"%PDF-1.4\x00\x01\x02 binary stream")
    (corpus.root / "latin1.txt").write_bytes("café au lait, crème brûlée".encode("latin-1"))  # not UTF-8
    corpus = Corpus(corpus.root)
    assert "scan.pdf" in corpus.unreadable()
    params = EnrichParams(concurrency=2, max_df_ratio=0.5)
    first = ScriptedModel(default={"phrases": ["heart attack"]})
    rep = enrich_corpus(corpus, first, params=params)
    readable = len(DOCS) + 1
    assert rep.skipped == 0 and rep.errors == 0 and rep.enriched_now == readable
    assert len(first.calls) == readable
    assert not any("binary stream" in str(c) for c in first.calls)
    assert any("café au lait, crème brûlée" in str(c) for c in first.calls)
    recs = read_records(corpus.state_dir / "enrich" / "enrich.jsonl")
    assert "scan.pdf" not in recs and recs["latin1.txt"].skipped is None

    lines = (corpus.state_dir / "enrich" / "enrich.jsonl").read_text().count("\n")
    second = ScriptedModel(default={"phrases": ["heart attack"]})
    rep2 = enrich_corpus(corpus, second, params=params)
    assert second.calls == [] and rep2.done_before == readable and rep2.enriched_now == 0
    assert (corpus.state_dir / "enrich" / "enrich.jsonl").read_text().count("\n") == lines


def test_a_fault_keeps_the_answers_already_paid_for(corpus: Corpus) -> None:
    import threading
    import time

    started = threading.Event()

    def answer(messages, tools):  # type: ignore[no-untyped-def]
        if "Filler note 5 " in messages[-1]["content"]:
            started.wait(5)
            time.sleep(0.2)  # the other calls are in flight when the server "dies"
            return ModelConnectionError("server died")
        started.set()
        time.sleep(0.5)
        return {"phrases": ["heart attack"]}

    model = ScriptedModel(default=answer)
    with pytest.raises(ModelConnectionError):
        enrich_corpus(corpus, model, params=EnrichParams(concurrency=4, max_df_ratio=0.5))
    recs = read_records(corpus.state_dir / "enrich" / "enrich.jsonl")
    answered = len(model.calls) - 1  # every call but the failed one was answered, and each answer is on disk
    assert answered >= 3 and len(recs) == answered
    rerun = ScriptedModel(default={"phrases": []})
    rep = enrich_corpus(corpus, rerun, params=EnrichParams(concurrency=4, max_df_ratio=0.5))
    assert rep.done_before == answered and len(rerun.calls) == len(DOCS) - answered
