"""BrowseComp-Plus: ``queries.tsv`` (``id<TAB>query``), ``qrel_evidence.txt`` and ``qrel_golds.txt`` (TREC).

Only the decrypted queries and the qrels are public here. The corpus (~100k web pages) is a user-supplied path
(a sleuth corpus folder, a BEIR folder, or a JSONL file with ``docid``/``_id`` and ``text``), and the answers a
user-supplied file (TSV ``id<TAB>answer``, or JSON/JSONL records with ``query_id``/``id`` and ``answer``).

``relevance`` holds the evidence documents (what retrieval is scored against, as in the BrowseComp-Plus paper);
``gold_doc_ids`` the gold documents (those that contain the answer). When a corpus is given, qrels rows whose
document it lacks are reported as bad records with their line numbers.
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

DOC_ID_KEYS = ("_id", "docid", "doc_id", "id")
QUERY_ID_KEYS = ("query_id", "qid", "id", "_id")


def _qrels_with_lines(path: Path, bad: list[BadRecord]) -> list[tuple[int, str, str, int]]:
    rows = []
    for lineno, f in read_tsv(path, bad, columns=4):
        try:
            rows.append((lineno, f[0], f[2], int(float(f[3]))))
        except ValueError:
            bad.append(BadRecord(source=str(path), where=f"line {lineno}", error=f"relevance {f[3]!r} is not a number"))
    return rows


def read_answers(path: Path, bad: list[BadRecord]) -> dict[str, str]:
    if not path.is_file():
        raise DataError(
            f"answers file not found: {path}", hint="pass --answers with a TSV (id<TAB>answer) or JSONL file"
        )
    out: dict[str, str] = {}
    if path.suffix in (".json", ".jsonl"):
        for where, rec in iter_json_records(path, bad):
            qid = next(
                (str(rec[k]) for k in QUERY_ID_KEYS if isinstance(rec, dict) and rec.get(k) not in (None, "")), None
            )
            ans = rec.get("answer") if isinstance(rec, dict) else None
            if qid is None or not isinstance(ans, str | int | float):
                bad.append(
                    BadRecord(
                        source=str(path), where=where, error="answer record needs 'query_id' (or 'id') and 'answer'"
                    )
                )
                continue
            out[qid] = str(ans)
        return out
    for _lineno, f in read_tsv(path, bad, columns=2, header="query_id"):
        out[f[0].strip()] = "\t".join(f[1:]).strip()
    return out


def corpus_original_ids(corpus: Path, bad: list[BadRecord]) -> tuple[set[str], str | None, str | None]:
    """``(ids, corpus_jsonl, corpus_dir)`` for a user-supplied corpus path."""
    if corpus.is_dir() and (corpus / "corpus.jsonl").is_file():
        corpus = corpus / "corpus.jsonl"
    if corpus.is_file():
        ids: set[str] = set()
        with corpus.open("rb") as fh:
            for lineno, raw in enumerate(fh, 1):
                if not raw.strip():
                    continue
                try:
                    rec = json.loads(raw)
                    ids.add(str(next(rec[k] for k in DOC_ID_KEYS if rec.get(k) not in (None, ""))))
                except (json.JSONDecodeError, UnicodeDecodeError, StopIteration, AttributeError, TypeError):
                    bad.append(
                        BadRecord(
                            source=str(corpus), where=f"line {lineno}", error="corpus record needs an id and JSON"
                        )
                    )
        return ids, str(corpus), None
    if corpus.is_dir():
        from sleuth.corpus import Corpus

        c = Corpus(corpus)
        return {c.original_id(d) for d in c.doc_ids()}, None, str(c.root)
    raise DataError(f"BrowseComp-Plus corpus not found: {corpus}", hint="pass --corpus with a folder or a corpus JSONL")


def load_browsecomp_plus(
    path: str | Path, *, corpus: str | Path | None = None, answers: str | Path | None = None
) -> EvalSet:
    root = Path(path).expanduser()
    queries_path, ev_path, gold_path = root / "queries.tsv", root / "qrel_evidence.txt", root / "qrel_golds.txt"
    for p in (queries_path, ev_path, gold_path):
        if not p.is_file():
            raise DataError(
                f"BrowseComp-Plus folder {root} has no {p.name}",
                hint="the folder must hold queries.tsv, qrel_evidence.txt and qrel_golds.txt",
            )
    bad: list[BadRecord] = []
    queries: dict[str, str] = {}
    for lineno, f in read_tsv(queries_path, bad, columns=2, header="query_id"):
        text = "\t".join(f[1:]).strip()
        if not text:
            bad.append(BadRecord(source=str(queries_path), where=f"line {lineno}", error="empty query"))
            continue
        queries[f[0].strip()] = text
    ids: set[str] | None = None
    corpus_jsonl = corpus_dir = None
    if corpus is not None:
        ids, corpus_jsonl, corpus_dir = corpus_original_ids(Path(corpus).expanduser(), bad)

    def qrels(p: Path) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for lineno, qid, doc, rel in _qrels_with_lines(p, bad):
            if ids is not None and doc not in ids:
                bad.append(
                    BadRecord(source=str(p), where=f"line {lineno}", error=f"document {doc!r} is not in the corpus")
                )
                continue
            if qid not in queries:
                bad.append(
                    BadRecord(source=str(p), where=f"line {lineno}", error=f"query {qid!r} is not in queries.tsv")
                )
                continue
            if rel > 0:
                out.setdefault(qid, {})[doc] = rel
        return out

    evidence, golds = qrels(ev_path), qrels(gold_path)
    answer_map = read_answers(Path(answers).expanduser(), bad) if answers is not None else {}
    questions = [
        EvalQuestion(
            id=qid,
            question=text,
            answers=[answer_map[qid]] if qid in answer_map else [],
            relevance=evidence.get(qid, {}),
            gold_doc_ids=sorted(golds.get(qid, {})),
        )
        for qid, text in queries.items()
    ]
    files = [queries_path, ev_path, gold_path] + ([Path(answers)] if answers is not None else [])
    es = EvalSet(
        name="browsecomp_plus",
        kind="browsecomp",
        questions=questions,
        bad=bad,
        files=[str(p) for p in files],
        checksum=file_checksum(files),
        corpus_jsonl=corpus_jsonl,
        corpus_dir=corpus_dir,
        info={
            "answers": len(answer_map),
            "with_evidence": sum(1 for q in questions if q.relevance),
            "corpus": str(corpus) if corpus is not None else None,
        },
    )
    return require_questions(es, f"BrowseComp-Plus {root}")
