"""SIRA corpus side: resumable enrichment with a scripted model, the df filter, the fused second index."""

from __future__ import annotations

import json
from pathlib import Path

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
def corpus(tmp_path: Path) -> Corpus:
    for name, text in DOCS.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Corpus(tmp_path)


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
    rep = enrich_corpus(corpus, model, params=EnrichParams(concurrency=2, max_df_ratio=0.2), limit=5)
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
    rep2 = enrich_corpus(corpus, model2, params=EnrichParams(concurrency=2, max_df_ratio=0.2))
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
