"""What is known about each document besides its text: one metadata record per doc id.

A record merges, later sources winning:

1. what the loader read from the file (:class:`~sleuth.loaders.store.Entry` ``meta``): a PDF's ``title`` and
   ``author``, ``pages``; a DOCX's or PPTX's ``title`` and ``author``, ``slides``; the ``encoding`` of a text
   file that was not UTF-8;
2. a Markdown file's front matter (``---`` YAML-style or ``+++`` TOML at the top of a ``.md`` file), read by
   :func:`front_matter` when the file is judged, kept in its entry;
3. the records of ``metadata.jsonl`` beside the corpus manifest (``CORPUS/.sleuth/``): what ``sleuth corpus
   import`` kept of the source (a BEIR or HotpotQA title, a BEIR record's ``metadata`` fields and any other
   fields of a JSONL record) and the ``metadata`` given to :meth:`Corpus.add <sleuth.corpus.Corpus.add>`;
4. the file's own fields, which always win: ``path`` (the doc id), ``size`` (bytes), ``mtime`` (ISO 8601, UTC,
   e.g. ``2024-05-01T09:30:00Z``) and ``format`` (``text``, ``pdf``, ``docx``, ``pptx``, ``html``).

Values are JSON scalars or lists of scalars; a nested mapping becomes dotted fields (``metadata: {journal: X}``
gives ``journal``; front matter ``author: {name: X}`` gives ``author.name``). ``metadata.jsonl`` is append-only
(one JSON object per line, ``{"id": DOC_ID, "fields": {...}}`` or ``{"id": DOC_ID, "removed": true}``; the last
line for an id wins), so adding a document costs one line, not a rewrite.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sleuth.errors import ToolArgumentError

if TYPE_CHECKING:
    from sleuth.loaders.store import Entry

RECORDS = "metadata.jsonl"
FILE_FIELDS = ("path", "size", "mtime", "format")
MARKDOWN = frozenset({".md", ".markdown", ".mdx", ".qmd", ".rmd"})
LOADER_INTERNAL = frozenset({"module", "extra", "package", "front_matter"})
FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
MAX_FIELDS = 200
MAX_VALUE_CHARS = 1000
MAX_LIST_ITEMS = 100
MAX_FRONT_MATTER_BYTES = 64 * 1024

Scalar = str | int | float | bool | None


def is_markdown(doc_id: str) -> bool:
    """Whether the file name ends in a Markdown suffix (cheap: called for every file of every listing)."""
    dot = doc_id.rfind(".")
    return dot > doc_id.rfind("/") + 1 and doc_id[dot:].lower() in MARKDOWN


def iso_mtime(mtime_ns: int) -> str:
    t = dt.datetime.fromtimestamp(mtime_ns / 1e9, tz=dt.UTC)
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


# -- values ---------------------------------------------------------------------------------------------------


def _scalar(value: Any) -> tuple[bool, Scalar]:
    if value is None or isinstance(value, bool | int):
        return True, value
    if isinstance(value, float):
        return (True, value) if value == value and abs(value) != float("inf") else (False, None)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return True, value.isoformat()
    if isinstance(value, str):
        return True, value[:MAX_VALUE_CHARS]
    return False, None


def clean_fields(fields: Mapping[str, Any], *, strict: bool = False, prefix: str = "", depth: int = 0
                 ) -> dict[str, Any]:
    """``fields`` as metadata: scalars and lists of scalars kept, nested mappings flattened into dotted names
    (three levels), anything else dropped; names must match :data:`FIELD_RE`. ``strict`` (``Corpus.add``):
    a bad name or value is a :class:`ToolArgumentError` instead of being dropped."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = f"{prefix}{key}"
        if not isinstance(key, str) or not FIELD_RE.fullmatch(name):
            if strict:
                raise ToolArgumentError(f"metadata field name {name!r} is not a name",
                                        hint="a field name is a letter or _ followed by letters, digits, _, . or -")
            continue
        if isinstance(value, Mapping):
            if depth < 2:
                out.update(clean_fields(value, strict=strict, prefix=f"{name}.", depth=depth + 1))
            elif strict:
                raise ToolArgumentError(f"metadata field {name!r} nests too deep (three levels at most)")
            continue
        if isinstance(value, list | tuple):
            items = [_scalar(v) for v in value[:MAX_LIST_ITEMS]]
            if all(ok for ok, _ in items):
                out[name] = [v for _, v in items]
            elif strict:
                raise ToolArgumentError(f"metadata field {name!r}: a list may hold only strings, numbers, "
                                        "booleans and dates")
            continue
        ok, v = _scalar(value)
        if ok:
            out[name] = v
        elif strict:
            raise ToolArgumentError(f"metadata field {name!r} has a value of type {type(value).__name__}",
                                    hint="metadata values are strings, numbers, booleans, dates or lists of them")
        if len(out) >= MAX_FIELDS:
            if strict:
                raise ToolArgumentError(f"more than {MAX_FIELDS} metadata fields")
            break
    return out


