"""`read`: a document, or a line range of it, with a character cap and a note of what was cut (streamed: memory
stays bounded whatever the file). A PDF, DOCX, PPTX, HTML or non-UTF-8 file is read in its converted text (the
text grep searches and the indexes hold: a PDF's pages start with ``[page N]`` lines, a deck's slides with
``[slide N]``); a file that is not a document raises :class:`~sleuth.errors.UnreadableDocumentError` with why.

A passage id (``doc_id#p3``, as search hits name them; :mod:`sleuth.retrieval.chunking`) reads that passage: the
characters ``[start, end)`` of the document's text, numbered with the document's own line numbers (its first line
may begin mid-line). A file whose name really ends in ``#p3`` is read as that file."""

from __future__ import annotations

import codecs
from typing import TYPE_CHECKING, Any, BinaryIO

from pydantic import BaseModel, Field, model_validator

from sleuth.corpus import MAX_DOC_ID_CHARS, Corpus
from sleuth.errors import BinaryDocumentError, DocumentNotFoundError, ToolArgumentError, shown
from sleuth.tools.base import Tool, ToolArgs, ToolResult

if TYPE_CHECKING:
    from sleuth.retrieval.chunking import Chunker, Passage

MAX_LINE_CHARS = 2000
BINARY_SNIFF = 8192
CHUNK = 1 << 20


class ReadArgs(ToolArgs):
    doc_id: str = Field(min_length=1, max_length=MAX_DOC_ID_CHARS,
                        description="The document's id (its path relative to the corpus root), or a passage id "
                                    "from search (doc_id#p3) to read that passage.")
    start_line: int = Field(1, ge=1, le=10**12, description="First line to return (1-based).")
    end_line: int | None = Field(None, ge=1, le=10**12,
                                 description="Last line to return (inclusive). Default: to the end.")
    max_chars: int = Field(4000, ge=100, le=1_000_000, description="Cap on the characters returned.")

    @model_validator(mode="after")
    def _order(self) -> ReadArgs:
        if self.end_line is not None and self.end_line < self.start_line:
            raise ValueError(f"end_line ({self.end_line}) is before start_line ({self.start_line})")
        return self


class ReadResult(BaseModel):
    doc_id: str
    start_line: int
    end_line: int  # last line actually returned (0 when nothing was)
    total_lines: int
    total_chars: int
    text: str
    truncated: bool = False
    note: str = ""
    converted_from: str = ""  # "pdf", "docx", "pptx", "html", "text" (another encoding); "" for UTF-8 text files
    passage: dict[str, Any] | None = None  # a passage read by its id: id, n, start, end, start_line, end_line


def read(corpus: Corpus, args: ReadArgs, chunker: Chunker | None = None) -> ReadResult:
    """Stream the document: memory stays bounded by ``max_chars`` whatever the file's size or line length.

    Lines end at ``\\n`` (a trailing ``\\r`` is dropped), as in ripgrep, so line numbers agree with grep's.
    A passage id reads the passage (cut by ``chunker``, default :class:`~sleuth.retrieval.chunking.Chunker`)."""
    from sleuth.retrieval.chunking import split_passage_id

    if split_passage_id(args.doc_id) is not None:
        from sleuth.retrieval.passages import find_passage

        found = find_passage(corpus, args.doc_id, chunker)
        if found is not None:
            return _read_passage(corpus, args, *found)
    path = corpus.text_path(args.doc_id)
    entry = corpus.entry(args.doc_id)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DocumentNotFoundError(f"cannot open {shown(args.doc_id)} ({type(e).__name__})") from e
    with fh:
        result = _read_stream(fh, args)
    if entry.status == "converted":
        result.converted_from = entry.format
    return result


def _read_passage(corpus: Corpus, args: ReadArgs, p: Passage, text: str) -> ReadResult:
    """The passage's text, line-numbered as the document is; ``start_line``/``end_line`` (when given) narrow it."""
    first = max(p.start_line, args.start_line)
    last = p.end_line if args.end_line is None else min(p.end_line, args.end_line)
    if first > last:
        raise ToolArgumentError(f"{p.id} holds lines {p.start_line}-{p.end_line}; lines {args.start_line}-"
                                f"{args.end_line or 'end'} are outside it", hint="read the passage without lines")
    out: list[str] = []
    used, shown_last, cut = 0, first - 1, False
    for i, line in enumerate(text[p.start:p.end].split("\n")):
        n = p.start_line + i
        if n < first or n > last:
            continue
        entry = f"{n}| {line.removesuffix(chr(13))}"
        if used + len(entry) + 1 > args.max_chars:
            room = args.max_chars - used
            if not out and room > 40:
                out.append(entry[: room - 20] + " …[cut]")
                shown_last = n
            cut = True
            break
        out.append(entry)
        used += len(entry) + 1
        shown_last = n
    note = (f"showing lines {first}-{shown_last} of the passage's {first}-{last}; read {p.doc_id} with "
            f"start_line={shown_last + 1} to continue") if cut else ""
    kind = corpus.entry(p.doc_id)
    return ReadResult(
        doc_id=p.doc_id, start_line=first, end_line=shown_last,
        total_lines=text.count("\n") + (not text.endswith("\n")), total_chars=len(text), text="\n".join(out),
        truncated=cut, note=note,
        converted_from=kind.format if kind.status == "converted" else "", passage=p.span(),
    )


