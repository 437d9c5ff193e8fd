"""Word (.docx) and PowerPoint (.pptx) files to text, with python-docx and python-pptx (MIT; the ``docs`` extra).

DOCX: paragraphs and tables in document order (a table row is one line, its cells separated by tabs; a merged
cell is written once). PPTX: each slide after a marker line ``[slide N]``: the text of its shapes (groups
included) in the slide's order, its tables, then its speaker notes. Title and author come from the core
properties. Password-protected Office files are not zip packages (they are OLE containers): they are reported
as encrypted, as are the old binary ``.doc``/``.ppt`` formats' OLE files, which sleuth does not read.
"""

from __future__ import annotations

import zipfile
from typing import Any

from sleuth.errors import MissingExtraError, UnreadableDocumentError
from sleuth.loaders.caps import Converted, LoaderCaps

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _check_package(path: str, kind: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head == OLE_MAGIC:
        raise UnreadableDocumentError(
            f"a password-protected (or old binary) Office file, not a {kind} package", reason="encrypted"
        )
    if not zipfile.is_zipfile(path):
        raise UnreadableDocumentError(f"not a {kind} file (not a zip package)", reason="damaged")


def _props(core: Any) -> dict[str, Any]:
    out = {}
    for name in ("title", "author"):
        value = getattr(core, name, None)
        if isinstance(value, str) and value.strip():
            out[name] = value.strip()[:500]
    return out


class _Out:
    def __init__(self, caps: LoaderCaps) -> None:
        self.parts: list[str] = []
        self.chars = 0
        self.caps = caps
        self.full = False

    def add(self, line: str) -> None:
        if self.full:
            return
        if self.chars + len(line) + 1 > self.caps.max_chars:
            self.parts.append(line[: max(0, self.caps.max_chars - self.chars)])
            self.full = True
            return
        self.parts.append(line)
        self.chars += len(line) + 1

    def text(self) -> str:
        return "\n".join(self.parts).strip("\n") + "\n"


def _rows(table: Any) -> list[str]:
    lines = []
    for row in table.rows:
        cells, seen = [], set()
        for cell in row.cells:
            key = id(cell._tc)  # a merged cell appears once per grid column it spans
            if key in seen:
                continue
            seen.add(key)
            cells.append(" ".join(cell.text.split()))
        lines.append("\t".join(cells))
    return lines


def _damaged(kind: str, e: Exception) -> UnreadableDocumentError:
    return UnreadableDocumentError(f"not a readable {kind} ({type(e).__name__}: {str(e)[:200]})", reason="damaged")


def load_docx(path: str, caps: LoaderCaps) -> Converted:
    try:
        import docx
        from docx.table import Table
    except ImportError:
        raise MissingExtraError("docs", "python-docx", "reading DOCX files") from None
    _check_package(path, "DOCX")
    try:
        document = docx.Document(path)
        out = _Out(caps)
        for block in document.iter_inner_content():
            if isinstance(block, Table):
                for line in _rows(block):
                    out.add(line)
            else:
                out.add(block.text)
        meta = _props(document.core_properties)
    except Exception as e:  # zip, XML and python-docx's own errors (PackageNotFoundError, lxml's XMLSyntaxError)
        raise _damaged("DOCX", e) from None
    text = out.text()
    if not text.strip():
        raise UnreadableDocumentError("a DOCX without text", reason="no text")
    notes = [f"text cut at {caps.max_chars} characters"] if out.full else []
    return Converted(text=text, loader="docx", meta=meta, notes=notes)


def _shape_lines(shape: Any) -> list[str]:
    lines: list[str] = []
    if getattr(shape, "shape_type", None) == 6 or hasattr(shape, "shapes"):  # a group: its shapes in order
        for sub in getattr(shape, "shapes", []):
            lines += _shape_lines(sub)
        return lines
    if getattr(shape, "has_text_frame", False) and shape.has_text_frame:
        lines += shape.text_frame.text.split("\n")
    if getattr(shape, "has_table", False) and shape.has_table:
        for row in shape.table.rows:
            lines.append("\t".join(" ".join(c.text.split()) for c in row.cells))
    return lines


def load_pptx(path: str, caps: LoaderCaps) -> Converted:
    try:
        import pptx
    except ImportError:
        raise MissingExtraError("docs", "python-pptx", "reading PPTX files") from None
    _check_package(path, "PPTX")
    try:
        deck = pptx.Presentation(path)
        out = _Out(caps)
        slides = 0
        text_lines = 0
        for i, slide in enumerate(deck.slides, 1):
            if i > caps.max_pages:
                break
            slides = i
            out.add(f"[slide {i}]")
            for shape in slide.shapes:
                for line in _shape_lines(shape):
                    out.add(line)
                    text_lines += bool(line.strip())
            if slide.has_notes_slide:
                notes_text = slide.notes_slide.notes_text_frame.text if slide.notes_slide.notes_text_frame else ""
                if notes_text.strip():
                    out.add("Notes: " + notes_text)
                    text_lines += 1
            out.add("")
        total = len(deck.slides)
        meta = {"slides": total, **_props(deck.core_properties)}
    except Exception as e:  # zip, XML and python-pptx's own errors
        raise _damaged("PPTX", e) from None
    if not text_lines:
        raise UnreadableDocumentError(f"no text on its {total} slides", reason="no text")
    notes = []
    if out.full:
        notes.append(f"text cut at {caps.max_chars} characters")
    if total > slides and not out.full:
        notes.append(f"only the first {slides} of {total} slides were read (the page cap)")
    return Converted(text=out.text(), loader="pptx", meta=meta, notes=notes)