# -- front matter ---------------------------------------------------------------------------------------------


def _yaml_scalar(text: str) -> Any:
    t = text.strip()
    if len(t) >= 2 and t[0] == t[-1] and t[0] in "'\"":
        return t[1:-1]
    if " #" in t:
        t = t.split(" #", 1)[0].rstrip()
    low = t.lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("null", "~", ""):
        return None
    if re.fullmatch(r"[+-]?\d+", t):
        return int(t)
    if re.fullmatch(r"[+-]?(\d+\.\d*|\.\d+)([eE][+-]?\d+)?", t):
        return float(t)
    return t


def _inline_list(text: str) -> list[Any]:
    body = text.strip()[1:-1]
    items, cur, quote = [], "", ""
    for ch in body:
        if quote:
            cur += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote, cur = ch, cur + ch
        elif ch == ",":
            items.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        items.append(cur)
    return [_yaml_scalar(i) for i in items]


def _yaml_block(lines: list[str]) -> dict[str, Any]:
    """The YAML subset front matter uses: ``key: value``, ``[a, b]`` and ``- item`` lists, nested mappings by
    indentation, ``|``/``>`` blocks. Anchors, tags and flow mappings are not read (their lines are skipped)."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(-1, root)]
    pending: tuple[int, dict[str, Any], str] | None = None  # a key without a value: a list or mapping follows
    block: tuple[int, dict[str, Any], str, list[str]] | None = None
    skip: int | None = None
    for raw in lines:
        if block is not None:
            ind = len(raw) - len(raw.lstrip())
            if raw.strip() and ind > block[0]:
                block[3].append(raw.strip())
                continue
            block[1][block[2]] = " ".join(block[3])
            block = None
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        ind = len(raw) - len(raw.lstrip())
        line = raw.strip()
        if skip is not None and ind > skip:
            continue  # inside a list item that is a mapping: not read
        skip = None
        if line.startswith("- ") or line == "-":
            if re.match(r"-\s+[^'\"\[{]*?:(\s|$)", line):
                skip = ind  # a list of mappings: the key keeps the items before, the rest is skipped
                continue
            if pending is not None and ind >= pending[0]:
                holder, key = pending[1], pending[2]
                if not isinstance(holder.get(key), list):
                    holder[key] = []
                holder[key].append(_yaml_scalar(line[1:]))
            continue
        m = re.fullmatch(r"([^:#'\"\[\]{}]+?)\s*:(\s+(.*))?", line)
        if m is None:
            continue
        key, value = m.group(1).strip(), (m.group(3) or "").strip()
        while stack and ind <= stack[-1][0]:
            stack.pop()
        if pending is not None and ind > pending[0] and not isinstance(pending[1].get(pending[2]), list):
            child: dict[str, Any] = {}
            pending[1][pending[2]] = child
            stack.append((pending[0], child))
        pending = None
        holder = stack[-1][1] if stack else root
        if value in ("|", ">", "|-", ">-"):
            block = (ind, holder, key, [])
        elif value == "":
            holder[key] = None
            pending = (ind, holder, key)
        elif value.startswith("[") and value.endswith("]"):
            holder[key] = _inline_list(value)
        elif value.startswith(("&", "*", "!", "{")):
            continue
        else:
            holder[key] = _yaml_scalar(value)
    if block is not None:
        block[1][block[2]] = " ".join(block[3])
    return root


def front_matter(text: str) -> dict[str, Any]:
    """The front matter fields of a Markdown text (``{}`` when it has none or it does not parse)."""
    if text.startswith("---"):
        end_re = r"^(---|\.\.\.)\s*$"
        fence = "---"
    elif text.startswith("+++"):
        end_re, fence = r"^\+\+\+\s*$", "+++"
    else:
        return {}
    head = text[: MAX_FRONT_MATTER_BYTES]
    first, _, rest = head.partition("\n")
    if first.strip() != fence:
        return {}
    m = re.search(end_re, rest, re.M)
    if m is None:
        return {}
    body = rest[: m.start()]
    if fence == "+++":
        import tomllib

        try:
            return clean_fields(tomllib.loads(body))
        except (tomllib.TOMLDecodeError, ValueError):
            return {}
    return clean_fields(_yaml_block(body.splitlines()))


def read_front_matter(path: Path) -> dict[str, Any]:
    """:func:`front_matter` of a UTF-8 file (its first :data:`MAX_FRONT_MATTER_BYTES` only)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(MAX_FRONT_MATTER_BYTES)
    except OSError:
        return {}
    return front_matter(head.decode("utf-8", errors="ignore"))


