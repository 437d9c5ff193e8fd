"""Passages of long documents: deterministic chunks with stable ids and character offsets.

A passage is a span ``[start, end)`` of a document's text, the text :meth:`sleuth.corpus.Corpus.read_text` returns
(the converted text of a PDF, DOCX, ... : the text grep and read see), so ``text[start:end]`` is the passage exactly.
Offsets count Python characters (code points), not bytes. Lines are 1-based and numbered as ``read`` and ``grep``
number them (``start_line`` is the line of the passage's first character, ``end_line`` of its last).

Ids are ``<doc id>#p<n>`` with ``n`` counted from **1** in document order (as lines are), e.g. ``notes/a.pdf#p3``.
The same text and the same :class:`Chunker` give the same passages, ids and offsets on every run and machine: the
split depends on nothing else (no tokenizer, no model).

How a text is cut (:meth:`Chunker.chunk`): it is split into units no longer than ``size`` characters, each at the
highest boundary that makes it fit: paragraphs (a blank line), then sentences (``.``, ``!``, ``?`` or ``;`` before
white space), then lines, then words, and only a run of ``size`` characters without any white space is cut
mid-word. Units are packed in order into passages of at most ``size`` characters; the document is shared evenly
(a 1,100-character text with ``size=1000`` gives two passages of about 550, not 1,000 + 100). With ``overlap`` a
passage starts with the last whole units of the one before, up to ``overlap`` characters. Passages never start
or end with white space; a text with no visible character has no passages.

The default size, 1,000 characters, fits the packaged MiniLM's window (256 word pieces, 254 of them text): SciFact
and HotpotQA average 4.5 characters a word piece (3.9 at the 10th percentile), so a full passage is about 220
word pieces (docs/results/chunking.md measures how many fit); it is also about 250 tokens of an LLM's context, so
ten search hits stay under 3,000 tokens and ICR's 300-word cut of a document never bites.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from sleuth.errors import ChunkingError

DEFAULT_SIZE = 1000
DEFAULT_OVERLAP = 0
CHUNKER_VERSION = 1  # bumped when the split changes: indexes built by another version are stale
PASSAGE_RE = re.compile(r"^(?P<doc>.+)#p(?P<n>[1-9][0-9]{0,8})$", re.DOTALL)

# boundaries, highest first: the position after each match starts a new unit (white space stays with the unit
# before it, so units are contiguous and cover the text)
_LEVELS = (
    re.compile(r"\n[ \t\r\f\v]*\n\s*"),  # a blank line: paragraphs
    re.compile(r"(?<=[.!?;])[\"')\]]*\s+"),  # end of a sentence
    re.compile(r"\n\s*"),  # a line break
    re.compile(r"\s+"),  # words
)


@dataclass(frozen=True)
class Passage:
    """One passage of a document: ``text[start:end]`` of the document's text, lines ``start_line..end_line``."""

    doc_id: str
    n: int  # 1-based position in the document
    start: int
    end: int
    start_line: int
    end_line: int

    @property
    def id(self) -> str:
        return passage_id(self.doc_id, self.n)

    def span(self) -> dict[str, int | str]:
        """The passage as plain data (hit metadata, tool results)."""
        return {"id": self.id, "n": self.n, "start": self.start, "end": self.end,
                "start_line": self.start_line, "end_line": self.end_line}


def passage_id(doc_id: str, n: int) -> str:
    return f"{doc_id}#p{n}"


def split_passage_id(value: str) -> tuple[str, int] | None:
    """``("a.txt", 3)`` for ``"a.txt#p3"``; None when ``value`` is not a passage id."""
    m = PASSAGE_RE.match(value)
    return (m["doc"], int(m["n"])) if m else None


@dataclass(frozen=True)
class Chunker:
    """``size``: the most characters a passage holds (> 0); ``overlap``: characters of the previous passage a
    passage may start with (0 <= overlap < size). Bad values raise :class:`~sleuth.errors.ChunkingError`."""

    size: int = DEFAULT_SIZE
    overlap: int = DEFAULT_OVERLAP

    def __post_init__(self) -> None:
        for name in ("size", "overlap"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise ChunkingError(f"chunk {name} must be an integer, got {v!r}")
        if self.size <= 0:
            raise ChunkingError(f"chunk size must be at least 1 character, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ChunkingError(f"chunk overlap must be at least 0 and less than the size ({self.size}), "
                                f"got {self.overlap}")

    def params(self) -> dict[str, int]:
        """What decides the passages (stored with every passage index; another value makes it stale)."""
        return {"size": self.size, "overlap": self.overlap, "version": CHUNKER_VERSION}

    @classmethod
    def from_params(cls, params: dict[str, int]) -> Chunker:
        return cls(size=int(params["size"]), overlap=int(params["overlap"]))

    # -- the split ----------------------------------------------------------------------------------------------
    def chunk(self, doc_id: str, text: str) -> list[Passage]:
        """The passages of ``text`` (the document ``doc_id``'s text), in order; ``[]`` for a text without a
        visible character."""
        spans = self.spans(text)
        out = []
        line, at = 1, 0  # the line number at position ``at``: counted forward once, not from 0 for each passage
        for n, (s, e) in enumerate(spans, 1):
            line += text.count("\n", at, s)
            start_line = line
            end_line = line + text.count("\n", s, e - 1)
            at = s
            out.append(Passage(doc_id, n, s, e, start_line, end_line))
        return out

    def spans(self, text: str) -> list[tuple[int, int]]:
        """``(start, end)`` of every passage of ``text``."""
        units = [u for u in self._units(text, 0, len(text), 0) if text[u[0]:u[1]].strip()]
        if not units:
            return []
        return [_trim(text, s, e) for s, e in self._pack(units)]

    def _units(self, text: str, start: int, end: int, level: int) -> Iterator[tuple[int, int]]:
        """Contiguous spans covering ``[start, end)``, each at most ``size`` characters (before trimming)."""
        if end - start <= self.size:
            yield start, end
            return
        if level == len(_LEVELS):  # no white space in ``size`` characters: cut mid-word
            for s in range(start, end, self.size):
                yield s, min(s + self.size, end)
            return
        cuts = [m.end() for m in _LEVELS[level].finditer(text, start, end) if start < m.end() < end]
        if not cuts:
            yield from self._units(text, start, end, level + 1)
            return
        prev = start
        for c in [*cuts, end]:
            yield from self._units(text, prev, c, level + 1)
            prev = c

    def _pack(self, units: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Units joined in order into passages of at most ``size`` characters, sharing the text evenly."""
        length = units[-1][1] - units[0][0]
        step = self.size - self.overlap
        n = max(1, -(-(length - self.overlap) // step))  # passages needed at full size
        target = (length + (n - 1) * self.overlap) / n  # ... and the length each gets when shared evenly
        out: list[tuple[int, int]] = []
        i = out_first = 0  # the next new unit; the first unit of the last passage
        while i < len(units):
            first = i
            if out and self.overlap:  # start with the last whole units of the previous passage
                back = i
                while back > 0 and units[i - 1][1] - units[back - 1][0] <= self.overlap and back - 1 > out_first:
                    back -= 1
                first = back
            j = i + 1  # the passage is units[first:j]; at least one new unit
            while first < i and units[j - 1][1] - units[first][0] > self.size:
                first += 1  # the overlap and the new unit do not fit together: less overlap
            while j < len(units) and units[j][1] - units[first][0] <= self.size and \
                    units[j - 1][1] - units[first][0] < target:
                j += 1
            out.append((units[first][0], units[j - 1][1]))
            out_first = first
            i = j
        return out


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e
