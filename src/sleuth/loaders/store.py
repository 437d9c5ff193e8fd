"""What each file of a corpus is, and the converted text of those that are not UTF-8 text, kept beside the indexes.

:class:`DocumentStore` holds one :class:`Entry` per file (keyed by doc id, with the size and mtime it was judged
at): ``text`` (UTF-8, read in place), ``converted`` (its text is in ``STATE/text/docs/<doc id>``, a UTF-8 file
at the same relative path, so grep, read and every index read that one text) or ``unreadable`` (with the reason).
:meth:`DocumentStore.sync` brings the entries up to date with a listing of the folder: only files that are new or
whose size or mtime changed are judged again (converted in :class:`~sleuth.loaders.worker.Converter`), the texts
of files gone are removed. The entries are kept in ``STATE/text/manifest.json`` whenever the state folder holds an
index or something had to be converted, so the next process reads them instead of judging every file again; a corpus
of UTF-8 files without indexes gets nothing written. Writes happen under the store's lock
(``STATE/.text.lock``): two processes never convert the same corpus at once.

A file that changes while it is converted is judged by the size and mtime it had before: the next sync sees the
change and converts it again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth.errors import MissingExtraError, UnreadableDocumentError
from sleuth.loaders import CONVERTED, Converted, LoaderCaps, format_of, load_text, utf8_file
from sleuth.metadata import front_matter, is_markdown, read_front_matter

STORE_DIRNAME = "text"
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
Status = Literal["text", "converted", "unreadable"]


class Entry(BaseModel):
    size: int
    mtime_ns: int
    status: Status
    format: str = "text"  # the loader's format: text, pdf, docx, pptx, html, image
    reason: str = ""  # unreadable: a short key (encrypted, no text, image, binary, too large, timeout, ...)
    message: str = ""  # unreadable: the sentence that says why
    meta: dict[str, Any] = Field(default_factory=dict)  # pages, slides, title, author, encoding, front_matter
    notes: list[str] = Field(default_factory=list)  # what a conversion left out (page or character caps)

    @property
    def readable(self) -> bool:
        return self.status != "unreadable"


class DocumentStore:
    """The entries and converted texts of one corpus (see the module docstring)."""

    def __init__(self, root: Path, state_dir: Path, caps: LoaderCaps | None = None) -> None:
        self.root = root
        self.state_dir = state_dir
        self.folder = state_dir / STORE_DIRNAME
        self.docs = self.folder / "docs"
        self.manifest_path = self.folder / MANIFEST
        self.caps = caps or LoaderCaps()
        self.entries: dict[str, Entry] = {}
        self._plain: dict[str, tuple[Entry, dict[str, Any]]] = {}  # doc id -> (its entry, that entry's JSON form)
        self._stamp: tuple[int, int] | None = None  # the manifest file's (ino, mtime_ns) when last read
        self._mutex = threading.RLock()  # threads of one process (an MCP server's concurrent calls)

    def text_path(self, doc_id: str) -> Path:
        return self.docs.joinpath(*PurePosixPath(doc_id).parts)

    # -- the manifest -------------------------------------------------------------------------------------------
    def _manifest_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.manifest_path.stat()
        except OSError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    def _reload(self) -> None:
        """Read the manifest again when another process (or this one) wrote it since the last read."""
        stamp = self._manifest_stamp()
        if stamp is None or stamp == self._stamp:
            return
        try:
            data = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            if data.get("version") == MANIFEST_VERSION:
                entries = {d: Entry.model_validate(e) for d, e in data["entries"].items()}
                self._plain = {d: (e, data["entries"][d]) for d, e in entries.items()}
                self.entries = entries
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged manifest is only a cache: every file is judged again
        self._stamp = stamp

    def _save(self) -> None:
        from sleuth.fsutil import atomic_write_text

        self._plain = {d: self._as_json(d, e) for d, e in self.entries.items()}  # the documents of now only
        data = {"version": MANIFEST_VERSION, "entries": {d: self._plain[d][1] for d in sorted(self.entries)}}
        atomic_write_text(self.manifest_path, json.dumps(data, ensure_ascii=False))
        self._stamp = self._manifest_stamp()

    def _as_json(self, doc_id: str, e: Entry) -> tuple[Entry, dict[str, Any]]:
        """``(e, its JSON form)``, dumped again only when ``doc_id``'s entry changed (entries are replaced, never
        modified)."""
        cached = self._plain.get(doc_id)
        return cached if cached is not None and cached[0] is e else (e, e.model_dump(mode="json"))

    # -- judging files ------------------------------------------------------------------------------------------
    def _current(self, doc_id: str, size: int, mtime_ns: int) -> bool:
        e = self.entries.get(doc_id)
        if e is None or e.size != size or e.mtime_ns != mtime_ns:
            return False
        if e.status == "converted" and not self.text_path(doc_id).is_file():
            return False  # its text was removed (someone cleared the state folder): convert again
        if e.status != "unreadable" and "front_matter" not in e.meta and is_markdown(doc_id):
            return False  # judged before front matter was read: read it now
        module = e.meta.get("module") if e.reason == "missing extra" else None
        return not (module and importlib.util.find_spec(module) is not None)  # False: the extra is installed now

    def _todo(self, files: dict[str, tuple[int, int]]) -> list[str]:
        return sorted(d for d, (s, m) in files.items() if not self._current(d, s, m))

    def sync(self, files: dict[str, tuple[int, int]], *, progress: bool = False) -> dict[str, Entry]:
        """Bring the entries up to date with ``files`` (doc id -> (size, mtime_ns): the whole folder) and return
        them (a copy: safe to iterate while another thread syncs)."""
        with self._mutex:
            self._reload()
            todo = self._todo(files)
            # with nothing to judge, every file has its entry: an entry more is a file gone
            if todo or len(self.entries) > len(files):
                self._sync(files, complete=True, progress=progress, todo=todo)
            return dict(self.entries)

    def entry(self, doc_id: str, size: int, mtime_ns: int) -> Entry:
        """The up-to-date entry of one file (judged now when it is new or changed); other entries are kept."""
        with self._mutex:
            self._reload()
            if not self._current(doc_id, size, mtime_ns):
                self._sync({doc_id: (size, mtime_ns)}, complete=False, progress=False)
            return self.entries[doc_id]

    def _sync(self, files: dict[str, tuple[int, int]], *, complete: bool, progress: bool,
              todo: list[str] | None = None) -> None:
        todo = self._todo(files) if todo is None else todo
        judged: dict[str, Entry] = {}  # what needs no writing: UTF-8 text in place, images
        rest: list[str] = []
        for doc_id in todo:
            entry = self._judge_in_place(doc_id, *files[doc_id])
            if entry is None:
                rest.append(doc_id)
            else:
                judged[doc_id] = entry
        for d in judged:
            if d in self.entries and self.entries[d].status == "converted":
                self._remove_text(d)  # converted before, UTF-8 (or an image) now: grep must not find the old text
        self.entries.update(judged)
        gone = [d for d in self.entries if d not in files] if complete else []
        if not rest and not self._persisting():  # nothing to store, and no index or store here yet
            for d in gone:
                del self.entries[d]
            return
        if not self._writable():
            for d in gone:
                del self.entries[d]
            for d in rest:
                self.entries[d] = Entry(status="unreadable", reason="no state folder", format=format_of(d),
                                        size=files[d][0], mtime_ns=files[d][1],
                                        message=f"its text could not be stored: {self.folder} is not writable "
                                        "(pass --state-dir)")
            return
        from sleuth.loaders.worker import Converter
        from sleuth.progress import progress_bar
        from sleuth.retrieval.index_store import build_lock

        with build_lock(self.folder):
            self._reload()  # another process may have done some of the work while this one waited
            self.entries.update(judged)
            for d in [d for d in self.entries if d not in files] if complete else []:
                del self.entries[d]
                self._remove_text(d)
            rest = [d for d in rest if not self._current(d, *files[d])]
            if rest:
                with Converter(self.caps) as conv, progress_bar(len(rest), "reading documents", progress) as bar:
                    for doc_id in rest:
                        self.entries[doc_id] = self._judge(doc_id, *files[doc_id], conv)
                        bar.advance(1)
            self._save()

    def _persisting(self) -> bool:
        """Whether the entries are kept on disk: the store exists, or the state folder holds an index."""
        if self.folder.is_dir():
            return True
        try:
            return any(not p.name.startswith(".") for p in self.state_dir.iterdir())
        except OSError:
            return False

    def _writable(self) -> bool:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            return False
        return os.access(self.folder, os.W_OK)

    def _judge_in_place(self, doc_id: str, size: int, mtime_ns: int) -> Entry | None:
        """The entry of a file that needs nothing stored (UTF-8 text, an image), or None (it must be converted)."""
        fmt = format_of(doc_id)
        if fmt == "image":
            return Entry(status="unreadable", reason="image", format=fmt, size=size, mtime_ns=mtime_ns,
                         message="an image: no text layer (sleuth does not run OCR)")
        if fmt != "text":
            return None
        path = self.root.joinpath(*PurePosixPath(doc_id).parts)
        try:
            utf8 = utf8_file(path)
        except OSError as e:
            return Entry(status="unreadable", reason="unreadable", size=size, mtime_ns=mtime_ns,
                         message=f"cannot be read ({type(e).__name__}: {e.strerror})")
        if not utf8:
            return None
        meta = {"front_matter": read_front_matter(path)} if is_markdown(doc_id) else {}
        return Entry(status="text", size=size, mtime_ns=mtime_ns, meta=meta)

    def _judge(self, doc_id: str, size: int, mtime_ns: int, conv: Any) -> Entry:
        """Convert a file that is not UTF-8 text; store its text, or say why it cannot be read."""
        fmt = format_of(doc_id)
        path = self.root.joinpath(*PurePosixPath(doc_id).parts)
        base = {"size": size, "mtime_ns": mtime_ns, "format": fmt}
        try:
            converted: Converted = conv.convert(path, fmt) if fmt in CONVERTED else load_text(path, self.caps)
        except UnreadableDocumentError as e:
            self._remove_text(doc_id)
            return Entry(status="unreadable", reason=e.reason, message=e.message, **base)
        except MissingExtraError as e:
            package = e.context.get("package", "")
            module = {"python-docx": "docx", "python-pptx": "pptx"}.get(package, package)
            return Entry(status="unreadable", reason="missing extra", message=f"{e.message} ({e.hint})",
                         meta={"extra": e.context.get("extra"), "package": package, "module": module}, **base)
        except OSError as e:
            return Entry(status="unreadable", reason="unreadable",
                         message=f"cannot be read ({type(e).__name__}: {e.strerror})", **base)
        from sleuth.fsutil import atomic_write_text

        atomic_write_text(self.text_path(doc_id), converted.text)
        meta = dict(converted.meta)
        if is_markdown(doc_id):  # a Markdown file in another encoding: its front matter, from the decoded text
            meta["front_matter"] = front_matter(converted.text)
        return Entry(status="converted", meta=meta, notes=converted.notes,
                     **{**base, "format": converted.loader})

    def _remove_text(self, doc_id: str) -> None:
        path = self.text_path(doc_id)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        except OSError:
            return
        parent = path.parent  # drop folders left empty, up to the store's root
        while parent != self.docs and parent.is_relative_to(self.docs):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
