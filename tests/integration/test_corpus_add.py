"""Corpus.add / Corpus.remove round trips on real engines (ripgrep, the BM25 index updated incrementally): search,
df, grep and read agree after every change, in the toolset that the MCP server and the plugs serve and in
Corpus.search; on an imported SciFact, an added document is found by a filtered search and removed without trace."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import DocumentNotFoundError
from sleuth.integrations.toolset import build_toolkit
from sleuth.retrieval.bm25 import BM25Index
from sleuth.tools.base import Toolkit


def _views(kit: Toolkit, word: str, where: list[str] | None = None) -> dict[str, Any]:
    grep = kit.invoke("grep", {"pattern": word, "ignore_case": True, "files_with_matches": True})
    args: dict[str, Any] = {"query": word, "k": 50}
    if where:
        args["where"] = where
    search = kit.invoke("search", args)
    df = kit.invoke("df", {"terms": [word]})
    for r in (grep, search, df):
        assert not r.is_error, r.text
    return {"grep": set(grep.data["files"]), "search": {h["doc_id"] for h in search.data},
            "df": df.data["terms"][0]["df"], "n_docs": df.data["n_docs"]}


def _agree(kit: Toolkit, corpus: Corpus, word: str, docs: set[str]) -> None:
    v = _views(kit, word)
    assert v["grep"] == v["search"] == docs and v["df"] == len(docs), v
    assert v["n_docs"] == len(corpus.doc_ids())
    assert {h.doc_id for h in corpus.search(word, 50)} == docs
    for d in docs:
        r = kit.invoke("read", {"doc_id": d})
        assert not r.is_error and word in r.text.lower()


def test_add_remove_round_trip(tmp_path: Path) -> None:
    corpus = Corpus.create(tmp_path / "mine")
    first = corpus.add("intro", "A first note about otters.", {"topic": "animals", "year": 2019})
    kit = build_toolkit(corpus, include=["grep", "read", "search", "df"]).toolkit
    _agree(kit, corpus, "otters", {first})

    fish = corpus.add("fish/1", "Zebrafish hearts regenerate; otters eat fish.", {"title": "Fish", "year": 2022})
    crab = corpus.add("crab", "Crabs walk sideways.", {"topic": "animals", "year": 2023})
    _agree(kit, corpus, "otters", {first, fish})
    _agree(kit, corpus, "crabs", {crab})
    assert _views(kit, "otters", ["year>=2020"])["search"] == {fish}
    assert {h.doc_id for h in corpus.search("otters crabs", where="topic=animals")} == {first, crab}

    corpus.add("crab", "Crabs now speak of lobsters.", {"topic": "sea", "year": 2023}, replace=True)
    _agree(kit, corpus, "lobsters", {crab})
    assert _views(kit, "crabs", ["topic=animals"])["search"] == set()  # the new metadata, at once

    assert corpus.remove("fish/1") == fish
    _agree(kit, corpus, "otters", {first})
    _agree(kit, corpus, "zebrafish", set())
    gone = kit.invoke("read", {"doc_id": fish})
    assert gone.is_error and "DocumentNotFoundError" in gone.text
    with pytest.raises(DocumentNotFoundError):
        corpus.read_text(fish)


@pytest.mark.data
@pytest.mark.slow
def test_add_and_remove_in_an_imported_scifact(tmp_path: Path) -> None:
    from sleuth.importers import import_corpus
    from tests.conftest import shared_path

    src = shared_path("beir", "scifact")
    import_corpus(src, tmp_path / "scifact", "beir")
    corpus = Corpus(tmp_path / "scifact")
    index = BM25Index.open(corpus)
    n = index.n_docs
    doc = corpus.add("zz-added", "Zorblaxian limb regeneration after amputation in tumour models.",
                     {"title": "Zorblaxian cancer regeneration"})
    hits = corpus.search("zorblaxian regeneration", 5, where="title~*cancer*")
    assert hits[0].doc_id == doc and hits[0].text.startswith("Zorblaxian cancer regeneration\n\n")
    fresh = corpus._searchers["bm25"]
    assert fresh.status.startswith(f"updated (1 added, 0 changed, 0 removed; {n} unchanged"), fresh.status
    kit = build_toolkit(corpus, include=["grep", "read", "search", "df"]).toolkit
    v = _views(kit, "zorblaxian")
    assert v["grep"] == v["search"] == {doc} and v["df"] == 1 and v["n_docs"] == n + 1
    corpus.remove("zz-added")
    v = _views(kit, "zorblaxian")
    assert v["grep"] == v["search"] == set() and v["df"] == 0 and v["n_docs"] == n
    assert all(h.doc_id != doc for h in corpus.search("zorblaxian regeneration", 5, where="title~*cancer*"))
