"""PDF to text with pypdf (BSD-3-Clause, pure Python, 5 MB installed; the ``docs`` extra).

PyMuPDF extracts the same words about ten times faster (``docs/results/loaders.md``) but is AGPL-3.0 and 295 MB
with its dependencies, so sleuth uses pypdf. Each page's text follows a marker line ``[page N]`` (1-based), so
``read`` shows where a page starts and grep's line numbers agree with it. Runs in the converter process
(:mod:`sleuth.loaders.worker`), which bounds its time and memory; pypdf bounds each decompressed stream
(75 MB by default: a PDF bomb stops there) and sleuth stops after :attr:`LoaderCaps.max_pages` pages or
:attr:`LoaderCaps.max_chars` characters (noted).
"""

from __future__ import annotations

from typing import Any

from sleuth.errors import MissingExtraError, UnreadableDocumentError
from sleuth.loaders.caps import Converted, LoaderCaps


def page_marker(n: int) -> str:
    return f"[page {n}]"


def _meta(reader: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    try:
        info = reader.metadata
    except Exception:  # a damaged info dictionary: the text is still worth having
        return out
    if info:
        for key, name in (("/Title", "title"), ("/Author", "author")):
            value = info.get(key)
            if isinstance(value, str) and value.strip():
                out[name] = value.strip()[:500]
    return out


def load_pdf(path: str, caps: LoaderCaps) -> Converted:
    try:
        from pypdf import PdfReader
        from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError
    except ImportError:
        raise MissingExtraError("docs", "pypdf", "reading PDF files") from None
    try:
        reader = PdfReader(path, strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")  # many "encrypted" PDFs only restrict printing: empty user password
            except DependencyError:
                raise UnreadableDocumentError(
                    "encrypted with AES, which needs the 'cryptography' package to decrypt",
                    reason="encrypted", hint="pip install cryptography",
                ) from None
            if not opened:
                raise UnreadableDocumentError("encrypted: it needs a password to open", reason="encrypted")
        n_pages = len(reader.pages)
        parts: list[str] = []
        chars = 0
        notes: list[str] = []
        text_chars = 0
        for i in range(min(n_pages, caps.max_pages)):
            text = (reader.pages[i].extract_text() or "").strip("\n")
            text_chars += len(text.strip())
            block = f"{page_marker(i + 1)}\n{text}\n" if text else f"{page_marker(i + 1)}\n"
            if chars + len(block) > caps.max_chars:
                parts.append(block[: max(0, caps.max_chars - chars)])
                notes.append(f"text cut at {caps.max_chars} characters (page {i + 1} of {n_pages})")
                break
            parts.append(block)
            chars += len(block)
        else:
            if n_pages > caps.max_pages:
                notes.append(f"only the first {caps.max_pages} of {n_pages} pages were read (the page cap)")
    except UnreadableDocumentError:
        raise
    except FileNotDecryptedError:
        raise UnreadableDocumentError("encrypted: it needs a password to open", reason="encrypted") from None
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError) as e:
        raise UnreadableDocumentError(f"not a readable PDF ({type(e).__name__}: {str(e)[:200]})",
                                      reason="damaged") from None
    except Exception as e:  # pypdf's LimitReachedError (a decompression bomb) and other faults of the file
        name = type(e).__name__
        if "Limit" in name:
            raise UnreadableDocumentError(f"a stream decompresses past pypdf's limit ({str(e)[:200]})",
                                          reason="too large") from None
        raise UnreadableDocumentError(f"not a readable PDF ({name}: {str(e)[:200]})", reason="damaged") from None
    if n_pages == 0:
        raise UnreadableDocumentError("a PDF without pages", reason="no text")
    if text_chars == 0:
        raise UnreadableDocumentError(
            f"no text layer in its {n_pages} pages (a scan or images only; sleuth does not run OCR)",
            reason="no text",
        )
    return Converted(text="".join(parts), loader="pdf", meta={"pages": n_pages, **_meta(reader)}, notes=notes)
