"""`workspace_grep` on real data (issue #13): SciFact (5,183 documents), 100 test queries. For each, the query's
rarest indexed word is grepped (a) over the whole corpus and (b) inside the workspace of the query's top 100 BM25
documents: the workspace's matching documents are exactly the whole-corpus matches that lie in the workspace, and
the relevant documents (qrels) found by grep inside the workspace are compared with those found over the whole
corpus (printed with the cost of both)."""

from __future__ import annotations

import csv
import json
import time

import pytest

from tests.conftest import shared_path

pytestmark = [pytest.mark.data, pytest.mark.slow, pytest.mark.long]


@pytest.fixture(scope="module")
def scifact(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus
    from sleuth.retrieval.bm25 import BM25Retriever

    data = shared_path("beir", "scifact")
    dest = tmp_path_factory.mktemp("scifact") / "corpus"
    import_corpus(data / "corpus.jsonl", dest, progress=False)
    corpus = Corpus(dest)
    queries = [json.loads(line) for line in (data / "queries.jsonl").open(encoding="utf-8")][:100]
    qrels: dict[str, set[str]] = {}
    with (data / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            qrels.setdefault(row["query-id"], set()).add(row["corpus-id"])
    return corpus, BM25Retriever.open(corpus), queries, qrels


def test_workspace_grep_is_whole_grep_inside_the_workspace(scifact) -> None:  # type: ignore[no-untyped-def]
    from sleuth.retrieval.df import DocFrequency
    from sleuth.tools.base import Toolkit
    from sleuth.tools.grep import GrepArgs, grep
    from sleuth.tools.workspace import workspace_tool

    corpus, bm25, queries, qrels = scifact
    kit = Toolkit([workspace_tool(corpus, bm25)])
    docfreq = DocFrequency(bm25.index)
    ids = {d: d.rsplit(".", 1)[0] for d in bm25.index.doc_ids}  # doc id (file name) -> BEIR corpus id
    found_ws = found_all = compared = 0
    t_ws = t_all = 0.0
    for q in queries:
        words = [w for w in bm25.index.analyzer.words(q["text"]) if len(w) > 3]
        rated = [(docfreq.df(w).df, w) for w in words]
        rated = [(df, w) for df, w in rated if df > 0]
        if not rated:
            continue
        _, word = min(rated)
        t0 = time.perf_counter()
        res = kit.invoke("workspace_grep", {"query": q["text"], "n": 100, "pattern": word, "ignore_case": True,
                                            "fixed_strings": True, "files_with_matches": True, "max_matches": 2000})
        t_ws += time.perf_counter() - t0
        assert not res.is_error, res.text
        space = {h.doc_id for h in bm25.search(q["text"], 100)}
        t0 = time.perf_counter()
        whole = grep(corpus, GrepArgs(pattern=word, ignore_case=True, fixed_strings=True, files_with_matches=True,
                                      max_matches=2000))
        t_all += time.perf_counter() - t0
        assert whole.total_docs == len(whole.files)  # no cap hit: the comparison is over every match
        inside = res.data["grep"]["files"]
        assert inside == sorted(f for f in whole.files if f in space), q["text"]
        relevant = qrels.get(str(q["_id"]), set())
        found_ws += bool(relevant & {ids[f] for f in inside})
        found_all += bool(relevant & {ids[f] for f in whole.files})
        compared += 1
    print(f"\n{compared} queries: a relevant document among the matches for {found_ws} inside the workspace, "
          f"{found_all} over the whole corpus; grep time {t_ws:.2f} s (workspace, search included) vs "
          f"{t_all:.2f} s (whole corpus)")
    assert compared >= 90 and found_ws >= 0.8 * found_all > 0
