"""`sleuth grep | read | ls | corpus import`: direct corpus interaction, no index, no model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import (
    CHUNK_OVERLAP_OPTION,
    CHUNK_SIZE_OPTION,
    CORPUS_OPTION,
    chunking,
    cli_progress,
    open_corpus,
)
from sleuth.cli.output import JSON_OPTION, Output, flag_errors, run_command


def _corpus(path: Path | None) -> Any:
    return open_corpus(path)


def grep_cmd(
    pattern: str = typer.Argument(..., help="Regex (or literal text with -F)."),
    corpus: Path = CORPUS_OPTION,
    path: str = typer.Option(None, "--path", help="Search only this doc id or folder."),
    glob: str = typer.Option(None, "--glob", "-g", help="Only doc ids matching this glob."),
    ignore_case: bool = typer.Option(False, "--ignore-case", "-i"),
    fixed_strings: bool = typer.Option(False, "--fixed-strings", "-F"),
    word_regexp: bool = typer.Option(False, "--word-regexp", "-w"),
    context: int = typer.Option(0, "--context", "-C", min=0, max=10),
    max_count: int = typer.Option(None, "--max-count", "-m", help="Matching lines per document."),
    max_matches: int = typer.Option(50, "--max-matches", "-n", help="Matching lines in all."),
    files_with_matches: bool = typer.Option(False, "--files-with-matches", "-l"),
    count: bool = typer.Option(False, "--count"),
    max_chars: int = typer.Option(20000, "--max-chars"),
    timeout: float = typer.Option(30.0, "--timeout", help="Seconds before the search is stopped."),
    shards: int = typer.Option(None, "--shards", help="Split the corpus into N parts searched in parallel (the "
                               "same result as one search)."),
    ray: str = typer.Option(None, "--ray", metavar="ADDRESS", help="With --shards: run the shards as Ray tasks on "
                            "that cluster (auto, HOST:PORT; the ray extra), the corpus at the same path on its nodes."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Search the raw documents with ripgrep."""

    def work() -> Any:
        from pydantic import ValidationError

        from sleuth.errors import ToolArgumentError
        from sleuth.tools.grep import GrepArgs, grep, render

        try:
            args = GrepArgs(
                pattern=pattern, path=path, glob=glob, ignore_case=ignore_case, fixed_strings=fixed_strings,
                word_regexp=word_regexp, context=context, max_count=max_count, max_matches=max_matches,
                files_with_matches=files_with_matches, count=count, max_chars=max_chars,
            )
        except ValidationError as e:
            raise ToolArgumentError(flag_errors(e, {"pattern": "PATTERN", "glob": "--glob"}),
                                    hint="see `sleuth grep --help`") from None
        if ray and shards is None:
            from sleuth.errors import UsageError

            raise UsageError("--ray runs the shards of a sharded grep", hint="add --shards N")
        if shards is not None:
            from sleuth.tools.grep_shards import grep_sharded

            result = grep_sharded(_corpus(corpus), args, shards=shards, timeout=timeout, ray=ray)
        else:
            result = grep(_corpus(corpus), args, timeout=timeout)
        return Output(result, render(result, max_chars)[0])

    run_command(as_json, work, typer.echo)


