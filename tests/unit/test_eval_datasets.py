"""Loaders on small files in the real shapes, including the bad-input cases (with line numbers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.errors import DataError
from sleuth.evals.datasets import load_beir, load_browsecomp_plus, load_hotpotqa, load_tools

OFFICIAL = {
    "_id": "q1",
    "question": "Which band had the drummer?",
    "answer": "Rush",
    "type": "bridge",
    "level": "hard",
    "supporting_facts": [["Rush (band)", 0], ["Neil Peart", 1]],
    "context": [
        ["Rush (band)", ["Rush was a Canadian rock band.", " Its drummer was Neil Peart."]],
        ["Neil Peart", ["Neil Peart was a drummer.", " He joined Rush in 1974."]],
        ["Toto", ["Toto is a band."]],
    ],
}
IRCOT = {
    "_id": "q2",
    "question": "Who portrayed Corliss Archer?",
    "answers": ["Shirley Temple"],
    "paragraphs": [
        {"title": "Kiss and Tell", "text": "Shirley Temple played Corliss Archer.", "is_supporting": True},
        {"title": "Janet Waldo", "text": "Janet Waldo voiced Corliss on radio.", "is_supporting": False},
    ],
}


def write_jsonl(path: Path, lines: list[object]) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_hotpotqa_both_schemas(tmp_path: Path):
    es = load_hotpotqa(write_jsonl(tmp_path / "h.jsonl", [OFFICIAL, IRCOT]))
    assert [q.id for q in es.questions] == ["q1", "q2"] and not es.bad
    q1, q2 = es.questions
    assert q1.answers == ["Rush"] and q1.supporting_titles == ["Rush (band)", "Neil Peart"]
    assert q1.supporting_facts == [("Rush (band)", 0), ("Neil Peart", 1)]
    assert q1.paragraphs[0].text == "Rush was a Canadian rock band. Its drummer was Neil Peart."
    assert q1.relevance == {"Rush (band)": 1, "Neil Peart": 1} and q1.metadata["level"] == "hard"
    assert q2.answers == ["Shirley Temple"] and q2.gold_doc_ids == ["Kiss and Tell"]
    # the official JSON array form too
    arr = tmp_path / "h.json"
    arr.write_text(json.dumps([OFFICIAL]), encoding="utf-8")
    assert load_hotpotqa(arr).questions[0].id == "q1"


def test_hotpotqa_malformed_lines_are_reported_with_line_numbers(tmp_path: Path):
    bad_sf = dict(OFFICIAL, _id="q3", supporting_facts=[["Nowhere", 0]])
    path = write_jsonl(tmp_path / "h.jsonl", [OFFICIAL, '{"_id": "broken", "question": ', dict(IRCOT, answers=[]), bad_sf, IRCOT, IRCOT])
    es = load_hotpotqa(path)
    assert [q.id for q in es.questions] == ["q1", "q2"]
    where = {b.where: b.error for b in es.bad}
    assert "invalid JSON" in where["line 2"]
    assert "no answer" in where["line 3"]
    assert "Nowhere" in where["line 4"]
    assert "duplicate" in where["line 6"]


def test_hotpotqa_nothing_valid_is_a_data_error(tmp_path: Path):
    with pytest.raises(DataError, match="no valid questions.*line 1"):
        load_hotpotqa(write_jsonl(tmp_path / "h.jsonl", ['{"nope": 1}']))
    with pytest.raises(DataError, match="not found"):
        load_hotpotqa(tmp_path / "missing.jsonl")


def make_beir(root: Path, *, qrels: list[str], queries: list[object] | None = None) -> Path:
    (root / "qrels").mkdir(parents=True)
    write_jsonl(root / "corpus.jsonl", [{"_id": "d1", "title": "T1", "text": "alpha"}, {"_id": "d2", "title": "", "text": "beta"}])
    write_jsonl(root / "queries.jsonl", queries or [{"_id": "1", "text": "alpha?"}, {"_id": "2", "text": "beta?"}])
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(q + "\n" for q in qrels), encoding="utf-8")
    return root


def test_beir_qrels_id_missing_from_corpus(tmp_path: Path):
    root = make_beir(tmp_path / "b", qrels=["1\td1\t1", "2\td9\t1", "2\td2\t1", "7\td1\t1", "1\td2\tx"])
    es = load_beir(root)
    assert {q.id: q.relevance for q in es.questions} == {"1": {"d1": 1}, "2": {"d2": 1}}
    errors = {b.where: b.error for b in es.bad}
    assert "'d9' is not in corpus.jsonl" in errors["line 3"]
    assert "query '7'" in errors["line 5"]
    assert "not a number" in errors["line 6"]
    assert es.corpus_jsonl and es.checksum


def test_beir_empty_split_and_missing_split(tmp_path: Path):
    root = make_beir(tmp_path / "b", qrels=[])
    with pytest.raises(DataError, match="no valid questions"):
        load_beir(root)
    with pytest.raises(DataError, match="qrels/dev.tsv") as e:
        load_beir(root, "dev")
    assert "test" in e.value.hint


def test_browsecomp_plus_with_a_small_corpus_and_answers(tmp_path: Path):
    root = tmp_path / "bcp"
    root.mkdir()
    (root / "queries.tsv").write_text("10\tWhich school?\n11\tWhat year?\n12\t\n", encoding="utf-8")
    (root / "qrel_evidence.txt").write_text("10 Q0 a 1\n10 Q0 b 1\n11 Q0 c 1\n11 Q0 zz 1\n", encoding="utf-8")
    (root / "qrel_golds.txt").write_text("10 Q0 a 1\n11 Q0 c 1\n", encoding="utf-8")
    corpus = write_jsonl(tmp_path / "docs.jsonl", [{"docid": d, "text": f"doc {d}", "url": "u"} for d in "abc"])
    answers = write_jsonl(tmp_path / "answers.jsonl", [{"query_id": "10", "answer": "Hill School"}, {"id": "11"}])
    es = load_browsecomp_plus(root, corpus=corpus, answers=answers)
    q = {x.id: x for x in es.questions}
    assert set(q) == {"10", "11"}
    assert q["10"].answers == ["Hill School"] and q["10"].relevance == {"a": 1, "b": 1} and q["10"].gold_doc_ids == ["a"]
    assert q["11"].answers == [] and q["11"].relevance == {"c": 1}
    errs = [str(b) for b in es.bad]
    assert any("queries.tsv: line 3" in e for e in errs)
    assert any("qrel_evidence.txt: line 4" in e and "'zz'" in e for e in errs)
    assert any("answers.jsonl: line 2" in e for e in errs)
    assert es.corpus_jsonl == str(corpus)


def test_tools_mtrb_and_beir_layouts(tmp_path: Path):
    mtrb = tmp_path / "mtrb" / "restbench"
    mtrb.mkdir(parents=True)
    (mtrb / "tmdb_tool_rewrite.json").write_text(
        json.dumps([{"ID": 1, "tool_name": "/search/movie", "tool_usage": "GET /search/movie", "rewrite_description": "Search movies"},
                    {"ID": 2, "tool_name": "/movie/{id}", "tool_usage": "GET /movie/{id}", "tool_description": "Movie details"}]),
        encoding="utf-8",
    )
    (mtrb / "mtr_restbench_test.json").write_text(
        json.dumps([{"query": "When was Heat released?", "relevant Tools": ["GET /search/movie", "GET /movie/{id}"], "relevant IDs": [1, 2]},
                    {"query": "x", "relevant Tools": ["GET /nothing"], "relevant IDs": [0]}]),
        encoding="utf-8",
    )
    es = load_tools(tmp_path / "mtrb", "restbench")
    assert es.kind == "tools" and [t.id for t in es.tools] == ["1", "2"]
    assert es.questions[0].relevance == {"1": 1, "2": 1}
    assert es.bad[0].where == "record 2" and "GET /nothing" in es.bad[0].error
    with pytest.raises(DataError, match="several tool sets"):
        (tmp_path / "mtrb" / "other").mkdir()
        (tmp_path / "mtrb" / "other" / "mtr_other_test.json").write_text("[]")
        load_tools(tmp_path / "mtrb")
    beir = make_beir(tmp_path / "t" / "beir_format", qrels=["1\td1\t1"])
    es = load_tools(beir.parent)
    assert es.name == "t" and [t.id for t in es.tools] == ["d1", "d2"] and es.tools[0].name == "T1"
