"""SIRA, corpus side, in the reference's form: the kept enrichment phrases are appended to each document *in the
index* (facebookresearch/sira ``bm25x`` ``BM25::enrich_batch``), as a separate build beside the base index.

``corpus.state_dir / "enrich" / "index"`` is a complete BM25 index (same format as the base one, bigram tier
included) over each document's analyzed text followed by its kept phrases (``enrich/enrich.jsonl``, written by
:func:`sleuth.retrieval.enrich.enrich_corpus`). So, as in the reference:

* postings, df, document lengths and the average length all change (a phrase's stems count in ``dl``);
* words new to the corpus become vocabulary (the reference's doc filter admits them);
* each phrase is its own segment: its bigrams are indexed, none across the document/phrase boundary or between
  two phrases (``enrich_batch`` tokenizes each phrase in isolation).

The raw files are never touched. The build reads no document: it starts from the base index's token stream and
text store (copied). Its ``meta.json`` records the base index's identity and a digest of the kept phrases; when
either changes the enriched index is stale and opening it raises :class:`~sleuth.errors.StaleIndexError` naming the
fix (``sleuth enrich CORPUS --model M`` re-enriches changed documents and rebuilds it; ``--limit 0`` rebuilds it
without a model call).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sleuth.errors import IndexMissingError, StaleIndexError
from sleuth.retrieval.bm25 import META, BM25Index

if TYPE_CHECKING:
    from sleuth.corpus import Corpus

NAME = "index"


def target_of(corpus: Corpus) -> Path:
    from sleuth.retrieval.enrich import DIRNAME

    return corpus.state_dir / DIRNAME / NAME


def fix_hint(corpus: Corpus) -> str:
    return (f"run `sleuth enrich {corpus.root} --model MODEL`: it enriches what changed and rebuilds the enriched "
            f"index (`--limit 0` rebuilds it from the existing enrichment without a model call)")


def base_identity(meta: dict[str, Any]) -> str:
    """What identifies a base index's content (unchanged when its bigram tier is added on demand)."""
    body = {k: meta.get(k) for k in ("fingerprint", "built_at", "params", "n_docs", "n_tokens")}
    body["tokens"] = (meta.get("checksums") or {}).get("tokens.npy")
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def kept_phrases(corpus: Corpus, base: BM25Index) -> dict[str, list[str]]:
    """Each document's kept phrases, in the base index's order (documents with none left out)."""
    from sleuth.retrieval.enrich import JSONL, read_records

    recs = read_records(target_of(corpus).parent / JSONL)
    return {d: recs[d].kept for d in base.doc_ids if d in recs and recs[d].kept}


