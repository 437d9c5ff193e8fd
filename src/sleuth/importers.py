"""`sleuth corpus import`: turn a BEIR corpus, HotpotQA-style questions or a plain JSONL into a corpus folder.

Streaming: JSONL is read line by line and JSON arrays record by record, so a 1 GB file is never loaded whole
(a top-level JSON *object* such as ``{title: [sentences]}`` is the one shape read at once). Atomic: documents
are written into a temporary folder beside the destination, which replaces the destination only when every
record was read; an interrupted or failed import leaves the old state untouched.

Each document becomes ``<encoded id>.txt`` (see :mod:`sleuth.ids`) holding ``title\\n\\ntext`` (the title line
only when the source has titles). ``.sleuth/corpus.json`` records the format, counts and id encoding, so
``Corpus.original_id`` maps file paths back to source ids. ``.sleuth/metadata.jsonl`` keeps each document's
metadata (:mod:`sleuth.metadata`): its title, a BEIR record's ``metadata`` fields and any other field of the
record (``year``, ``author``, ...), for ``search --where``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth import ids
from sleuth.corpus import MANIFEST, STATE_DIRNAME
from sleuth.errors import ConfigError, ImportFormatError
from sleuth.fsutil import atomic_dir, sweep_stale_builds
from sleuth.metadata import FILE_FIELDS, RECORDS, clean_fields
from sleuth.progress import progress_bar

Format = Literal["auto", "beir", "hotpotqa", "jsonl"]
ID_FIELDS = ("_id", "id", "doc_id", "docid", "pid")
TEXT_FIELDS = ("text", "contents", "content", "body", "paragraph_text")
CHUNK = 1 << 20


class ImportReport(BaseModel):
    source: str
    dest: str
    format: str
    documents: int = 0
    records: int = 0
    skipped: int = 0
    duplicates: int = 0
    renamed: int = 0
    errors: list[str] = Field(default_factory=list)  # the first few problems, with line/record numbers
    seconds: float = 0.0


class _Record(BaseModel):
    where: str  # "line 12" or "record 12"
    value: Any


# -- reading sources, streaming -------------------------------------------------------------------------------


def _iter_jsonl(path: Path, bar: Any) -> Iterator[_Record]:
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            bar.advance(len(raw))
            line = raw.strip()
            if not line:
                continue
            try:
                yield _Record(where=f"line {lineno}", value=json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                yield _Record(where=f"line {lineno}", value=ImportFormatError(f"line {lineno}: invalid JSON: {e}"))


def _iter_json(path: Path, bar: Any) -> Iterator[_Record]:
    """Records of a top-level JSON array, decoded one at a time; a top-level object is read whole."""
    decoder = json.JSONDecoder()
    with path.open("r", encoding="utf-8") as fh:
        buf = fh.read(CHUNK)
        bar.advance(len(buf.encode("utf-8", "ignore")))
        pos = len(buf) - len(buf.lstrip())
        if buf[pos : pos + 1] == "{":
            rest = fh.read()
            bar.advance(len(rest.encode("utf-8", "ignore")))
            try:
                obj = json.loads(buf + rest)
            except json.JSONDecodeError as e:
                raise ImportFormatError(f"{path}: invalid JSON: {e}") from e
            for n, (key, value) in enumerate(obj.items(), 1):
                yield _Record(where=f"key {n}", value={"title": key, "text": value})
            return
        if buf[pos : pos + 1] != "[":
            raise ImportFormatError(f"{path}: expected a JSON array or object")
        pos += 1
        n = 0
        eof = False
        while True:
            while True:  # skip separators
                while pos < len(buf) and buf[pos] in " \t\r\n,":
                    pos += 1
                if pos < len(buf) or eof:
                    break
                more = fh.read(CHUNK)
                bar.advance(len(more.encode("utf-8", "ignore")))
                buf, pos, eof = more, 0, not more
            if pos >= len(buf) or buf[pos] == "]":
                return
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as e:
                    more = fh.read(CHUNK)
                    if not more:
                        raise ImportFormatError(f"{path}: record {n + 1}: invalid JSON: {e}") from e
                    bar.advance(len(more.encode("utf-8", "ignore")))
                    buf, pos = buf[pos:] + more, 0
            n += 1
            yield _Record(where=f"record {n}", value=value)
            buf, pos = buf[end:], 0


def _records(path: Path, bar: Any) -> Iterator[_Record]:
    if path.suffix == ".json":
        return _iter_json(path, bar)
    return _iter_jsonl(path, bar)


# -- turning records into documents ----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value)
    return "" if value is None else str(value)


Doc = tuple[str, str, str, dict[str, Any]]  # (original id, title, text, metadata fields)


def _fields(rec: dict[str, Any], skip: Iterable[str], title: str) -> dict[str, Any]:
    """The metadata a record carries: its title, its BEIR ``metadata`` mapping's fields and any other field."""
    nested = rec.get("metadata")
    rest = {k: v for k, v in rec.items() if k not in skip and k != "metadata"}
    fields = clean_fields({**(nested if isinstance(nested, dict) else {}), **rest})
    if title:
        fields["title"] = title
    return {k: v for k, v in fields.items() if k not in FILE_FIELDS}