# -- the records file -----------------------------------------------------------------------------------------


class MetadataRecords:
    """``metadata.jsonl`` of a corpus (see the module docstring): read again whenever the file changed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._records: dict[str, dict[str, Any]] = {}
        self._mutex = threading.Lock()

    @property
    def stamp(self) -> tuple[int, int, int] | None:
        """The file's (inode, size, mtime_ns) when last loaded (None: no file)."""
        return self._stamp

    def load(self) -> dict[str, dict[str, Any]]:
        """doc id -> fields (shared, do not modify), read again when the file changed."""
        try:
            st = self.path.stat()
        except OSError:
            self._stamp, self._records = None, {}
            return {}
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._mutex:
            if stamp != self._stamp:
                self._records = dict(_read_records(self.path))
                self._stamp = stamp
            return self._records

    def append(self, doc_id: str, fields: Mapping[str, Any] | None) -> None:
        """Record ``fields`` for ``doc_id`` (None: its record is removed), one line at the end of the file."""
        from sleuth.retrieval.index_store import build_lock

        line = {"id": doc_id, "fields": dict(fields)} if fields is not None else {"id": doc_id, "removed": True}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with build_lock(self.path), open(self.path, "a", encoding="utf-8") as fh:  # .metadata.jsonl.lock
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def _read_records(path: Path) -> Iterable[tuple[str, dict[str, Any]]]:
    out: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line (a killed writer); the records before it stand
            if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
                continue
            if rec.get("removed"):
                out.pop(rec["id"], None)
            elif isinstance(rec.get("fields"), dict):
                out[rec["id"]] = rec["fields"]
    return out.items()


# -- one record per document ----------------------------------------------------------------------------------


def record_of(doc_id: str, entry: Entry, stored: Mapping[str, Any] | None) -> dict[str, Any]:
    """The metadata record of one document (see the module docstring for the order)."""
    rec: dict[str, Any] = {k: v for k, v in entry.meta.items() if k not in LOADER_INTERNAL}
    fm = entry.meta.get("front_matter")
    if isinstance(fm, dict):
        rec.update(fm)
    if stored:
        rec.update(stored)
    rec.update(path=doc_id, size=entry.size, mtime=iso_mtime(entry.mtime_ns),
               format=entry.format if entry.status == "converted" else "text")
    return rec


def table(entries: Mapping[str, Entry], stored: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """doc id -> record for every readable entry."""
    return {d: record_of(d, e, stored.get(d)) for d, e in entries.items() if e.readable}
