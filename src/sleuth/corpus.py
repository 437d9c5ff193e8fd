"""A corpus is a folder of documents (text in any encoding, PDF, DOCX, PPTX, HTML); a document's id is its path
relative to the root.

What each file is comes from :class:`sleuth.loaders.store.DocumentStore`: UTF-8 text is read in place; the text
of every other readable file is converted once and kept in ``STATE/text/docs/<doc id>`` (``STATE`` is
``root/.sleuth`` or ``state_dir``; never the user's folder), so grep, read and every index see that one text; a
file that cannot be read (an encrypted PDF, a scan, an image, an undetectable encoding) is not a document and is
listed by :meth:`Corpus.unreadable` with the reason. Listing walks the folder each call (a scandir with a stat per
file) and judges only files that are new or changed since the last call.

What a corpus contains is one rule, :func:`is_document_id`, applied by the listing (and so by ``ls`` and every
index), by ``read`` (:meth:`Corpus.path_of`), by ``grep`` (the paths it searches and every path it reports) and so
by every plug (MCP, OpenAI, LangChain): hidden files and folders (a name starting with ``.``: ``.env``, ``.git/``,
``root/.sleuth/`` with sleuth's indexes and the import manifest) are never documents, and neither is a path that is
not valid UTF-8 or is longer than :data:`MAX_DOC_ID_CHARS`. Symlinks are not listed (ripgrep does not follow them
either), and reading one that points outside the root is refused without saying where it points.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sleuth import ids
from sleuth.errors import (
    BinaryDocumentError,
    CorpusNotFoundError,
    DocumentNotFoundError,
    MissingExtraError,
    PathOutsideCorpusError,
    UnreadableDocumentError,
    shown,
)
from sleuth.globs import PathGlob, compile_glob
from sleuth.records import Document

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sleuth.filters import DocFilter, Where
    from sleuth.loaders.caps import LoaderCaps
    from sleuth.loaders.store import DocumentStore, Entry
    from sleuth.records import Hit

STATE_DIRNAME = ".sleuth"
MANIFEST = "corpus.json"
MAX_DOC_ID_CHARS = 4096


def hidden_part(doc_id: str) -> bool:
    """True when a component of the posix path ``doc_id`` is hidden (starts with ``.``; ``.`` itself is not)."""
    return any(part.startswith(".") and part != "." for part in doc_id.replace("\\", "/").split("/"))


def is_document_id(doc_id: str) -> bool:
    """The corpus rule: whether a relative posix path can be a document (visibility only, not existence)."""
    if not doc_id or len(doc_id) > MAX_DOC_ID_CHARS or "\x00" in doc_id or hidden_part(doc_id):
        return False
    try:
        doc_id.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: a file name that is not UTF-8, or a bad argument
        return False
    return True


def glob_to_regex(pattern: str) -> PathGlob:
    """Deprecated name kept for callers: the compiled glob (``.match(doc_id)``), see :mod:`sleuth.globs`."""
    return compile_glob(pattern)


class Corpus:
    """A folder of documents. Cheap to construct; listing walks the folder each call."""

    def __init__(self, root: str | Path, *, state_dir: str | Path | None = None, caps: LoaderCaps | None = None,
                 writable: bool = False) -> None:
        """``writable``: let :meth:`add` and :meth:`remove` write and delete files in this folder even though
        sleuth did not make it (a folder made by ``sleuth corpus import`` or :meth:`create` is always writable)."""
        from sleuth.loaders.store import DocumentStore
        from sleuth.metadata import RECORDS, MetadataRecords

        path = Path(root).expanduser()
        if not path.exists():
            raise CorpusNotFoundError(f"corpus folder not found: {path}")
        if not path.is_dir():
            raise CorpusNotFoundError(f"corpus path is not a folder: {path}")
        self.root = path.resolve()
        self._state_dir = Path(state_dir).resolve() if state_dir else self.root / STATE_DIRNAME
        self.manifest = self._load_manifest()
        self.writable = writable
        self.store: DocumentStore = DocumentStore(self.root, self._state_dir, caps)
        self.records = MetadataRecords(self.manifest_dir / RECORDS)
        self._searchers: dict[str, Any] = {}  # method -> FreshRetrievers of Corpus.search (this object's own)
        self._meta_cache: tuple[Any, dict[str, dict[str, Any]], set[str], dict[str, Any]] | None = None

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r})"

    # -- listing ------------------------------------------------------------------------------------------------
    def _walk(self) -> Iterator[tuple[str, int, int]]:
        """(doc id, size, mtime_ns) of every visible regular file."""
        stack = [(str(self.root), "")]  # (folder, its doc id prefix): no pathlib per file (5k files: 20 ms)
        while stack:
            d, prefix = stack.pop()
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                name = e.name
                if name.startswith(".") or not (name.isascii() or is_document_id(name)):
                    continue
                if e.is_symlink():
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append((e.path, f"{prefix}{name}/"))
                elif e.is_file(follow_symlinks=False):
                    try:
                        st = e.stat(follow_symlinks=False)
                    except OSError:  # removed while listing
                        continue
                    doc_id = prefix + name
                    if len(doc_id) <= MAX_DOC_ID_CHARS:
                        yield doc_id, st.st_size, st.st_mtime_ns

    def files(self) -> dict[str, tuple[int, int]]:
        """Every visible file (documents and unreadable files): doc id -> (size, mtime_ns). No file is read."""
        return {d: (size, mtime) for d, size, mtime in self._walk()}

    def entries(self, *, progress: bool = False) -> dict[str, Entry]:
        """What every file is (:class:`~sleuth.loaders.store.Entry`), judging new and changed files now."""
        return self.store.sync(self.files(), progress=progress)

    def doc_ids(self, glob: str | None = None) -> list[str]:
        """The documents: every file with text (UTF-8 or converted), sorted; never an unreadable file."""
        ids_ = sorted(d for d, e in self.entries().items() if e.readable)
        if glob:
            g = compile_glob(glob)
            ids_ = [d for d in ids_ if g.match(d)]
        return ids_

    def unreadable(self, glob: str | None = None) -> dict[str, Entry]:
        """The files that are not documents, with why (``entry.reason``, ``entry.message``), sorted by doc id."""
        g = compile_glob(glob) if glob else None
        return {d: e for d, e in sorted(self.entries().items())
                if not e.readable and (g is None or g.match(d))}

    def converted_ids(self) -> list[str]:
        """Documents whose text is the converted one in the store (not the file itself), sorted."""
        return sorted(d for d, e in self.entries().items() if e.status == "converted")

    def __len__(self) -> int:
        return len(self.doc_ids())

    def __contains__(self, doc_id: object) -> bool:
        if not isinstance(doc_id, str):
            return False
        try:
            self.path_of(doc_id)
        except (DocumentNotFoundError, PathOutsideCorpusError):
            return False
        return True

    # -- reading ------------------------------------------------------------------------------------------------
    def path_of(self, doc_id: str) -> Path:
        """The file of ``doc_id``, guaranteed to lie inside the root (symlinks resolved)."""
        if not isinstance(doc_id, str) or not doc_id.strip():
            raise DocumentNotFoundError("empty doc id")
        if "\x00" in doc_id:
            raise PathOutsideCorpusError(f"doc id contains a NUL byte: {shown(doc_id)}")
        if len(doc_id) > MAX_DOC_ID_CHARS:
            raise DocumentNotFoundError(f"doc id is {len(doc_id)} characters long; no document has an id that long")
        pure = PurePosixPath(doc_id.replace("\\", "/"))
        if pure.is_absolute() or doc_id.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", doc_id):
            raise PathOutsideCorpusError(f"doc id is an absolute path: {shown(doc_id)}")
        if any(part == ".." for part in pure.parts):
            raise PathOutsideCorpusError(f"doc id leaves the corpus with '..': {shown(doc_id)}")
        if hidden_part(doc_id):
            raise DocumentNotFoundError(f"hidden files are not documents: {shown(doc_id)}")
        if not is_document_id(doc_id):
            raise DocumentNotFoundError(f"not a valid doc id (doc ids are UTF-8 paths): {shown(doc_id)}")
        candidate = self.root.joinpath(*pure.parts)
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError) as e:  # symlink loops
            raise PathOutsideCorpusError(f"cannot resolve {shown(doc_id)} ({type(e).__name__})") from e
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise PathOutsideCorpusError(f"{shown(doc_id)} points outside the corpus (a symlink)")
        try:
            is_file = resolved.is_file()
        except OSError:  # a component longer than the file system allows, and the like
            is_file = False
        if not is_file:
            raise DocumentNotFoundError(f"no document {shown(doc_id)} in the corpus{self._suggest(doc_id)}")
        return resolved

    def _suggest(self, doc_id: str) -> str:
        all_ids = self.doc_ids()
        if len(all_ids) > 50_000:
            return ""
        close = difflib.get_close_matches(doc_id, all_ids, n=3, cutoff=0.6)
        return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""

    def read_bytes(self, doc_id: str) -> bytes:
        return self.path_of(doc_id).read_bytes()

    def entry(self, doc_id: str) -> Entry:
        """What the file ``doc_id`` is, judged now if it is new or changed (see :meth:`entries`)."""
        path = self.path_of(doc_id)
        try:
            st = path.stat()
        except OSError as e:
            raise DocumentNotFoundError(f"cannot open {shown(doc_id)} ({type(e).__name__})") from e
        return self.store.entry(path.relative_to(self.root).as_posix(), st.st_size,
                                st.st_mtime_ns)

    def text_path(self, doc_id: str) -> Path:
        """The file holding the text of ``doc_id``: the file itself (UTF-8 text) or its converted text in the
        store; :class:`UnreadableDocumentError` (or :class:`MissingExtraError`) for a file that is not a document."""
        entry = self.entry(doc_id)
        if entry.status == "text":
            return self.path_of(doc_id)
        if entry.status == "converted":
            return self.store.text_path(self.path_of(doc_id).relative_to(self.root).as_posix())
        if entry.reason == "missing extra":
            raise MissingExtraError(entry.meta.get("extra") or "docs", entry.meta.get("package") or "?",
                                    f"reading {shown(doc_id)}")
        raise UnreadableDocumentError(f"{shown(doc_id)} is not a document: {entry.message}", reason=entry.reason)

    def read_text(self, doc_id: str) -> str:
        """The document's text (UTF-8, or the converted text of a PDF, DOCX, PPTX, HTML or non-UTF-8 file)."""
        data = self.text_path(doc_id).read_bytes()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:  # the file changed to non-UTF-8 between its check and this read
            raise BinaryDocumentError(f"{doc_id!r} is not valid UTF-8 (byte {e.start})") from e

    def iter_documents(self, *, skip_unreadable: bool = True) -> Iterator[Document]:
        """Every document. A file that turns unreadable while this runs is skipped (or raised, when asked)."""
        titled = bool(self.manifest.get("titles"))
        for doc_id in self.doc_ids():
            try:
                text = self.read_text(doc_id)
            except BinaryDocumentError:
                if skip_unreadable:
                    continue
                raise
            title = text.split("\n", 1)[0] if titled else ""
            yield Document(id=doc_id, text=text, title=title)

    # -- identity -----------------------------------------------------------------------------------------------
    def fingerprint(self, entries: dict[str, Entry] | None = None) -> str:
        """Changes whenever a document is added, removed, or modified (size or mtime); of ``entries`` when given
        (one listing for the fingerprint and what is built from it)."""
        listing = self.entries() if entries is None else entries
        lines = [f"{d}\0{e.size}\0{e.mtime_ns}\n" for d, e in sorted(listing.items()) if e.readable]
        return hashlib.sha256("".join(lines).encode()).hexdigest()[:32]  # the same digest as line by line

    @property
    def state_dir(self) -> Path:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        return self._state_dir

    @property
    def state_path(self) -> Path:
        """Where the indexes are kept, without creating the folder (``state_dir`` creates it)."""
        return self._state_dir

    @property
    def manifest_dir(self) -> Path:
        """Where the import manifest and ``metadata.jsonl`` are: the state folder, or else the corpus's own
        ``.sleuth`` (where ``sleuth corpus import`` writes them) when it holds the manifest."""
        own = self.root / STATE_DIRNAME
        if not (self._state_dir / MANIFEST).is_file() and (own / MANIFEST).is_file():
            return own
        return self._state_dir

    @property
    def owned(self) -> bool:
        """Whether sleuth made this folder (``sleuth corpus import``, :meth:`create`): doc files are its own."""
        return self.manifest.get("id_encoding") == "v1"

    def _load_manifest(self) -> dict:
        path = self.manifest_dir / MANIFEST
        if not path.is_file():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}

    @property
    def id_encoding(self) -> str | None:
        return self.manifest.get("id_encoding")

    def original_id(self, doc_id: str) -> str:
        """The source id of an imported document (BEIR ``_id``, HotpotQA title); ``doc_id`` otherwise."""
        if self.id_encoding == "v1":
            try:
                return ids.decode(doc_id)
            except ValueError:
                return doc_id
        return doc_id

    def doc_id_for(self, original_id: str) -> str:
        if self.id_encoding == "v1":
            return ids.encode(original_id)
        return original_id

    # -- metadata, filtered search, documents added from code (sleuth.metadata, sleuth.filters, corpus_edit) -------
    def metadata_table(self, entries: dict[str, Entry] | None = None) -> dict[str, dict[str, Any]]:
        """doc id -> metadata record of every document (see :mod:`sleuth.metadata`); shared, do not modify it.
        Built again only when a document or ``metadata.jsonl`` changed (the listing runs each call)."""
        return self._metadata(entries)[0]

    def _metadata(self, entries: dict[str, Entry] | None = None
                  ) -> tuple[dict[str, dict[str, Any]], set[str], dict[str, Any]]:
        """(the table, its fields, the filters resolved on it: filter text -> DocFilter), cached until a document
        or ``metadata.jsonl`` changes."""
        from sleuth import metadata
        from sleuth.filters import known_fields

        entries = self.entries() if entries is None else entries
        stored = self.records.load()
        key = (self.fingerprint(entries), self.records.stamp)
        cached = self._meta_cache
        if cached is not None and cached[0] == key:
            return cached[1], cached[2], cached[3]
        table = metadata.table(entries, stored)
        fields = known_fields(table.values())
        self._meta_cache = (key, table, fields, {})
        return table, fields, self._meta_cache[3]

    def metadata(self, doc_id: str) -> dict[str, Any]:
        """The metadata record of one document."""
        from sleuth import metadata

        entry = self.entry(doc_id)
        if not entry.readable:
            self.text_path(doc_id)  # raises why it is not a document
        return metadata.record_of(doc_id, entry, self.records.load().get(doc_id))

    def fields(self) -> list[str]:
        """Every metadata field some document has, sorted."""
        return sorted(self._metadata()[1])

    def filter(self, where: str | Sequence[str] | Where | DocFilter | None) -> DocFilter | None:
        """``where`` (see :mod:`sleuth.filters`) resolved against the documents' metadata now."""
        from sleuth.filters import resolve

        return resolve(where, self)

    def search(self, query: str, k: int = 10, *, method: str = "bm25", where: Any = None, tracer: Any = None,
               **opts: Any) -> list[Hit]:
        """Ranked search, filtered by ``where`` (the best ``k`` of the matching documents). The indexes are
        checked before each search and updated when the corpus changed (added, removed or edited documents).
        ``opts`` go to :func:`sleuth.retrieval.get_retriever` on the first search with ``method``."""
        from sleuth.retrieval.base import run_filtered
        from sleuth.retrieval.fresh import FreshRetrievers

        fresh = self._searchers.get(method)
        if fresh is None:
            fresh = self._searchers[method] = FreshRetrievers.open(self, [method], **opts)
        retriever = fresh[method]
        return run_filtered(retriever, query, k, where=self.filter(where), tracer=tracer).hits

    @classmethod
    def create(cls, root: str | Path, **kwargs: Any) -> Corpus:
        """A new, empty corpus folder that sleuth owns (for documents added with :meth:`add`); an existing
        sleuth corpus is opened as it is."""
        from sleuth.corpus_edit import create_folder

        create_folder(Path(root).expanduser())
        return cls(root, **kwargs)

    def add(self, doc_id: str, text: str, metadata: Mapping[str, Any] | None = None, *,
            replace: bool = False) -> str:
        """Add a document (see :mod:`sleuth.corpus_edit` for where it is written); returns its doc id."""
        from sleuth.corpus_edit import add_document

        return add_document(self, doc_id, text, metadata, replace=replace)

    def remove(self, doc_id: str) -> str:
        """Remove a document added with :meth:`add` (or any document of a writable corpus); returns its doc id."""
        from sleuth.corpus_edit import remove_document

        return remove_document(self, doc_id)
