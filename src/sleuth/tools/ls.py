"""`ls`: doc ids under a folder or matching a glob (read as grep reads it: :mod:`sleuth.globs`), capped."""

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


class LsResult(BaseModel):
    doc_ids: list[str]
    total: int
    not_shown: int


def ls(corpus: Corpus, args: LsArgs) -> LsResult:
    prefix = (args.prefix or "").strip("/")
    if prefix and (".." in prefix.split("/") or prefix.startswith(("/", "\\"))):
        raise PathOutsideCorpusError(f"prefix leaves the corpus: {shown(args.prefix)}")
    glob = compile_glob(args.glob) if args.glob else None  # InvalidGlobError before the walk
    ids = corpus.doc_ids()
    if prefix:
        ids = [d for d in ids if d == prefix or d.startswith(prefix + "/")]
    if glob is not None:
        ids = [d for d in ids if glob.match(d)]
    return LsResult(doc_ids=ids[: args.limit], total=len(ids), not_shown=max(0, len(ids) - args.limit))


def ls_tool(corpus: Corpus) -> Tool[LsArgs]:
    def run(args: LsArgs) -> ToolResult:
        r = ls(corpus, args)
        if not r.total:
            return ToolResult(text="no documents match", data=r.model_dump())
        text = f"{r.total} documents\n" + "\n".join(r.doc_ids)
        if r.not_shown:
            text += f"\n[truncated: {r.not_shown} more doc ids not shown; narrow with prefix or glob]"
        return ToolResult(text=text, data=r.model_dump(), truncated=bool(r.not_shown))

    desc = "List doc ids, optionally under a folder prefix or matching a glob."
    return Tool("ls", desc, LsArgs, run, tags={"corpus"})