def _docs_beir(rec: dict[str, Any]) -> list[Doc]:
    if "_id" not in rec:
        raise ImportFormatError("BEIR record has no '_id'")
    title = str(rec.get("title") or "")
    return [(str(rec["_id"]), title, _as_text(rec.get("text")), _fields(rec, ("_id", "title", "text"), title))]


def _docs_hotpot(rec: dict[str, Any]) -> list[Doc]:
    out = []
    if isinstance(rec.get("context"), list):  # official: [[title, [sentences]], ...]
        for item in rec["context"]:
            if not (isinstance(item, list | tuple) and len(item) == 2):
                raise ImportFormatError("HotpotQA 'context' items must be [title, sentences]")
            out.append((str(item[0]), str(item[0]), _as_text(item[1]), {"title": str(item[0])}))
    elif isinstance(rec.get("paragraphs"), list):  # IRCoT / MuSiQue: [{title, text|paragraph_text}]
        for p in rec["paragraphs"]:
            title = str(p.get("title", ""))
            text = _as_text(next((p[f] for f in TEXT_FIELDS if f in p), ""))
            out.append((title or text[:80], title, text, {"title": title} if title else {}))
    else:
        raise ImportFormatError("HotpotQA record has neither 'context' nor 'paragraphs'")
    return out


def _docs_plain(rec: dict[str, Any]) -> list[Doc]:
    text_field = next((f for f in TEXT_FIELDS if f in rec), None)
    if text_field is None:
        raise ImportFormatError(f"record has no text field (one of {', '.join(TEXT_FIELDS)})")
    id_field = next((f for f in ID_FIELDS if f in rec), None)
    title = str(rec.get("title") or "")
    if id_field is None and not title:
        raise ImportFormatError(f"record has no id field (one of {', '.join(ID_FIELDS)}) and no title")
    doc_id = str(rec[id_field]) if id_field else title
    return [(doc_id, title, _as_text(rec[text_field]), _fields(rec, (text_field, id_field or "", "title"), title))]


_HANDLERS = {"beir": _docs_beir, "hotpotqa": _docs_hotpot, "jsonl": _docs_plain}


def detect_format(path: Path) -> str:
    """Peek at the first record: ``_id`` + ``text`` → beir; ``context``/``paragraphs`` → hotpotqa; else jsonl."""

    class _Null:
        def advance(self, n: float = 1) -> None: ...

    for rec in _records(path, _Null()):
        value = rec.value
        if isinstance(value, Exception):
            raise value
        if not isinstance(value, dict):
            raise ImportFormatError(f"{path}: {rec.where} is not a JSON object")
        if "context" in value or "paragraphs" in value:
            return "hotpotqa"
        if "_id" in value and "text" in value and "question" not in value:
            return "beir"
        return "jsonl"
    raise ImportFormatError(f"{path} has no records")


def _resolve_source(src: str | Path) -> Path:
    path = Path(src).expanduser()
    if path.is_dir():
        if (path / "corpus.jsonl").is_file():
            return path / "corpus.jsonl"
        raise ImportFormatError(f"{path} is a folder without corpus.jsonl")
    if not path.is_file():
        raise ImportFormatError(f"source not found: {path}", hint="pass a .jsonl/.json file or a BEIR folder")
    return path


