"""Records shared by every evaluation loader, and the reading helpers that keep line numbers.

Loaders never crash on one bad record: each problem becomes a :class:`BadRecord` (file, line or record number,
what is wrong) collected in :attr:`EvalSet.bad`. Only when nothing valid remains do they raise
:class:`~sleuth.errors.DataError`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth.errors import DataError

TaskKind = Literal["qa", "retrieval", "tools", "browsecomp"]
MAX_BAD_SHOWN = 5


class Paragraph(BaseModel):
    """A context paragraph shipped with a question (HotpotQA distractor / IRCoT)."""

    title: str
    text: str
    is_supporting: bool = False


class EvalQuestion(BaseModel):
    """One question of any evaluation set.

    ``relevance`` maps *original* document ids (BEIR ``_id``, HotpotQA title, tool id) to graded relevance; it is
    what ranking metrics use. ``gold_doc_ids`` are the documents that hold the answer (HotpotQA supporting
    titles, BrowseComp-Plus gold docs); ``supporting_facts`` are HotpotQA's sentence-level ``[title, index]``.
    """

    id: str
    question: str
    answers: list[str] = Field(default_factory=list)
    gold_doc_ids: list[str] = Field(default_factory=list)
    relevance: dict[str, int] = Field(default_factory=dict)
    supporting_titles: list[str] = Field(default_factory=list)
    supporting_facts: list[tuple[str, int]] = Field(default_factory=list)
    paragraphs: list[Paragraph] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)


class BadRecord(BaseModel):
    """A record a loader skipped: ``where`` is ``line N`` (JSONL/TSV) or ``record N`` (JSON arrays)."""

    source: str
    where: str
    error: str

    def __str__(self) -> str:
        return f"{self.source}: {self.where}: {self.error}"


class ToolSpec(BaseModel):
    """One tool of a tool-retrieval catalog."""

    id: str
    name: str
    description: str


class EvalSet(BaseModel):
    """What a loader returns: valid questions, skipped records, and where the documents are."""

    name: str
    kind: TaskKind
    questions: list[EvalQuestion]
    bad: list[BadRecord] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    checksum: str = ""
    corpus_jsonl: str | None = None  # a BEIR-style corpus.jsonl to import as the sleuth corpus
    corpus_dir: str | None = None  # or a ready sleuth corpus folder (user-supplied)
    tools: list[ToolSpec] = Field(default_factory=list)
    info: dict[str, Any] = Field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.questions)

    def bad_summary(self) -> str:
        shown = "; ".join(str(b) for b in self.bad[:MAX_BAD_SHOWN])
        more = f" (+{len(self.bad) - MAX_BAD_SHOWN} more)" if len(self.bad) > MAX_BAD_SHOWN else ""
        return shown + more


def require_questions(es: EvalSet, what: str) -> EvalSet:
    """Raise :class:`DataError` when a loader kept no valid question."""
    if not es.questions:
        detail = f"; skipped records: {es.bad_summary()}" if es.bad else ""
        raise DataError(
            f"{what}: no valid questions{detail}",
            hint="check the path and split; the files must hold at least one well-formed question",
        )
    return es


def file_checksum(paths: Iterable[str | Path]) -> str:
    """sha256 over the bytes of ``paths`` (names included, in the given order), hex, first 16 chars."""
    h = hashlib.sha256()
    for p in paths:
        p = Path(p)
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def iter_json_records(path: Path, bad: list[BadRecord]) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, value)`` for each record of a JSONL file (``line N``) or a JSON array (``record N``).

    Undecodable lines are appended to ``bad``; a JSON file that is not an array of records raises DataError.
    """
    src = str(path)
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"{path}: not valid JSON: {e}", hint="use a JSON array or a JSONL file") from None
        if isinstance(data, dict):  # {"data": [...]} wrappers
            data = next((v for v in data.values() if isinstance(v, list)), None)
        if not isinstance(data, list):
            raise DataError(f"{path}: expected a JSON array of records", hint="use a JSON array or JSONL")
        for n, value in enumerate(data, 1):
            yield f"record {n}", value
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                yield f"line {lineno}", json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                bad.append(BadRecord(source=src, where=f"line {lineno}", error=f"invalid JSON: {e}"))


def read_tsv(
    path: Path, bad: list[BadRecord], *, columns: int, header: str | None = None
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line number, fields)`` of a tab- or space-separated file; skips a header starting with ``header``."""
    src = str(path)
    with path.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n").rstrip("\r")
            if not line.strip():
                continue
            if lineno == 1 and header and line.startswith(header):
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) < columns:
                bad.append(
                    BadRecord(source=src, where=f"line {lineno}", error=f"expected {columns} fields, got {len(fields)}")
                )
                continue
            yield lineno, fields


def read_trec_qrels(path: Path, bad: list[BadRecord]) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid Q0 docid rel`` (or BEIR's 3-column TSV with a ``query-id`` header)."""
    qrels: dict[str, dict[str, int]] = {}
    for lineno, f in read_tsv(path, bad, columns=3, header="query-id"):
        qid, doc, rel = (f[0], f[2], f[3]) if len(f) >= 4 else (f[0], f[1], f[2])
        try:
            score = int(float(rel))
        except ValueError:
            bad.append(BadRecord(source=str(path), where=f"line {lineno}", error=f"relevance {rel!r} is not a number"))
            continue
        qrels.setdefault(qid.strip(), {})[doc.strip()] = score
    return qrels


def seeded_order(items: list[Any], seed: int | None) -> list[Any]:
    if seed is None:
        return list(items)
    import random

    out = list(items)
    random.Random(seed).shuffle(out)
    return out
