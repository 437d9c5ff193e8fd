"""Turn an evaluation set's documents into a sleuth corpus folder, once, cached by data checksum.

* BEIR / tool sets with a ``corpus.jsonl``: imported as is (documents are ``title\\n\\ntext``).
* HotpotQA: every question's context paragraphs, pooled (one document per title, the first text wins), so the
  corpus is the same whatever ``--limit`` is; a document's original id is its title.
* Tool catalogs without a corpus file (MTRB): one document per tool, ``name\\n\\ndescription``.
* A user-supplied corpus folder (BrowseComp-Plus ``--corpus``) is used in place.

The cache lives under ``$SLEUTH_HOME/eval-corpora/<name>-<checksum>/`` (or ``cache_root``); the import is
atomic (:func:`sleuth.importers.import_corpus`), so a killed build leaves nothing half-written.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from sleuth.evals.datasets.base import EvalSet, file_checksum
from sleuth.evals.datasets.hotpotqa import pooled_paragraphs


def default_cache_root() -> Path:
    from sleuth.config import sleuth_home

    return sleuth_home() / "eval-corpora"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:60] or "corpus"


def _records(es: EvalSet) -> list[dict[str, Any]]:
    if es.kind == "tools" and es.tools:
        return [{"_id": t.id, "title": t.name, "text": t.description} for t in es.tools]
    return [{"_id": p.title, "title": p.title, "text": p.text} for p in pooled_paragraphs(es.questions)]


def corpus_for(es: EvalSet, cache_root: str | Path | None = None, *, progress: bool | None = None) -> Any:
    """The :class:`~sleuth.corpus.Corpus` holding ``es``'s documents (imported on first use)."""
    from sleuth.corpus import Corpus
    from sleuth.importers import import_corpus

    if es.corpus_dir:
        return Corpus(es.corpus_dir)
    root = Path(cache_root) if cache_root is not None else default_cache_root()
    if es.corpus_jsonl:
        src = Path(es.corpus_jsonl)
        key = file_checksum([src])
        dest = root / f"{_slug(es.name)}-{key}"
        if not (dest / ".sleuth" / "corpus.json").is_file():
            root.mkdir(parents=True, exist_ok=True)
            import_corpus(src, dest, fmt="auto", on_error="skip", progress=progress)
        return Corpus(dest)
    records = _records(es)
    key = file_checksum(es.files) if es.files else "inline"
    dest = root / f"{_slug(es.name)}-{key}"
    if not (dest / ".sleuth" / "corpus.json").is_file():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=root) as tmp:
            src = Path(tmp) / "corpus.jsonl"
            with src.open("w", encoding="utf-8") as fh:
                for r in records:
                    fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            import_corpus(src, dest, fmt="beir", on_error="skip", progress=progress)
    return Corpus(dest)
