"""`ls`: doc ids under a folder or matching a glob (read as grep reads it: :mod:`sleuth.globs`), capped; and the
files there that are not documents (an encrypted PDF, a scan, an image), each with the reason."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sleuth.corpus import Corpus
from sleuth.errors import PathOutsideCorpusError, shown
from sleuth.globs import MAX_GLOB_CHARS, compile_glob
from sleuth.tools.base import Tool, ToolArgs, ToolResult


class LsArgs(ToolArgs):
    glob: str | None = Field(None, max_length=MAX_GLOB_CHARS,
                             description="Only doc ids matching this glob (ripgrep syntax, as in grep), e.g. '*.md', "
                             "'*.{md,txt}' or 'papers/**/2020*'; '!GLOB' excludes.")
    prefix: str | None = Field(None, max_length=4096, description="Only doc ids under this folder (one listed by an "
                        "earlier ls).")
    limit: int = Field(100, ge=1, le=100_000, description="At most this many doc ids.")


MAX_UNREADABLE_SHOWN = 50


class LsResult(BaseModel):
    doc_ids: list[str]
    total: int
    not_shown: int
    unreadable: dict[str, str] = {}  # files that are not documents -> why (at most MAX_UNREADABLE_SHOWN)
    unreadable_total: int = 0


def ls(corpus: Corpus, args: LsArgs) -> LsResult:
    prefix = (args.prefix or "").strip("/")
    if prefix and (".." in prefix.split("/") or prefix.startswith(("/", "\\"))):
        raise PathOutsideCorpusError(f"prefix leaves the corpus: {shown(args.prefix)}")
    glob = compile_glob(args.glob) if args.glob else None  # InvalidGlobError before the walk
    entries = corpus.entries()

    def wanted(d: str) -> bool:
        return (not prefix or d == prefix or d.startswith(prefix + "/")) and (glob is None or glob.match(d))

    ids = sorted(d for d, e in entries.items() if e.readable and wanted(d))
    bad = {d: f"{e.message}" for d, e in sorted(entries.items()) if not e.readable and wanted(d)}
    return LsResult(doc_ids=ids[: args.limit], total=len(ids), not_shown=max(0, len(ids) - args.limit),
                    unreadable=dict(list(bad.items())[:MAX_UNREADABLE_SHOWN]), unreadable_total=len(bad))


def unreadable_lines(r: LsResult) -> list[str]:
    """The lines that report files which are not documents (empty when there are none)."""
    if not r.unreadable_total:
        return []
    lines = [f"{r.unreadable_total} files are not documents (not searchable):"]
    lines += [f"  {d}: {why}" for d, why in r.unreadable.items()]
    if r.unreadable_total > len(r.unreadable):
        lines.append(f"  [{r.unreadable_total - len(r.unreadable)} more not shown]")
    return lines


def ls_tool(corpus: Corpus) -> Tool[LsArgs]:
    def run(args: LsArgs) -> ToolResult:
        r = ls(corpus, args)
        bad = unreadable_lines(r)
        if not r.total:
            return ToolResult(text="\n".join(["no documents match", *bad]), data=r.model_dump())
        text = f"{r.total} documents\n" + "\n".join(r.doc_ids)
        if r.not_shown:
            text += f"\n[truncated: {r.not_shown} more doc ids not shown; narrow with prefix or glob]"
        if bad:
            text += "\n" + "\n".join(bad)
        return ToolResult(text=text, data=r.model_dump(), truncated=bool(r.not_shown))

    desc = "List doc ids, optionally under a folder prefix or matching a glob."
    return Tool("ls", desc, LsArgs, run, tags={"corpus"}, output_type=LsResult)