def import_corpus(
    src: str | Path,
    dest: str | Path,
    fmt: Format = "auto",
    *,
    on_error: Literal["raise", "skip"] = "raise",
    overwrite: bool = False,
    progress: bool | None = None,
) -> ImportReport:
    """Import ``src`` into the corpus folder ``dest`` (atomically replacing a previous sleuth import there)."""
    t0 = time.perf_counter()
    source = _resolve_source(src)
    dest = Path(dest).expanduser()
    if dest.exists() and not dest.is_dir():
        raise ConfigError(f"destination {dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / STATE_DIRNAME / MANIFEST).is_file() and not overwrite:
        raise ConfigError(
            f"destination {dest} is a non-empty folder that is not a sleuth corpus",
            hint="choose an empty or new folder, or pass --overwrite to replace it",
        )
    sweep_stale_builds(dest.parent, dest.name)  # leftovers of a killed import (run one import per folder at a time)
    kind = detect_format(source) if fmt == "auto" else fmt
    if kind not in _HANDLERS:
        raise ConfigError(f"unknown import format {fmt!r}; use one of auto, {', '.join(_HANDLERS)}")
    handler = _HANDLERS[kind]
    report = ImportReport(source=str(source), dest=str(dest), format=kind)
    seen: dict[str, str] = {}  # original id -> text (for hotpotqa title collisions)
    has_titles = False
    n_records = 0  # metadata records written (doc id -> fields), beside the manifest

    def problem(msg: str) -> None:
        if on_error == "raise":
            raise ImportFormatError(f"{source}: {msg}", hint="fix the record, or pass --skip-bad to skip it")
        report.skipped += 1
        if len(report.errors) < 20:
            report.errors.append(msg)

    with atomic_dir(dest) as tmp, progress_bar(source.stat().st_size, f"import {source.name} (bytes)", progress) as bar:
        (tmp / STATE_DIRNAME).mkdir()
        records = (tmp / STATE_DIRNAME / RECORDS).open("w", encoding="utf-8")
        for rec in _records(source, bar):
            report.records += 1
            if isinstance(rec.value, Exception):
                problem(str(rec.value))
                continue
            if not isinstance(rec.value, dict):
                problem(f"{rec.where}: not a JSON object")
                continue
            try:
                docs = handler(rec.value)
            except ImportFormatError as e:
                problem(f"{rec.where}: {e.message}")
                continue
            for orig_id, title, text, fields in docs:
                if not orig_id.strip():
                    problem(f"{rec.where}: empty document id")
                    continue
                if orig_id in seen:
                    if kind != "hotpotqa":
                        report.duplicates += 1
                        continue
                    variant, n = orig_id, 1
                    while variant in seen and seen[variant] != text:
                        n += 1
                        variant = f"{orig_id} [{n}]"
                    if variant in seen:  # the same paragraph again (shared by several questions)
                        report.duplicates += 1
                        continue
                    orig_id = variant
                    report.renamed += 1
                seen[orig_id] = text if kind == "hotpotqa" else ""
                has_titles = has_titles or bool(title)
                rel = ids.encode(orig_id)
                if fields:
                    records.write(json.dumps({"id": rel, "fields": fields}, ensure_ascii=False) + "\n")
                    n_records += 1
                target = tmp / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                body = f"{title}\n\n{text}" if title else text
                target.write_text(body if body.endswith("\n") else body + "\n", encoding="utf-8")
                report.documents += 1
        if report.documents == 0:
            raise ImportFormatError(f"{source}: no documents could be imported", hint="; ".join(report.errors[:3]))
        records.close()
        state = tmp / STATE_DIRNAME
        if not n_records:
            (state / RECORDS).unlink()
        report.seconds = round(time.perf_counter() - t0, 3)
        manifest = {
            "id_encoding": "v1",
            "titles": has_titles,
            "format": kind,
            "source": str(source.resolve()),
            "documents": report.documents,
            "skipped": report.skipped,
            "duplicates": report.duplicates,
            "renamed": report.renamed,
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if n_records:
            manifest["metadata_records"] = n_records
        (state / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    return report
