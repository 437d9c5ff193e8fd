"""BEIR folders: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (with a ``query-id`` header).

Documents are indexed as ``title`` + ``text`` (the importer writes ``title\\n\\ntext``), as BEIR's own
evaluation does. Queries of the split are the ones that appear in its qrels; qrels rows whose document is not
in the corpus, or whose query is not in the queries file, are reported as bad records (with line numbers) and
left out. The ``train`` split reads ``queries_train.jsonl`` when present, else ``queries.jsonl``.
"""

from __future__ import annotations

import json
from pathlib import Path

from sleuth.errors import DataError
from sleuth.evals.datasets.base import (
    BadRecord,
    EvalQuestion,
    EvalSet,
    file_checksum,
    iter_json_records,
    read_tsv,
    require_questions,
)


def corpus_ids(path: Path, bad: list[BadRecord]) -> set[str]:
    """The ``_id`` of every well-formed record of a BEIR ``corpus.jsonl``; bad lines go to ``bad``."""
    ids: set[str] = set()
    src = str(path)
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.append(BadRecord(source=src, where=f"line {lineno}", error=f"invalid JSON: {e}"))
                continue
            if not isinstance(rec, dict) or rec.get("_id") in (None, "") or not isinstance(rec.get("text", ""), str):
                bad.append(BadRecord(source=src, where=f"line {lineno}", error="corpus record needs '_id' and 'text'"))
                continue
            ids.add(str(rec["_id"]))
    return ids


def read_queries(path: Path, bad: list[BadRecord]) -> dict[str, tuple[str, str, dict]]:
    """``{query id: (text, where, extra fields)}``."""
    out: dict[str, tuple[str, str, dict]] = {}
    for where, rec in iter_json_records(path, bad):
        if not isinstance(rec, dict) or rec.get("_id") in (None, "") or not str(rec.get("text") or "").strip():
            bad.append(BadRecord(source=str(path), where=where, error="query record needs '_id' and non-empty 'text'"))
            continue
        extra = {k: v for k, v in rec.items() if k not in ("_id", "text") and isinstance(v, str | int | float)}
        out[str(rec["_id"])] = (str(rec["text"]), where, extra)
    return out


def load_beir(path: str | Path, split: str = "test", *, name: str | None = None, kind: str = "retrieval") -> EvalSet:
    root = Path(path).expanduser()
    corpus = root / "corpus.jsonl"
    qrels_path = root / "qrels" / f"{split}.tsv"
    queries_path = root / f"queries_{split}.jsonl"
    if not queries_path.is_file():
        queries_path = root / "queries.jsonl"
    for p, what in ((corpus, "corpus.jsonl"), (queries_path, "queries.jsonl"), (qrels_path, f"qrels/{split}.tsv")):
        if not p.is_file():
            available = sorted(q.stem for q in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
            raise DataError(
                f"BEIR folder {root} has no {what}",
                hint=f"a BEIR folder holds corpus.jsonl, queries.jsonl and qrels/<split>.tsv; splits here: {available}",
            )
    bad: list[BadRecord] = []
    ids = corpus_ids(corpus, bad)
    queries = read_queries(queries_path, bad)
    qrels: dict[str, dict[str, int]] = {}
    src = str(qrels_path)
    for lineno, f in read_tsv(qrels_path, bad, columns=3, header="query-id"):
        qid, doc, rel = f[0].strip(), f[1].strip(), f[2].strip()
        try:
            score = int(float(rel))
        except ValueError:
            bad.append(BadRecord(source=src, where=f"line {lineno}", error=f"relevance {rel!r} is not a number"))
            continue
        if doc not in ids:
            bad.append(BadRecord(source=src, where=f"line {lineno}", error=f"document {doc!r} is not in corpus.jsonl"))
            continue
        if qid not in queries:
            bad.append(
                BadRecord(source=src, where=f"line {lineno}", error=f"query {qid!r} is not in {queries_path.name}")
            )
            continue
        qrels.setdefault(qid, {})[doc] = score
    questions = []
    for qid, rels in qrels.items():
        positive = {d: s for d, s in rels.items() if s > 0}
        if not positive:
            continue
        text, where, extra = queries[qid]
        questions.append(
            EvalQuestion(
                id=qid,
                question=text,
                relevance=positive,
                gold_doc_ids=sorted(positive),
                metadata={"where": where, **extra},
            )
        )
    es = EvalSet(
        name=name or root.name,
        kind=kind,
        questions=questions,
        bad=bad,
        files=[str(corpus), str(queries_path), str(qrels_path)],
        checksum=file_checksum([corpus, queries_path, qrels_path]),
        corpus_jsonl=str(corpus),
        info={"split": split, "corpus_documents": len(ids), "qrels": sum(len(r) for r in qrels.values())},
    )
    return require_questions(es, f"BEIR {root} split {split!r}")