def enrichment_digest(phrases: dict[str, list[str]]) -> str:
    raw = json.dumps(sorted(phrases.items()), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def build_enriched_index(corpus: Corpus, base: BM25Index, *, lock_timeout: float | None = None) -> Path:
    """(Re)build the enriched index of ``corpus`` from ``base`` and the enrichment file, under its build lock."""
    from sleuth.retrieval.bm25_build import remember_verified, write_arrays
    from sleuth.retrieval.bm25_ngrams import _link_or_copy
    from sleuth.retrieval.index_store import LOCK_TIMEOUT_S, building

    refuse_sharded(base)
    refuse_overlay(base)
    target = target_of(corpus)
    phrases = kept_phrases(corpus, base)
    vocab = dict(base.vocab)
    analyzer = base.analyzer
    tokens = np.asarray(base.tokens)
    offsets = np.asarray(base.doc_offsets, dtype=np.int64)
    pieces: list[np.ndarray] = []
    new_off = np.empty(base.n_docs + 1, dtype=np.int64)
    new_off[0] = 0
    breaks: list[int] = []
    pos = n_phrases = 0
    run_start = 0  # documents without phrases are copied in runs
    for i, doc_id in enumerate(base.doc_ids):
        extra = phrases.get(doc_id)
        if not extra:
            new_off[i + 1] = pos + (offsets[i + 1] - offsets[run_start])
            continue
        pieces.append(tokens[offsets[run_start]: offsets[i + 1]])
        pos += int(offsets[i + 1] - offsets[run_start])
        for text in extra:
            ids = [vocab.setdefault(t, len(vocab)) for t in analyzer.tokens(text)]
            if not ids:
                continue
            breaks.append(pos)
            pieces.append(np.asarray(ids, dtype=np.int32))
            pos += len(ids)
            n_phrases += 1
        new_off[i + 1] = pos
        run_start = i + 1
    pieces.append(tokens[offsets[run_start]: offsets[-1]])
    tok_arr = np.concatenate(pieces).astype(np.int32, copy=False) if pieces else np.zeros(0, np.int32)
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    extra_meta = {
        "kind": "enriched", "base": base_identity(base.meta), "base_path": str(base.path),
        "enrichment": enrichment_digest(phrases), "enriched_docs": len(phrases), "enrichment_phrases": n_phrases,
        "new_terms": len(vocab) - len(base.vocab), "segments": len(breaks), "base_built_at": base.meta.get("built_at"),
        "enriched_at": time.time(),
    }
    with building(target, timeout=timeout) as tmp:
        for name in ("store.bin", "store_offsets.npy"):  # the text store: the base's (hard-linked when possible)
            _link_or_copy(base.path / name, tmp / name)
        write_arrays(tmp, base.doc_ids, tok_arr, new_off, vocab, base.params,
                     fingerprint=str(base.meta.get("fingerprint", "")), extra_meta=extra_meta,
                     bigrams=True, breaks=np.asarray(breaks, dtype=np.int64))
    remember_verified(target)
    return target


def refuse_overlay(base: BM25Index) -> None:
    from sleuth.retrieval.bm25_overlay import OverlaidBM25Index

    if isinstance(base, OverlaidBM25Index):
        from sleuth.errors import ConfigError

        raise ConfigError(f"the BM25 index at {base.path} holds an incremental update's overlay: the enriched index "
                          "is built from one plain index", hint=f"run `sleuth enrich {base.path.parent.parent}`, "
                          "which folds the overlay in first")


def refuse_sharded(base: BM25Index) -> None:
    if base.sharded:
        from sleuth.errors import ConfigError

        raise ConfigError(f"the BM25 index at {base.path} is sharded: SIRA's corpus-side enrichment runs on one index",
                          hint="delete CORPUS/.sleuth/bm25 and run `sleuth index CORPUS` (one index) to enrich")


def open_enriched(corpus: Corpus, base: BM25Index, *, rebuild: bool = False) -> BM25Index:
    """The enriched index of ``corpus`` over ``base`` (an up-to-date base index). Missing: IndexMissingError;
    built from another base index or another enrichment: StaleIndexError (rebuilt instead when ``rebuild``)."""
    from sleuth.retrieval.index_store import open_or_build

    refuse_sharded(base)

    target = target_of(corpus)
    hint = fix_hint(corpus)
    if not (target / META).is_file():
        raise IndexMissingError(f"{corpus.root} has no enriched index (no {target})", hint=hint)

    def stale(index: BM25Index) -> str | None:
        if index.meta.get("base") != base_identity(base.meta):
            return ("the base BM25 index changed after it was built (a changed corpus or a rebuilt index: the "
                    "enrichment must be brought up to date first)")
        if index.meta.get("enrichment") != enrichment_digest(kept_phrases(corpus, base)):
            return "the enrichment file changed after it was built"
        if index.doc_ids != base.doc_ids:
            return "its documents differ from the base index's"
        return None

    opened = open_or_build(
        target, load=lambda: BM25Index.load(target), stale=stale,
        build=lambda: build_enriched_index(corpus, base), rebuild=rebuild, build_missing=False,
        what="enriched BM25 index", fix=hint,
    )
    opened.index.corpus = corpus
    opened.index.status = f"enriched: {opened.status}"
    return opened.index


__all__ = ["StaleIndexError", "base_identity", "build_enriched_index", "open_enriched", "target_of"]
