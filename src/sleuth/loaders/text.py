"""Text in any common encoding, detected rather than assumed.

Order: a byte-order mark (UTF-8, UTF-16, UTF-32) decides; else strict UTF-8 (the common case, and never wrong on
text that decodes); else an encoding the file declares (HTML's ``<meta charset>``); else ``chardet`` (7.x: a core
dependency, 0BSD, 5 MB, no dependencies of its own) picks it from the first :data:`DETECT_BYTES`. A result
is accepted only when it reads as text: at most 1 in 1000 characters a control character other than tab, line
feed, carriage return and form feed (binary data "decodes" in single-byte encodings too). Otherwise the file is
unreadable: :class:`~sleuth.errors.UnreadableDocumentError` with the reason. Measured against chardet and a
UTF-8-else-cp1252 rule in ``docs/results/loaders.md`` (``benchmarks/text_encodings.py``): chardet 7 decoded all
340 documents in 21 encodings exactly, charset-normalizer 303 (it reads French Latin-1 as ISO-8859-10, ``«`` as
``Ŧ``).
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from sleuth.errors import UnreadableDocumentError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),  # before UTF-16: FF FE 00 00 starts both
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
MAX_CONTROL_RATIO = 0.001
SNIFF = 8192
DETECT_BYTES = 1 << 20


@dataclass
class Decoded:
    text: str
    encoding: str  # "utf-8", "utf-8-sig", "utf-16", "cp1252", ... (Python codec names)
    detected: bool  # True when chardet chose it (no BOM, not UTF-8, none declared)


def bom_encoding(head: bytes) -> str | None:
    for bom, enc in _BOMS:
        if head.startswith(bom):
            return enc
    return None


def looks_utf8(head: bytes, *, complete: bool) -> bool:
    """Whether ``head`` (the first bytes of a file; all of it when ``complete``) is NUL-free UTF-8; a multibyte
    character cut at the end of a partial head is allowed."""
    if b"\x00" in head:
        return False
    try:
        codecs.getincrementaldecoder("utf-8")("strict").decode(head, final=complete)
    except UnicodeDecodeError:
        return False
    return True


def _is_text(text: str) -> bool:
    if not text:
        return True
    return len(_CONTROL.findall(text[:1_000_000])) <= MAX_CONTROL_RATIO * min(len(text), 1_000_000)


def decode(data: bytes, *, declared: str | None = None) -> Decoded:
    """The text of ``data``; ``declared`` is an encoding the file names itself (an HTML ``<meta charset>``), tried
    after UTF-8 and before detection."""
    bom = bom_encoding(data[:4])
    if bom is not None:
        try:
            text = data.decode(bom)
        except UnicodeDecodeError as e:
            raise UnreadableDocumentError(f"starts with a {bom} byte-order mark but is not {bom} (byte {e.start})",
                                          reason="bad encoding") from None
        if _is_text(text):
            return Decoded(text.removeprefix("\ufeff"), bom, False)
    elif b"\x00" not in data[:SNIFF]:
        try:
            return Decoded(data.decode("utf-8"), "utf-8", False)
        except UnicodeDecodeError:
            pass
    if declared:
        try:
            text = data.decode(codecs.lookup(declared).name)
            if _is_text(text):
                return Decoded(text, codecs.lookup(declared).name, False)
        except (LookupError, UnicodeDecodeError):
            pass
    import chardet

    guess = chardet.detect(data[:DETECT_BYTES]).get("encoding")
    found: str | None = None
    name = ""
    if guess:
        try:
            name = codecs.lookup(guess).name
            found = data.decode(name)
        except (LookupError, UnicodeDecodeError):
            found = None
    if found is None:
        if b"\x00" in data[:SNIFF]:
            raise UnreadableDocumentError("binary file (no text format sleuth reads)", reason="binary")
        raise UnreadableDocumentError("its encoding could not be detected (not UTF-8, and no encoding fits)",
                                      reason="unknown encoding")
    if not _is_text(found):
        raise UnreadableDocumentError("binary file (no text format sleuth reads)", reason="binary")
    return Decoded(found.removeprefix("\ufeff"), name, True)
