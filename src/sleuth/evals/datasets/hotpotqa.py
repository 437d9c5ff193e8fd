"""HotpotQA loaders: the official distractor schema and the IRCoT-style paragraph schema.

* Official (``.json`` array or ``.jsonl``): ``_id``, ``question``, ``answer``, ``context`` as
  ``[[title, [sentences]], ...]`` and ``supporting_facts`` as ``[[title, sentence index], ...]``.
* IRCoT-style JSONL: ``_id`` (or ``id``/``question_id``), ``question``, ``answers`` (a list), ``paragraphs`` as
  ``[{"title", "text" | "paragraph_text", "is_supporting"}, ...]``.

Both become :class:`EvalQuestion` records whose gold documents are the supporting paragraphs' titles; a title
is also the paragraph's original id in the sleuth corpus built from them (one document per paragraph).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sleuth.errors import DataError
from sleuth.evals.datasets.base import (
    BadRecord,
    EvalQuestion,
    EvalSet,
    Paragraph,
    file_checksum,
    iter_json_records,
    require_questions,
)

ID_KEYS = ("_id", "id", "question_id", "qid")


class _Bad(ValueError):
    pass


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    if not isinstance(value, str):
        raise _Bad(f"paragraph text must be a string or a list of sentences, got {type(value).__name__}")
    return value


def _official(rec: dict[str, Any]) -> tuple[list[Paragraph], list[tuple[str, int]], list[str]]:
    paragraphs: list[Paragraph] = []
    for item in rec["context"]:
        if not (isinstance(item, list | tuple) and len(item) == 2 and isinstance(item[0], str)):
            raise _Bad("'context' items must be [title, [sentences]]")
        paragraphs.append(Paragraph(title=item[0], text=_text(item[1])))
    facts: list[tuple[str, int]] = []
    for sf in rec.get("supporting_facts") or []:
        if not (isinstance(sf, list | tuple) and len(sf) == 2 and isinstance(sf[0], str) and isinstance(sf[1], int)):
            raise _Bad("'supporting_facts' items must be [title, sentence index]")
        facts.append((sf[0], sf[1]))
    titles = list(dict.fromkeys(t for t, _ in facts))
    known = {p.title for p in paragraphs}
    missing = [t for t in titles if t not in known]
    if missing:
        raise _Bad(f"supporting title(s) {missing} are not among the context paragraphs")
    for p in paragraphs:
        p.is_supporting = p.title in titles
    answer = rec.get("answer")
    answers = [answer] if isinstance(answer, str) else list(rec.get("answers") or [])
    return paragraphs, facts, answers


def _ircot(rec: dict[str, Any]) -> tuple[list[Paragraph], list[tuple[str, int]], list[str]]:
    paragraphs: list[Paragraph] = []
    for p in rec["paragraphs"]:
        if not isinstance(p, dict) or "title" not in p:
            raise _Bad("'paragraphs' items must be objects with a 'title'")
        raw = p.get("text", p.get("paragraph_text"))
        if raw is None:
            raise _Bad(f"paragraph {p.get('title')!r} has no 'text'")
        paragraphs.append(Paragraph(title=str(p["title"]), text=_text(raw), is_supporting=bool(p.get("is_supporting"))))
    answers = rec.get("answers")
    if answers is None and isinstance(rec.get("answer"), str):
        answers = [rec["answer"]]
    if isinstance(answers, str):
        answers = [answers]
    return paragraphs, [], [str(a) for a in answers or []]


def parse_record(rec: Any) -> EvalQuestion:
    """One HotpotQA record (either schema) → :class:`EvalQuestion`; raises ValueError with the reason."""
    if not isinstance(rec, dict):
        raise _Bad("not a JSON object")
    qid = next((str(rec[k]) for k in ID_KEYS if rec.get(k) not in (None, "")), None)
    if qid is None:
        raise _Bad(f"no question id (one of {', '.join(ID_KEYS)})")
    question = rec.get("question") or rec.get("question_text")
    if not isinstance(question, str) or not question.strip():
        raise _Bad("no 'question' text")
    if isinstance(rec.get("context"), list):
        paragraphs, facts, answers = _official(rec)
        schema = "official"
    elif isinstance(rec.get("paragraphs"), list):
        paragraphs, facts, answers = _ircot(rec)
        schema = "ircot"
    else:
        raise _Bad("neither 'context' (official schema) nor 'paragraphs' (IRCoT schema)")
    if not answers:
        raise _Bad("no answer ('answer' or 'answers')")
    titles = list(dict.fromkeys(p.title for p in paragraphs if p.is_supporting))
    return EvalQuestion(
        id=qid,
        question=question.strip(),
        answers=answers,
        gold_doc_ids=titles,
        relevance={t: 1 for t in titles},
        supporting_titles=titles,
        supporting_facts=facts,
        paragraphs=paragraphs,
        metadata={k: rec[k] for k in ("type", "level") if k in rec} | {"schema": schema},
    )


def load_hotpotqa(path: str | Path) -> EvalSet:
    """Load a HotpotQA file (official ``.json``/``.jsonl`` or IRCoT-style ``.jsonl``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonl") and "corpus" not in p.name)
        if len(candidates) != 1:
            raise DataError(
                f"{path} is a folder; pass the question file itself",
                hint=f"files there: {', '.join(p.name for p in candidates) or 'none'}; "
                "a BEIR-format folder (corpus.jsonl, queries.jsonl, qrels/) goes to `sleuth eval beir`",
            )
        path = candidates[0]
    if not path.is_file():
        raise DataError(f"HotpotQA file not found: {path}", hint="pass --data with a .json or .jsonl file")
    bad: list[BadRecord] = []
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for where, rec in iter_json_records(path, bad):
        try:
            q = parse_record(rec)
        except (_Bad, ValueError, TypeError) as e:
            bad.append(BadRecord(source=str(path), where=where, error=str(e)))
            continue
        if q.id in seen:
            bad.append(BadRecord(source=str(path), where=where, error=f"duplicate question id {q.id!r}"))
            continue
        seen.add(q.id)
        q.metadata["where"] = where
        questions.append(q)
    es = EvalSet(
        name=path.stem,
        kind="qa",
        questions=questions,
        bad=bad,
        files=[str(path)],
        checksum=file_checksum([path]),
        info={"paragraphs_per_question": _mean(len(q.paragraphs) for q in questions)},
    )
    return require_questions(es, f"HotpotQA {path}")


def pooled_paragraphs(questions: list[EvalQuestion]) -> list[Paragraph]:
    """Every question's paragraphs, one per title (first text wins): the corpus of the 'pooled' setting."""
    out: dict[str, Paragraph] = {}
    for q in questions:
        for p in q.paragraphs:
            out.setdefault(p.title, p)
    return list(out.values())


def _mean(values: Any) -> float:
    vals = list(values)
    return round(sum(vals) / len(vals), 2) if vals else 0.0