def _read_stream(fh: BinaryIO, args: ReadArgs) -> ReadResult:
    head = fh.read(BINARY_SNIFF)
    if b"\x00" in head:
        raise BinaryDocumentError(f"{shown(args.doc_id)} is a binary file")
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    out: list[str] = []
    used = 0
    line_no = 1  # the line being read
    cur: list[str] = []  # the kept part of the current line (only while it is wanted)
    cur_len = 0
    total_chars = 0
    consumed = 0
    stopped = False  # the character cap was reached: later lines are only counted
    shown_last = args.start_line - 1
    clipped_lines = 0
    pending_text = False  # the current line has characters (so the file does not end with an empty line)
    want_to = args.end_line

    def finish_line() -> None:
        nonlocal used, shown_last, clipped_lines, stopped, cur, cur_len
        if not stopped and line_no >= args.start_line and (want_to is None or line_no <= want_to):
            line = "".join(cur).removesuffix("\r")
            full_len = cur_len - (1 if cur_len and line != "".join(cur) else 0)
            if full_len > MAX_LINE_CHARS:
                line = line[:MAX_LINE_CHARS] + f" …[+{full_len - MAX_LINE_CHARS} chars]"
                clipped_lines += 1
            entry = f"{line_no}| {line}"
            if used + len(entry) + 1 > args.max_chars:
                room = args.max_chars - used
                if not out and room > 40:  # a single huge line: show its beginning rather than nothing
                    out.append(entry[: room - 20] + " …[cut]")
                    shown_last = line_no
                stopped = True
            else:
                out.append(entry)
                used += len(entry) + 1
                shown_last = line_no
        cur, cur_len = [], 0

    data = head
    while data:
        try:
            text = decoder.decode(data)
        except UnicodeDecodeError as e:
            raise BinaryDocumentError(f"{shown(args.doc_id)} is not valid UTF-8 (byte {consumed + e.start})") from e
        consumed += len(data)
        total_chars += len(text)
        pos = 0
        while pos < len(text):
            nl = text.find("\n", pos)
            piece = text[pos:] if nl == -1 else text[pos:nl]
            wanted = not stopped and line_no >= args.start_line and (want_to is None or line_no <= want_to)
            if wanted and cur_len <= MAX_LINE_CHARS + 1:
                cur.append(piece[: MAX_LINE_CHARS + 2 - cur_len])
            cur_len += len(piece)
            pending_text = pending_text or bool(piece)
            if nl == -1:
                break
            finish_line()
            line_no += 1
            pending_text = False
            pos = nl + 1
        data = fh.read(CHUNK)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        raise BinaryDocumentError(f"{shown(args.doc_id)} is not valid UTF-8 (byte {consumed + e.start})") from e
    if pending_text:
        finish_line()
        total = line_no
    else:
        total = line_no - 1
    if total and args.start_line > total:
        raise ToolArgumentError(f"{shown(args.doc_id)} has {total} lines; start_line {args.start_line} is past the end")
    last = min(args.end_line or total, total)
    notes = []
    if shown_last < last:
        notes.append(
            f"showing lines {args.start_line}-{shown_last} of {total}; "
            f"read again with start_line={shown_last + 1} to continue"
        )
    if clipped_lines:
        notes.append(f"{clipped_lines} lines longer than {MAX_LINE_CHARS} characters were clipped")
    return ReadResult(
        doc_id=args.doc_id,
        start_line=args.start_line,
        end_line=shown_last,
        total_lines=total,
        total_chars=total_chars,
        text="\n".join(out),
        truncated=bool(notes),
        note="; ".join(notes),
    )


def read_tool(corpus: Corpus, chunker: Chunker | None = None) -> Tool[ReadArgs]:
    """The tool; ``chunker``: how passage ids are cut (the one the search indexes use; default: the default)."""

    def run(args: ReadArgs) -> ToolResult:
        r = read(corpus, args, chunker)
        source = f"; text of a {r.converted_from.upper()} file" if r.converted_from not in ("", "text") else ""
        if r.passage:
            source += f"; passage {r.passage['id']}: characters {r.passage['start']}-{r.passage['end']}"
        head = f"== {r.doc_id} (lines {r.start_line}-{r.end_line} of {r.total_lines}{source})"
        text = head + "\n" + r.text + (f"\n[truncated: {r.note}]" if r.note else "")
        return ToolResult(text=text, data=r.model_dump(), truncated=r.truncated)

    return Tool(
        "read",
        "Read a document (or a range of its lines) by doc id, or a passage by its id (doc_id#p3, from search). "
        "Lines are numbered like grep's output.",
        ReadArgs,
        run,
        tags={"corpus"},
        output_type=ReadResult,
    )