def read_cmd(
    doc_id: str = typer.Argument(..., help="The document's id (path relative to the corpus root), or a passage id "
                                 "from search (DOC_ID#p3)."),
    corpus: Path = CORPUS_OPTION,
    lines: str = typer.Option(None, "--lines", help="A line range A:B (1-based, inclusive); A: or :B work too."),
    max_chars: int = typer.Option(100_000, "--max-chars"),
    chunk_size: int = CHUNK_SIZE_OPTION,
    chunk_overlap: int = CHUNK_OVERLAP_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a document, a line range of it, or a passage (DOC_ID#p3, cut as the search indexes cut it: pass the
    --chunk-size they were built with)."""

    def work() -> Any:
        from pydantic import ValidationError

        from sleuth.errors import ToolArgumentError
        from sleuth.tools.read import ReadArgs, read

        start, end = 1, None
        hint = "pass --lines A:B with 1 <= A <= B (A: reads to the end, :B from the start)"
        if lines:
            a, sep, b = lines.partition(":")
            try:
                start = int(a) if a else 1
                end = int(b) if b else None if sep else start
            except ValueError:
                raise ToolArgumentError(f"--lines must look like A:B, got {lines!r}", hint=hint) from None
            if start < 1 or (end is not None and end < start):
                raise ToolArgumentError(f"--lines {lines}: the range is empty or starts before line 1", hint=hint)
        try:
            args = ReadArgs(doc_id=doc_id, start_line=start, end_line=end, max_chars=max_chars)
        except ValidationError as e:
            names = {"doc_id": "DOC_ID", "start_line": "--lines", "end_line": "--lines"}
            raise ToolArgumentError(flag_errors(e, names), hint="see `sleuth read --help`") from None
        chunker = None
        if (opts := chunking(chunk_size, chunk_overlap)) is not None:
            from sleuth.retrieval.chunking import Chunker

            chunker = Chunker(**opts)
        r = read(_corpus(corpus), args, chunker)
        return Output(r, r.text + (f"\n[truncated: {r.note}]" if r.note else ""))

    run_command(as_json, work, typer.echo)


def ls_cmd(
    glob: str = typer.Argument(None, help="Only doc ids matching this glob."),
    corpus: Path = CORPUS_OPTION,
    prefix: str = typer.Option(None, "--prefix", help="Only doc ids under this folder."),
    limit: int = typer.Option(1000, "--limit"),
    as_json: bool = JSON_OPTION,
) -> None:
    """List doc ids."""

    def work() -> Any:
        from pydantic import ValidationError

        from sleuth.errors import ToolArgumentError
        from sleuth.tools.ls import LsArgs, ls

        try:
            args = LsArgs(glob=glob, prefix=prefix, limit=limit)
        except ValidationError as e:
            raise ToolArgumentError(flag_errors(e, {"glob": "GLOB"}), hint="see `sleuth ls --help`") from None
        from sleuth.tools.ls import unreadable_lines

        r = ls(_corpus(corpus), args)
        text = "\n".join(r.doc_ids) + (f"\n[{r.not_shown} more not shown; raise --limit]" if r.not_shown else "")
        if bad := unreadable_lines(r):
            text += ("\n" if text else "") + "\n".join(bad)
        return Output(r, text)

    run_command(as_json, work, typer.echo)


corpus_app = typer.Typer(help="Create and inspect corpora.", no_args_is_help=True)


@corpus_app.command("import")
def import_cmd(
    src: Path = typer.Argument(..., help="BEIR folder or corpus.jsonl, HotpotQA JSON/JSONL, or a plain JSONL."),
    dest: Path = typer.Argument(..., help="The corpus folder to create (replaced atomically if it is one)."),
    fmt: str = typer.Option("auto", "--format", help="auto, beir, hotpotqa or jsonl."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip malformed records (reported) instead of failing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty folder that is not a corpus."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Turn a dataset file into a corpus folder (one text file per document)."""

    def work() -> Any:
        from sleuth.importers import import_corpus

        r = import_corpus(src, dest, fmt, on_error="skip" if skip_bad else "raise", overwrite=overwrite,  # type: ignore[arg-type]
                          progress=cli_progress(as_json))
        text = (f"imported {r.documents} documents from {r.records} records ({r.format}) into {r.dest} "
                f"in {r.seconds:.1f}s; {r.duplicates} duplicates skipped, {r.renamed} renamed, {r.skipped} bad records")
        if r.errors:
            text += "\n" + "\n".join(f"  {e}" for e in r.errors)
        return Output(r, text)

    run_command(as_json, work, typer.echo)


@corpus_app.command("info")
def info_cmd(corpus: Path = typer.Argument(None, help="The corpus folder (default: $SLEUTH_CORPUS)."),
             as_json: bool = JSON_OPTION) -> None:
    """Documents, size, import manifest and the indexes built for a corpus."""

    def work() -> Any:
        c = _corpus(corpus)
        ids = c.doc_ids()
        size = sum((c.root / d).stat().st_size for d in ids)
        state = c.root / ".sleuth"
        indexes = sorted(p.name for p in state.iterdir() if p.is_dir()) if state.is_dir() else []
        data = {"root": str(c.root), "documents": len(ids), "bytes": size, "manifest": c.manifest, "indexes": indexes}
        text = "\n".join(f"{k}: {v}" for k, v in data.items())
        return Output(data, text)

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.command("grep")(grep_cmd)
    app.command("read")(read_cmd)
    app.command("ls")(ls_cmd)
    app.add_typer(corpus_app, name="corpus")
