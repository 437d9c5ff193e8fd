"""Turning the files of a corpus into text: which format a file is, and the loader that reads it.

* ``.pdf`` (pypdf), ``.docx`` (python-docx), ``.pptx`` (python-pptx): the ``docs`` extra; ``.html``/``.htm``/
  ``.xhtml`` (the standard library's parser, :mod:`sleuth.loaders.html`). These run in the converter process
  (:mod:`sleuth.loaders.worker`), bounded by :class:`~sleuth.loaders.caps.LoaderCaps`.
* Images (``.png``, ``.jpg``, ...) are not documents: no text layer, and sleuth does not run OCR.
* Everything else is text: UTF-8 is read in place; any other encoding is detected (:mod:`sleuth.loaders.text`)
  and converted. Markdown is text (read as written).

:mod:`sleuth.loaders.store` keeps the converted text beside the indexes and decides, per file, what it is.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path, PurePosixPath

from sleuth.errors import UnreadableDocumentError
from sleuth.loaders.caps import Converted, LoaderCaps

__all__ = ["FORMATS", "Converted", "LoaderCaps", "format_of", "load_html", "load_text", "utf8_file"]

FORMATS: dict[str, str] = {
    ".pdf": "pdf", ".docx": "docx", ".pptx": "pptx", ".html": "html", ".htm": "html", ".xhtml": "html",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff", ".webp", ".heic", ".ico"), "image"),
}
CONVERTED = frozenset({"pdf", "docx", "pptx", "html"})  # formats read by the converter process
_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})""", re.IGNORECASE)
_CHUNK = 1 << 20


def format_of(doc_id: str) -> str:
    """``pdf``, ``docx``, ``pptx``, ``html``, ``image`` or ``text``, from the file name's extension."""
    return FORMATS.get(PurePosixPath(doc_id).suffix.lower(), "text")


def utf8_file(path: Path) -> bool:
    """Whether the whole file is UTF-8 text without NUL bytes or a byte-order mark (then it is read in place)."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    with open(path, "rb") as fh:
        first = True
        while chunk := fh.read(_CHUNK):
            if b"\x00" in chunk or (first and chunk.startswith(codecs.BOM_UTF8)):
                return False
            first = False
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return False
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read_capped(path: Path, caps: LoaderCaps, what: str) -> bytes:
    size = path.stat().st_size
    if size > caps.max_file_bytes:
        raise UnreadableDocumentError(
            f"{size / 2**20:.0f} MiB, over the {caps.max_file_bytes / 2**20:.0f} MiB cap on converted {what} files",
            reason="too large",
        )
    return path.read_bytes()


def _cut(text: str, caps: LoaderCaps) -> tuple[str, list[str]]:
    if len(text) <= caps.max_chars:
        return text, []
    return text[: caps.max_chars], [f"text cut at {caps.max_chars} characters"]


def load_text(path: Path, caps: LoaderCaps) -> Converted:
    """A text file that is not plain UTF-8: its encoding detected (:func:`sleuth.loaders.text.decode`)."""
    from sleuth.loaders.text import decode

    decoded = decode(_read_capped(path, caps, "text"))
    text, notes = _cut(decoded.text, caps)
    return Converted(text=text, loader="text", meta={"encoding": decoded.encoding}, notes=notes)


def load_html(path: str | Path, caps: LoaderCaps) -> Converted:
    from sleuth.loaders.html import html_document
    from sleuth.loaders.text import decode

    data = _read_capped(Path(path), caps, "HTML")
    declared = _CHARSET.search(data[:4096])
    decoded = decode(data, declared=declared[1].decode("ascii") if declared else None)
    full, title = html_document(decoded.text)
    text, notes = _cut(full, caps)
    if not text.strip():
        raise UnreadableDocumentError("an HTML page without visible text", reason="no text")
    meta = {"encoding": decoded.encoding, **({"title": title} if title else {})}
    return Converted(text=text, loader="html", meta=meta, notes=notes)
