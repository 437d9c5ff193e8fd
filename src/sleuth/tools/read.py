"""`read`: a document, or a line range of it, with a character cap and a note of what was cut."""

from __future__ import annotations

from pydantic import BaseModel, Field, model_validator

from sleuth.corpus import Corpus
from sleuth.errors import ToolArgumentError
from sleuth.tools.base import Tool, ToolArgs, ToolResult

MAX_LINE_CHARS = 2000


class ReadArgs(ToolArgs):
    doc_id: str = Field(min_length=1, description="The document's id (its path relative to the corpus root).")
    start_line: int = Field(1, ge=1, description="First line to return (1-based).")
    end_line: int | None = Field(None, ge=1, description="Last line to return (inclusive). Default: to the end.")
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


def read(corpus: Corpus, args: ReadArgs) -> ReadResult:
    text = corpus.read_text(args.doc_id)
    lines = text.splitlines()
    total = len(lines)
    if total and args.start_line > total:
        raise ToolArgumentError(f"{args.doc_id!r} has {total} lines; start_line {args.start_line} is past the end")
    last = min(args.end_line or total, total)
    out: list[str] = []
    used = 0
    shown_last = args.start_line - 1
    clipped_lines = 0
    for n in range(args.start_line, last + 1):
        line = lines[n - 1]
        if len(line) > MAX_LINE_CHARS:
            line = line[:MAX_LINE_CHARS] + f" …[+{len(line) - MAX_LINE_CHARS} chars]"
            clipped_lines += 1
        entry = f"{n}| {line}"
        if used + len(entry) + 1 > args.max_chars:
            room = args.max_chars - used
            if not out and room > 40:  # a single huge line: show its beginning rather than nothing
                out.append(entry[: room - 20] + " …[cut]")
                shown_last = n
            break
        out.append(entry)
        used += len(entry) + 1
        shown_last = n
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
        total_chars=len(text),
        text="\n".join(out),
        truncated=bool(notes),
        note="; ".join(notes),
    )


def read_tool(corpus: Corpus) -> Tool[ReadArgs]:
    def run(args: ReadArgs) -> ToolResult:
        r = read(corpus, args)
        head = f"== {r.doc_id} (lines {r.start_line}-{r.end_line} of {r.total_lines})"
        text = head + "\n" + r.text + (f"\n[truncated: {r.note}]" if r.note else "")
        return ToolResult(text=text, data=r.model_dump(), truncated=r.truncated)

    return Tool(
        "read",
        "Read a document (or a range of its lines) by doc id. Lines are numbered like grep's output.",
        ReadArgs,
        run,
        tags={"corpus"},
    )
