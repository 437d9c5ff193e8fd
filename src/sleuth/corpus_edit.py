"""Documents added from code: :meth:`Corpus.add <sleuth.corpus.Corpus.add>` and :meth:`Corpus.remove
<sleuth.corpus.Corpus.remove>`, for people who do not keep a folder of files.

Where an added document goes. A corpus is a folder and every tool (grep through ripgrep, read, ls, every index)
reads the folder, so an added document is a file in it, written exactly as ``sleuth corpus import`` writes one:

* In a folder sleuth made (``sleuth corpus import``, :meth:`Corpus.create <sleuth.corpus.Corpus.create>`; its
  ``.sleuth/corpus.json`` says so) the id is any non-empty string (a BEIR ``_id``, a title, a URL), stored as
  ``<encoded id>.txt`` (:mod:`sleuth.ids`, the importer's reversible encoding) holding ``title\\n\\ntext`` when the
  metadata has a ``title`` (as the importer writes a titled record), else the text. The doc id is that path
  (``Corpus.original_id`` maps it back); ``add`` returns it.
* A user's own folder is never written into unless asked: ``add`` there raises :class:`ReadOnlyCorpusError`
  unless the corpus was opened with ``Corpus(path, writable=True)``. Then the id is the relative path of the new
  file (``notes/idea.md``, the corpus's doc id rule) and the file is written there.

The metadata goes to ``metadata.jsonl`` beside the corpus manifest (:mod:`sleuth.metadata`), never into the text.
Validation is the importer's: an empty id or an empty text is an error (:class:`EmptyDocumentError`), an id that is
a document already is :class:`DocumentExistsError` unless ``replace=True``, metadata field names and values are
checked (:func:`sleuth.metadata.clean_fields`, strict). Files are written atomically; a replaced file whose size
and mtime would be unchanged gets its mtime moved on, so the next freshness check (:mod:`sleuth.retrieval.fresh`:
``search``, ``df`` and ``Corpus.search`` before each call) sees the change and updates the BM25 index
incrementally: search, df, grep and read see an added document at once and never a removed one.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from sleuth import ids
from sleuth.errors import (
    ConfigError,
    DocumentExistsError,
    DocumentNotFoundError,
    EmptyDocumentError,
    PathOutsideCorpusError,
    ReadOnlyCorpusError,
    ToolArgumentError,
    shown,
)
from sleuth.metadata import FILE_FIELDS, clean_fields

if TYPE_CHECKING:
    from sleuth.corpus import Corpus

MAX_TEXT_CHARS = 50_000_000


def create_folder(root: Path) -> None:
    """Make ``root`` a new sleuth corpus (an empty folder with its manifest); an existing one is left as it is."""
    from sleuth.corpus import MANIFEST, STATE_DIRNAME
    from sleuth.fsutil import atomic_write_text

    manifest = root / STATE_DIRNAME / MANIFEST
    if manifest.is_file():
        return
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ConfigError(f"{root} exists and is not an empty folder or a sleuth corpus",
                          hint="choose a new folder, or open your folder with Corpus(PATH, writable=True)")
    (root / STATE_DIRNAME).mkdir(parents=True, exist_ok=True)
    data = {"id_encoding": "v1", "titles": False, "format": "api", "documents": 0,
            "imported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(manifest, json.dumps(data, indent=2))


def _check_writable(corpus: Corpus, what: str) -> None:
    if not (corpus.owned or corpus.writable):
        raise ReadOnlyCorpusError(f"{what}: {corpus.root} is your own folder, which sleuth does not write into")


def _file_id(corpus: Corpus, doc_id: str) -> str:
    """The doc id (relative file path) ``doc_id`` is stored under."""
    from sleuth.corpus import MAX_DOC_ID_CHARS, hidden_part, is_document_id
    from sleuth.loaders import format_of

    if not isinstance(doc_id, str) or not doc_id.strip():
        raise EmptyDocumentError("empty doc id", hint="pass a non-empty id")
    if corpus.owned:
        rel = ids.encode(doc_id)
    else:
        rel = doc_id
        pure = PurePosixPath(doc_id)
        if pure.is_absolute() or doc_id.startswith(("/", "\\")) or ".." in pure.parts or "\\" in doc_id:
            raise PathOutsideCorpusError(f"doc id must be a relative path inside the corpus: {shown(doc_id)}")
        if hidden_part(doc_id) or not is_document_id(doc_id) or doc_id.endswith("/"):
            raise ToolArgumentError(f"not a valid doc id for a file: {shown(doc_id)}",
                                    hint="a relative path of visible names, e.g. notes/idea.md")
        if format_of(doc_id) != "text":
            raise ToolArgumentError(f"{shown(doc_id)} names a {format_of(doc_id).upper()} file; add writes text",
                                    hint="use a .txt or .md name")
    if len(rel) > MAX_DOC_ID_CHARS:
        raise ToolArgumentError(f"doc id is too long ({len(rel)} characters as a path; at most {MAX_DOC_ID_CHARS})")
    return rel


def add_document(corpus: Corpus, doc_id: str, text: str, metadata: Mapping[str, Any] | None = None, *,
                 replace: bool = False) -> str:
    """See the module docstring; returns the doc id the document has in the corpus."""
    _check_writable(corpus, "cannot add a document")
    if not isinstance(text, str):
        raise ToolArgumentError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise EmptyDocumentError(f"the text of {shown(doc_id)} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ToolArgumentError(f"text of {len(text)} characters (at most {MAX_TEXT_CHARS})")
    if "\x00" in text:
        raise ToolArgumentError("text contains a NUL byte", hint="documents are text")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise ToolArgumentError(f"metadata must be a mapping, got {type(metadata).__name__}")
    fields = clean_fields(metadata or {}, strict=True)
    reserved = [f for f in FILE_FIELDS if f in fields]
    if reserved:
        raise ToolArgumentError(f"metadata field {reserved[0]!r} is the file's own",
                                hint=f"{', '.join(FILE_FIELDS)} come from the file; use another name")
    rel = _file_id(corpus, doc_id)
    target = corpus.root.joinpath(*PurePosixPath(rel).parts)
    before: tuple[int, int] | None = None
    if target.exists() or target.is_symlink():
        if not replace:
            raise DocumentExistsError(f"{shown(doc_id)} is a document of the corpus already ({rel})")
        if not target.is_file() or target.is_symlink():
            raise DocumentExistsError(f"{shown(rel)} exists and is not a regular file", hint="choose another id")
        st = target.stat()
        before = (st.st_size, st.st_mtime_ns)
    title = fields.get("title")
    body = f"{title}\n\n{text}" if corpus.owned and isinstance(title, str) and title.strip() else text
    from sleuth.fsutil import atomic_write_text

    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(target, body if body.endswith("\n") else body + "\n")
    if before is not None:
        st = target.stat()
        if (st.st_size, st.st_mtime_ns) == before:  # the same size within one clock tick: make the change visible
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000))
    stored = corpus.records.load()
    if fields or rel in stored:
        corpus.records.append(rel, fields)
    return rel


def remove_document(corpus: Corpus, doc_id: str) -> str:
    """Delete the document ``doc_id`` (the id given to :func:`add_document`, or its doc id in the corpus)."""
    _check_writable(corpus, "cannot remove a document")
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise DocumentNotFoundError("empty doc id")
    candidates = [doc_id]
    if corpus.owned:
        candidates.insert(0, ids.encode(doc_id))
    for rel in candidates:
        try:
            path = corpus.path_of(rel)
        except (DocumentNotFoundError, PathOutsideCorpusError):
            continue
        path.unlink()
        parent = path.parent  # folders of a long encoded id, left empty
        while parent != corpus.root and parent.is_relative_to(corpus.root):
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        if rel in corpus.records.load():
            corpus.records.append(rel, None)
        return rel
    corpus.path_of(candidates[0])  # raises DocumentNotFoundError with the close matches
    raise DocumentNotFoundError(f"no document {shown(doc_id)} in the corpus")
