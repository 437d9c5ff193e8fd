"""A corpus is a folder of UTF-8 text files; a document's id is its path relative to the root.

Hidden files and folders (names starting with ``.``) are not documents: ``root/.sleuth/`` holds sleuth's indexes
and the import manifest. Symlinks are not listed (ripgrep does not follow them either), and reading one that
points outside the root is refused.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path, PurePosixPath

from sleuth import ids
from sleuth.errors import (
    BinaryDocumentError,
    CorpusNotFoundError,
    DocumentNotFoundError,
    PathOutsideCorpusError,
)
from sleuth.records import Document

STATE_DIRNAME = ".sleuth"
MANIFEST = "corpus.json"
_BINARY_SNIFF = 8192


@lru_cache(maxsize=256)
def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Translate a gitignore-style glob (``*``, ``?``, ``[..]``, ``**``) to a regex over posix doc ids.

    As in ripgrep, a glob without ``/`` matches the file name at any depth.
    """
    if "/" not in pattern.rstrip("/"):
        pattern = "**/" + pattern
    i, out = 0, []
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z")


class Corpus:
    """A folder of documents. Cheap to construct; listing walks the folder each call."""

    def __init__(self, root: str | Path, *, state_dir: str | Path | None = None) -> None:
        path = Path(root).expanduser()
        if not path.exists():
            raise CorpusNotFoundError(f"corpus folder not found: {path}")
        if not path.is_dir():
            raise CorpusNotFoundError(f"corpus path is not a folder: {path}")
        self.root = path.resolve()
        self._state_dir = Path(state_dir).resolve() if state_dir else self.root / STATE_DIRNAME
        self.manifest = self._load_manifest()

    def __repr__(self) -> str:
        return f"Corpus({str(self.root)!r})"

    # -- listing ------------------------------------------------------------------------------------------------
    def _walk(self) -> Iterator[str]:
        stack = [self.root]
        while stack:
            d = stack.pop()
            try:
                entries = list(os.scandir(d))
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                if e.is_symlink():
                    continue
                if e.is_dir(follow_symlinks=False):
                    stack.append(Path(e.path))
                elif e.is_file(follow_symlinks=False):
                    yield Path(e.path).relative_to(self.root).as_posix()

    def doc_ids(self, glob: str | None = None) -> list[str]:
        ids_ = sorted(self._walk())
        if glob:
            rx = glob_to_regex(glob)
            ids_ = [d for d in ids_ if rx.match(d)]
        return ids_

    def __len__(self) -> int:
        return sum(1 for _ in self._walk())

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
            raise PathOutsideCorpusError(f"doc id contains a NUL byte: {doc_id!r}")
        pure = PurePosixPath(doc_id.replace("\\", "/"))
        if pure.is_absolute() or doc_id.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", doc_id):
            raise PathOutsideCorpusError(f"doc id is an absolute path: {doc_id!r}")
        if any(part == ".." for part in pure.parts):
            raise PathOutsideCorpusError(f"doc id leaves the corpus with '..': {doc_id!r}")
        if any(part.startswith(".") for part in pure.parts if part != "."):
            raise DocumentNotFoundError(f"hidden files are not documents: {doc_id!r}")
        candidate = self.root.joinpath(*pure.parts)
        try:
            resolved = candidate.resolve(strict=False)
        except (OSError, RuntimeError) as e:  # symlink loops
            raise PathOutsideCorpusError(f"cannot resolve {doc_id!r}: {e}") from e
        if resolved != self.root and not resolved.is_relative_to(self.root):
            raise PathOutsideCorpusError(f"{doc_id!r} points outside the corpus (symlink to {resolved})")
        if not resolved.is_file():
            raise DocumentNotFoundError(f"no document {doc_id!r} in {self.root}{self._suggest(doc_id)}")
        return resolved

    def _suggest(self, doc_id: str) -> str:
        all_ids = self.doc_ids()
        if len(all_ids) > 50_000:
            return ""
        close = difflib.get_close_matches(doc_id, all_ids, n=3, cutoff=0.6)
        return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""

    def read_bytes(self, doc_id: str) -> bytes:
        return self.path_of(doc_id).read_bytes()

    def read_text(self, doc_id: str) -> str:
        data = self.read_bytes(doc_id)
        if b"\x00" in data[:_BINARY_SNIFF]:
            raise BinaryDocumentError(f"{doc_id!r} is a binary file")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise BinaryDocumentError(f"{doc_id!r} is not valid UTF-8 (byte {e.start})") from e

    def iter_documents(self, *, skip_unreadable: bool = True) -> Iterator[Document]:
        """Every readable document. Binary / non-UTF-8 files are skipped (or raised, when asked)."""
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
    def fingerprint(self) -> str:
        """Changes whenever a document is added, removed, or modified (size or mtime)."""
        h = hashlib.sha256()
        for doc_id in self.doc_ids():
            st = (self.root / doc_id).stat()
            h.update(f"{doc_id}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:32]

    @property
    def state_dir(self) -> Path:
        self._state_dir.mkdir(parents=True, exist_ok=True)
        return self._state_dir

    def _load_manifest(self) -> dict:
        path = self._state_dir / MANIFEST
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
