"""Reversible mapping between any source id (BEIR ``_id``, a HotpotQA title, ...) and a safe relative file path.

Rules (encoding ``v1``):

* ``%``, ``/``, ``\\``, control characters and ``: * ? " < > |`` are percent-encoded (UTF-8 bytes), so the
  file name never contains a path separator and never means anything to a shell or to Windows.
* a leading ``.`` or space and a trailing ``.`` or space are percent-encoded: no hidden files, no ``..``.
* other characters, unicode included, are kept as they are, so doc ids stay readable for people and models.
* ``.txt`` is appended. A name longer than 200 UTF-8 bytes is cut into folders of at most 180 bytes each
  (never inside an escape, never starting with ``.``); decoding drops those ``/`` (real slashes are escaped).

``decode(encode(x)) == x`` for every non-empty string ``x``.
"""

from __future__ import annotations

from urllib.parse import unquote

SUFFIX = ".txt"
MAX_NAME_BYTES = 200
SEGMENT_BYTES = 180
_ALWAYS = set('%/\\:*?"<>|')


def _esc(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8"))


def _needs_escape(ch: str) -> bool:
    o = ord(ch)
    return ch in _ALWAYS or o < 32 or o == 127 or 0xD800 <= o <= 0xDFFF


def _units(source_id: str) -> list[str]:
    """The encoded id as a list of units (a plain character or one whole escape)."""
    units = [_esc(ch) if _needs_escape(ch) else ch for ch in source_id]
    if units and units[0] in (".", " "):
        units[0] = _esc(units[0])
    if units and units[-1] in (".", " "):
        units[-1] = _esc(units[-1])
    return units


def encode(source_id: str) -> str:
    if not isinstance(source_id, str) or source_id == "":
        raise ValueError("a document id must be a non-empty string")
    units = _units(source_id)
    name = "".join(units)
    if len((name + SUFFIX).encode("utf-8")) <= MAX_NAME_BYTES:
        return name + SUFFIX
    segments: list[str] = []
    current: list[str] = []
    size = 0
    for u in units:
        if not current and u in (".", " "):
            u = _esc(u)  # a folder never starts with a dot or a space
        n = len(u.encode("utf-8"))
        if size + n > SEGMENT_BYTES and current:
            segments.append("".join(current))
            current, size = [], 0
            if u in (".", " "):
                u = _esc(u)
                n = len(u)
        current.append(u)
        size += n
    segments.append("".join(current))
    if segments[-1].endswith((".", " ")):  # cannot happen after _units, kept as a guard
        raise AssertionError("encoded segment ends with a dot")
    return "/".join(segments) + SUFFIX


def decode(path: str) -> str:
    if not path.endswith(SUFFIX):
        raise ValueError(f"not an encoded document path: {path!r}")
    return unquote(path[: -len(SUFFIX)].replace("/", ""), encoding="utf-8", errors="strict")
