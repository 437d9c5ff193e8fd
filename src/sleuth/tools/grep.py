"""`grep`: ripgrep over the raw corpus, run as a subprocess with an argument list (never a shell).

Bounded on any input:

* ripgrep prints its standard format (``path NUL line:column:offset:text``) with ``--max-columns``: a line longer
  than :data:`MAX_COLUMNS` bytes is never printed or read whole. sleuth reads the few bytes around the match back
  from the file itself (it knows the line's offset and the match's column) and shows them with a note that the line
  was too long and is shown cut. Every line of ripgrep's output is read through a reader that keeps at most
  :data:`LINE_BUDGET` bytes of it, so memory stays small whatever the file holds.
* The time limit applies to the process as a whole: a timer kills ripgrep, and whatever it printed until then is
  returned as a partial result (``complete: false``).
* ripgrep runs with one thread in this mode, so it streams its output instead of buffering a file's whole output.
* Once ``max_matches`` matching lines are collected, the rest of the output is only counted (a byte scan); the
  totals come from ripgrep's ``--stats``.
* A file ripgrep cannot search (PCRE2's match limit, a permission error) is reported in ``errors`` and the matches
  in every other file are kept; only a pattern ripgrep cannot compile is an error.
* Hidden files are never searched or shown (:func:`sleuth.corpus.is_document_id`), whatever the glob or path.

Converted documents (PDF, DOCX, PPTX, HTML, text in another encoding than UTF-8) are searched in their converted
text: a second ripgrep run over the corpus's text store (``STATE/text/docs``, where each text sits at its doc
id's path), while the first run over the corpus folder leaves those files out (``--glob=!`` per format extension
and per non-UTF-8 text file). The two runs share the time limit and ``max_matches``; their results are merged
into one, with the same doc ids, line numbers (those of ``read``) and totals as a single run would give.
"""

from __future__ import annotations

import re
import time
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sleuth.corpus import Corpus, hidden_part, is_document_id
from sleuth.errors import (
    BinaryDocumentError,
    DocumentNotFoundError,
    InvalidPatternError,
    PathOutsideCorpusError,
    ToolExecutionError,
    ToolResourceError,
    ToolTimeoutError,
    shown,
)
from sleuth.globs import MAX_GLOB_CHARS, compile_glob
from sleuth.rg import base_args
from sleuth.tools.base import Tool, ToolArgs, ToolResult
from sleuth.tools.grep_process import Lines, Runner, file_errors, nul_records, out_of_memory, regex_error

if TYPE_CHECKING:
    from sleuth.loaders.store import Entry

MAX_COLUMNS = 10_000  # bytes of one line ripgrep prints; longer lines are read back around the match
LINE_BUDGET = MAX_COLUMNS + 8192  # bytes of one output line sleuth keeps (path, numbers, text)
MAX_PATTERN_CHARS = 10_000
MAX_ERRORS_SHOWN = 5
LONG_LINE_NOTE = " …[line too long, shown cut]"
_MATCH_RE = re.compile(rb"(\d+):(\d+):(\d+):")
_CONTEXT_RE = re.compile(rb"(\d+)-(\d+)-")
_OMITTED_RE = re.compile(rb"\[Omitted long line with \d+ matches\]")
_STAT_LINES_RE = re.compile(rb"(?m)^(\d+) matched lines$")
_STAT_FILES_RE = re.compile(rb"(?m)^(\d+) files contained matches$")
_COMPILE_ERRORS = ("regex parse error", "error compiling pattern", "size limit", "error parsing glob",
                   "regex could not be compiled", "literal", "unrecognized escape")


class GrepArgs(ToolArgs):
    pattern: str = Field(min_length=1, max_length=MAX_PATTERN_CHARS,
                         description="Regular expression (Rust regex syntax; PCRE2 features such as "
                         "look-around are used when needed), or literal text with fixed_strings=true.")
    path: str | None = Field(None, max_length=4096,
                             description="A doc id or folder (relative to the corpus root) to search in. "
                             "Default: the whole corpus.")
    glob: str | None = Field(None, max_length=MAX_GLOB_CHARS,
                             description="Only search doc ids matching this glob (ripgrep syntax), e.g. '*.md', "
                             "'*.{md,txt}' or 'reports/**'; '!GLOB' excludes.")
    ignore_case: bool = Field(False, description="Case-insensitive search.")
    fixed_strings: bool = Field(False, description="Treat the pattern as literal text, not a regex.")
    word_regexp: bool = Field(False, description="Only match whole words.")
    context: int = Field(0, ge=0, le=10, description="Lines of context to show before and after each match.")
    max_count: int | None = Field(None, ge=1, le=1000, description="At most this many matching lines per document.")
    max_matches: int = Field(50, ge=1, le=2000, description="At most this many matching lines in all.")
    files_with_matches: bool = Field(False, description="Only list the doc ids that match.")
    count: bool = Field(False, description="Only count matching lines per doc id.")
    max_chars: int = Field(6000, ge=200, le=500_000, description="Cap on the characters of the text returned.")


class GrepMatch(BaseModel):
    doc_id: str
    line: int
    text: str
    before: list[tuple[int, str]] = Field(default_factory=list)
    after: list[tuple[int, str]] = Field(default_factory=list)


class GrepResult(BaseModel):
    pattern: str
    mode: str = "lines"  # lines | files | count
    matches: list[GrepMatch] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    total_matches: int = 0  # matching lines in all documents (a lower bound when `complete` is false)
    total_docs: int = 0
    not_shown_matches: int = 0
    not_shown_docs: int = 0
    complete: bool = True  # false when the search was stopped early (see `stopped_by`)
    stopped_by: str | None = None  # "time limit" or "memory" (ripgrep ran out of it) when stopped early
    long_lines: int = 0  # lines too long to show whole (shown cut around the match)
    errors: list[str] = Field(default_factory=list)  # documents ripgrep could not search, and why
    seconds: float = 0.0


def _check(rc: int, stderr: str, pattern: str, runner: Runner, result: GrepResult) -> None:
    """Turn ripgrep's errors into an InvalidPatternError (nothing can match) or per-document notes."""
    if runner.timed_out:
        return
    if out_of_memory(rc, stderr):
        why = "ripgrep ran out of memory (a very long line in some file?)"
        if result.matches or result.files or result.counts:  # what was found before it died stands, said so
            result.complete, result.stopped_by = False, "memory"
            return
        raise ToolResourceError(f"grep for {shown(pattern)} stopped: {why}",
                                hint="leave the big file out with glob or path, or search for something rarer")
    if rc not in (0, 1, 2):
        raise ToolExecutionError(f"ripgrep exited with code {rc}: {stderr.strip()[:300]}")
    if rc != 2:
        return
    text = stderr.strip()
    low = text.lower()
    if low.startswith("rg: no files were searched"):  # the glob or path left nothing in this run: no match
        return
    found = result.matches or result.files or result.counts
    if not found and any(k in low for k in _COMPILE_ERRORS) and not file_errors(text):
        raise InvalidPatternError(f"invalid regex {shown(pattern)}: {regex_error(text)}")
    result.errors = file_errors(text)[:MAX_ERRORS_SHOWN]
    if not result.errors and not found and text:
        raise InvalidPatternError(f"ripgrep refused the search for {shown(pattern)}: {text[:300]}")


def _command(args: GrepArgs, mode: str, excludes: list[str] | None = None) -> list[str]:
    cmd = base_args()
    if mode == "files":
        cmd += ["--files-with-matches", "--null"]
    elif mode == "count":
        cmd += ["--count", "--null", "--with-filename"]
    else:
        # one thread: a multi-threaded ripgrep buffers each file's whole output in memory before printing it
        # (hundreds of MB for one big file, and nothing to show at the time limit); one thread streams it
        # --sort=path (free with one thread): matches in path order, each folder's entries by name, so the first
        # max_matches are the same on every file system, and runs over disjoint parts merge into one run's list
        cmd += ["--threads=1", "--sort=path", "--line-number", "--column", "--byte-offset", "--null",
                "--with-filename", "--no-heading", "--color=never", f"--max-columns={MAX_COLUMNS}", "--stats"]
        if args.context:
            cmd += [f"--context={args.context}"]
    if args.ignore_case:
        cmd.append("--ignore-case")
    else:
        cmd.append("--case-sensitive")
    if args.fixed_strings:
        cmd.append("--fixed-strings")
    if args.word_regexp:
        cmd.append("--word-regexp")
    if args.max_count:
        cmd.append(f"--max-count={args.max_count}")
    if args.glob:
        compile_glob(args.glob)  # InvalidGlobError here, with the same reading ls uses
        cmd.append(f"--glob={args.glob}")
    cmd += [f"--glob={g}" for g in excludes or ()]  # after the caller's glob, which cannot bring them back
    cmd.append("--glob=!.*")  # last, so no glob can whitelist a hidden file or folder
    cmd.append(f"--regexp={args.pattern}")  # `--regexp=` keeps a leading '-' from being read as a flag
    return cmd


def _target(corpus: Corpus, path: str | None) -> list[str]:
    if not path or path.strip("/") in ("", "."):
        return []
    rel = PurePosixPath(path.replace("\\", "/").strip("/"))
    if ".." in rel.parts:
        raise PathOutsideCorpusError(f"path leaves the corpus with '..': {shown(path)}")
    if hidden_part(str(rel)):
        raise DocumentNotFoundError(f"hidden files and folders are not part of the corpus: {shown(path)}")
    if not is_document_id(str(rel)):
        raise DocumentNotFoundError(f"not a valid doc id or folder: {shown(path)}")
    try:
        resolved = corpus.path_of(str(rel))  # a document
    except DocumentNotFoundError:
        try:
            resolved = corpus.root.joinpath(*rel.parts).resolve()
            is_dir = resolved.is_dir()
        except (OSError, RuntimeError):
            raise DocumentNotFoundError(f"no document or folder {shown(path)} in the corpus") from None
        if resolved != corpus.root and not resolved.is_relative_to(corpus.root):
            raise PathOutsideCorpusError(f"{shown(path)} points outside the corpus (a symlink)") from None
        if not is_dir:
            raise
    rel_target = resolved.relative_to(corpus.root).as_posix()
    return ["--", rel_target] if rel_target != "." else []


_GLOB_SPECIAL = re.compile(r"([\\*?\[\]{}!])")


def _glob_literal(doc_id: str) -> str:
    """An anchored glob matching exactly ``doc_id``."""
    return "/" + _GLOB_SPECIAL.sub(r"\\\1", doc_id)


def _nocase(ext: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in ext)


def _sources(corpus: Corpus, path: str | None, entries: dict[str, Entry] | None = None,
             ) -> list[tuple[str, list[str], list[str]]]:
    """The ripgrep runs of one grep: (cwd, exclusion globs, target arguments). The corpus folder without the
    converted and unreadable files, and the text store (converted texts) when it has any under ``path``.
    ``entries``: the corpus listing, when the caller has it."""
    from sleuth.loaders import FORMATS, format_of

    target = _target(corpus, path)
    entries = corpus.entries() if entries is None else entries
    if target:
        rel = target[1]
        entry = entries.get(rel)
        if entry is not None and entry.status == "converted":
            return [(str(corpus.store.docs), [], target)]
        if entry is not None and entry.status == "unreadable":
            corpus.text_path(rel)  # raises UnreadableDocumentError (or MissingExtraError) with the reason
        if entry is not None:
            return [(str(corpus.root), [], target)]
    excludes = [f"!*{_nocase(ext)}" for ext in sorted(FORMATS)]
    excludes += [f"!{_glob_literal(d)}" for d, e in sorted(entries.items())
                 if e.status != "text" and format_of(d) == "text"]
    runs = [(str(corpus.root), excludes, target)]
    if any(e.status == "converted" for e in entries.values()):
        store = corpus.store.docs
        if not target or store.joinpath(*PurePosixPath(target[1]).parts).is_dir():
            runs.append((str(store), [], target))
    return runs


def grep(corpus: Corpus, args: GrepArgs, *, timeout: float = 30.0, max_line_chars: int = 300) -> GrepResult:
    t0 = time.perf_counter()
    mode = "files" if args.files_with_matches else "count" if args.count else "lines"
    parts: list[GrepResult] = []
    timed_out = False
    for cwd, excludes, target in _sources(corpus, args.path):
        left = timeout - (time.perf_counter() - t0)
        if left <= 0:
            timed_out = True
            break
        part, stopped = _run(corpus, args, mode, _command(args, mode, excludes) + target, cwd, left, max_line_chars)
        parts.append(part)
        timed_out = timed_out or stopped
        if stopped:
            break
    result = parts[0] if len(parts) == 1 else _merge(parts, args, mode)
    if timed_out:
        result.complete, result.stopped_by = False, "time limit"
        if not result.matches and not result.files and not result.counts:
            raise ToolTimeoutError(
                f"grep for {shown(args.pattern)} took longer than {timeout:g}s and found nothing yet"
            )
    result.seconds = round(time.perf_counter() - t0, 4)
    return result


def _run(corpus: Corpus, args: GrepArgs, mode: str, cmd: list[str], cwd: str, timeout: float,
         max_line_chars: int) -> tuple[GrepResult, bool]:
    """One ripgrep run into its own result; True when it was stopped at the time limit."""
    runner = Runner(cmd, cwd, timeout)
    result = GrepResult(pattern=args.pattern, mode=mode)
    try:
        if mode == "lines":
            _read_lines(runner, corpus, args, result, max_line_chars)
        else:
            _read_null(runner, args, result, mode)
    except BaseException:
        runner.stop()
        raise
    rc, stderr = runner.finish()
    _check(rc, stderr, args.pattern, runner, result)
    return result, runner.timed_out


def path_key(doc_id: str) -> tuple[str, ...]:
    """ripgrep's ``--sort=path`` order: by path component (``a/x`` before ``a.txt``), not by the whole string."""
    return tuple(doc_id.split("/"))


def _merge(parts: list[GrepResult], args: GrepArgs, mode: str) -> GrepResult:
    """One result from runs over disjoint sets of documents (the runs of :func:`_sources`, or of shards): the
    result one ripgrep run over all of them gives (matches in path order, the same caps, totals and notes)."""
    out = GrepResult(pattern=args.pattern, mode=mode)
    out.total_docs = sum(p.total_docs for p in parts)
    out.total_matches = sum(p.total_matches for p in parts)
    out.complete = all(p.complete for p in parts)
    out.stopped_by = next((p.stopped_by for p in parts if p.stopped_by), None)
    out.long_lines = sum(p.long_lines for p in parts)  # lines mode: recounted over what is shown, below
    errors = sorted((e for p in parts for e in p.errors), key=lambda e: path_key(e.partition(": ")[0]))
    out.errors = errors[:MAX_ERRORS_SHOWN]
    if mode == "files":
        files = sorted(f for p in parts for f in p.files)  # each run kept its first max_matches, sorted
        out.files = files[: args.max_matches]
        out.not_shown_docs = out.total_docs - len(out.files)
    elif mode == "count":
        counts = sorted(((d, n) for p in parts for d, n in p.counts.items()), key=lambda kv: (-kv[1], kv[0]))
        out.counts = dict(counts[: args.max_matches])
        out.not_shown_docs = out.total_docs - len(out.counts)
        out.not_shown_matches = out.total_matches - sum(out.counts.values())
    else:
        # stable: a document's matches stay in line order; each run's are its first max_matches in path order
        matches = sorted((m for p in parts for m in p.matches), key=lambda m: path_key(m.doc_id))
        out.matches = matches[: args.max_matches]
        out.long_lines = sum(_is_long(t) for m in out.matches for t in (m.text, *(x for _, x in m.before),
                                                                         *(x for _, x in m.after)))
        cut = len(matches) > len(out.matches) or any(p.not_shown_matches for p in parts)
        out.total_matches = max(out.total_matches, len(out.matches))
        out.not_shown_matches = max(0, out.total_matches - len(out.matches))
        if out.not_shown_matches:
            shown_docs = {m.doc_id for m in out.matches}
            out.not_shown_docs = max(0, out.total_docs - len(shown_docs)) + (1 if cut and out.matches else 0)
    return out


def _strip(p: str) -> str:
    return p[2:] if p.startswith("./") else p


def _read_null(runner: Runner, args: GrepArgs, result: GrepResult, mode: str) -> None:
    assert runner.proc.stdout is not None
    if mode == "files":
        files: list[str] = []
        for raw in nul_records(runner.proc.stdout, 8192):  # `--null`: each path ends with a NUL, no newline
            doc = _strip(raw.decode("utf-8", "surrogateescape"))
            if doc and is_document_id(doc):
                files.append(doc)
        files.sort()
        result.total_docs = len(files)
        result.files = files[: args.max_matches]
        result.not_shown_docs = len(files) - len(result.files)
        return
    counts: dict[str, int] = {}
    for raw, _cut in Lines(runner.proc.stdout, 8192):
        path, _, n = raw.partition(b"\0")
        doc = _strip(path.decode("utf-8", "surrogateescape"))
        if n.strip().isdigit() and is_document_id(doc):
            counts[doc] = int(n)
    result.total_docs = len(counts)
    result.total_matches = sum(counts.values())
    shown_counts = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: args.max_matches]
    result.counts = dict(shown_counts)
    result.not_shown_docs = len(counts) - len(shown_counts)
    result.not_shown_matches = result.total_matches - sum(result.counts.values())


def _clip(text: str, start: int | None, limit: int) -> str:
    """``text`` cut to ``limit`` characters, around character ``start`` when given."""
    text = text.rstrip("\r\n")
    if len(text) <= limit:
        return text
    if start is None:
        return text[:limit] + f" …[+{len(text) - limit} chars]"
    lo = max(0, min(start - limit // 3, len(text) - limit))
    hi = lo + limit
    return ("…" if lo else "") + text[lo:hi] + (f" …[+{len(text) - hi} chars]" if hi < len(text) else "")


def _char_index(raw: bytes, byte_pos: int) -> int:
    return len(raw[: max(0, byte_pos)].decode("utf-8", "replace"))


UNREADABLE_LONG_LINE = "[a line too long to show; the file could not be read back]"


def _is_long(text: str) -> bool:
    """Whether a shown line is a long line shown cut (what :func:`_long_line` returns)."""
    return text.endswith(LONG_LINE_NOTE) or text == UNREADABLE_LONG_LINE


def _long_line(corpus: Corpus, doc_id: str, offset: int, column: int | None, limit: int) -> str | None:
    """The part of the line at byte ``offset`` of ``doc_id`` around byte column ``column`` (1-based), read from
    the file; None when the line there is not longer than MAX_COLUMNS (a real line that only looks omitted)."""
    try:
        path = corpus.text_path(doc_id)  # the converted text for a PDF, DOCX, ... (what ripgrep searched)
        with open(path, "rb") as fh:
            fh.seek(offset)
            head = fh.read(MAX_COLUMNS + 1)
            if b"\n" in head[:MAX_COLUMNS] or len(head) <= MAX_COLUMNS:
                return None
            pos = offset + (column - 1 if column else 0)
            seg_start = max(offset, pos - 4 * (limit // 3) - 4)
            fh.seek(seg_start)
            seg = fh.read(8 * limit + 8).split(b"\n", 1)[0]
    except (OSError, DocumentNotFoundError, PathOutsideCorpusError, BinaryDocumentError):
        return UNREADABLE_LONG_LINE
    text = seg.decode("utf-8", "ignore")
    at = len(seg[: pos - seg_start].decode("utf-8", "ignore"))
    lo = max(0, at - limit // 3) if column else 0
    return ("…" if lo or seg_start > offset else "") + text[lo: lo + limit] + LONG_LINE_NOTE


def _read_lines(runner: Runner, corpus: Corpus, args: GrepArgs, result: GrepResult, max_line_chars: int) -> None:
    stdout = runner.proc.stdout
    assert stdout is not None
    lines = Lines(stdout, LINE_BUDGET)
    shown_docs: set[str] = set()
    docs_seen: list[str] = []
    pending_before: list[tuple[int, str]] = []
    pending_doc = ""
    last: GrepMatch | None = None
    full = False
    stats = b""
    for raw, cut in lines:
        nul = raw.find(b"\0")
        if nul == -1:  # `--` separators, ripgrep's notes, and the --stats block at the end
            if raw == b"--":
                pending_before = []
            elif raw[0:1].isdigit():
                stats += raw + b"\n"
            continue
        doc = _strip(raw[:nul].decode("utf-8", "surrogateescape"))
        rest = raw[nul + 1:]
        m = _MATCH_RE.match(rest)
        if m:
            if full:
                break
            if not is_document_id(doc):
                continue
            line_no, col, off = int(m[1]), int(m[2]), int(m[3])
            body = rest[m.end():]
            text = _show_line(corpus, doc, body, cut, off, col, max_line_chars, result)
            last = GrepMatch(doc_id=doc, line=line_no, text=text, before=pending_before)
            pending_before = []
            result.matches.append(last)
            if doc not in shown_docs:
                shown_docs.add(doc)
                docs_seen.append(doc)
            full = len(result.matches) >= args.max_matches
            continue
        c = _CONTEXT_RE.match(rest)
        if c is None or not is_document_id(doc):
            continue
        line_no, off = int(c[1]), int(c[2])
        if last is not None and last.doc_id == doc and line_no > last.line and line_no - last.line <= args.context and (
            not last.after or line_no > last.after[-1][0]
        ):
            text = _show_line(corpus, doc, rest[c.end():], cut, off, None, max_line_chars, result)
            last.after.append((line_no, text))
        elif not full:
            if pending_doc != doc or (pending_before and pending_before[-1][0] >= line_no):
                pending_before, pending_doc = [], doc
            pending_before.append(
                (line_no, _show_line(corpus, doc, rest[c.end():], cut, off, None, max_line_chars, result))
            )
    else:
        full = False
    if full:  # the rest is only counted; ripgrep's --stats block carries the totals
        extra, stats = lines.drain()
        extra += 1  # the match line that broke the loop
        lines_total = _STAT_LINES_RE.findall(stats)
        files_total = _STAT_FILES_RE.findall(stats)
        if lines_total and files_total:
            result.total_matches = int(lines_total[-1])
            result.total_docs = int(files_total[-1])
        else:
            result.complete = False
            result.total_matches = len(result.matches) + extra
            result.total_docs = len(shown_docs)
    else:
        lines_total = _STAT_LINES_RE.findall(stats)
        files_total = _STAT_FILES_RE.findall(stats)
        if lines_total and files_total and not runner.timed_out:
            result.total_matches = int(lines_total[-1])
            result.total_docs = int(files_total[-1])
        else:
            result.total_matches = len(result.matches)
            result.total_docs = len(shown_docs)
    result.total_matches = max(result.total_matches, len(result.matches))
    result.total_docs = max(result.total_docs, len(shown_docs))
    result.not_shown_matches = max(0, result.total_matches - len(result.matches))
    if result.not_shown_matches:
        # documents with matches not shown: those never shown, plus the last shown one if it was cut short
        result.not_shown_docs = max(0, result.total_docs - len(shown_docs)) + (1 if full else 0)


def _show_line(corpus: Corpus, doc: str, body: bytes, cut: bool, offset: int, col: int | None, limit: int,
               result: GrepResult) -> str:
    if cut or (_OMITTED_RE.fullmatch(body.rstrip(b"\r")) is not None):
        text = _long_line(corpus, doc, offset, col, limit)
        if text is not None:
            result.long_lines += 1
            return text
    decoded = body.decode("utf-8", "replace")
    return _clip(decoded, _char_index(body, col - 1) if col else None, limit)


def render(result: GrepResult, max_chars: int) -> tuple[str, bool]:
    """Text for a model, capped at ``max_chars``, with an explicit note of what was not shown."""
    lines: list[str] = []
    if result.mode == "files":
        head = f"{result.total_docs} documents match {shown(result.pattern)}"
        body = result.files
    elif result.mode == "count":
        head = f"{result.total_matches} matching lines in {result.total_docs} documents for {shown(result.pattern)}"
        body = [f"{doc}: {n}" for doc, n in result.counts.items()]
    else:
        head = f"{result.total_matches} matching lines in {result.total_docs} documents for {shown(result.pattern)}"
        body = []
        current = None
        for m in result.matches:
            if m.doc_id != current:
                body.append(f"== {m.doc_id}")
                current = m.doc_id
            body += [f"{n}- {t}" for n, t in m.before]
            body.append(f"{m.line}: {m.text}")
            body += [f"{n}- {t}" for n, t in m.after]
    if not result.total_matches and not result.files:
        errs = "; ".join(result.errors)
        tail = f" ({len(result.errors)} documents could not be searched: {errs})" if result.errors else ""
        return f"no matches for {shown(result.pattern)}{tail}", bool(result.errors)
    used = len(head)
    cut_at = len(body)
    for i, line in enumerate(body):
        if used + len(line) + 1 > max_chars - 200:
            cut_at = i
            break
        used += len(line) + 1
    lines = [head, *body[:cut_at]]
    truncated = cut_at < len(body) or bool(result.not_shown_matches or result.not_shown_docs or result.long_lines)
    truncated = truncated or bool(result.errors) or not result.complete
    notes = []
    if cut_at < len(body):
        notes.append(f"{len(body) - cut_at} more output lines cut at {max_chars} characters")
    if result.mode == "lines" and result.not_shown_matches:
        notes.append(f"{result.not_shown_matches} more matches in {result.not_shown_docs} documents not shown")
    elif result.not_shown_docs:
        notes.append(f"{result.not_shown_docs} more documents not shown")
    if result.stopped_by == "memory":
        notes.append("ripgrep ran out of memory (a very long line?) and stopped there; totals are lower bounds")
    elif not result.complete:
        notes.append("the search was stopped at its time limit; totals are lower bounds")
    if result.long_lines:
        notes.append(f"{result.long_lines} lines too long to show whole are shown cut around the match")
    if result.errors:
        notes.append(f"{len(result.errors)} documents could not be searched ({'; '.join(result.errors)}); "
                     "their matches are missing")
    if notes:
        advice = "Narrow the pattern, add a glob or path, or raise max_matches."
        lines.append("[truncated: " + "; ".join(notes) + f". {advice}]")
    return "\n".join(lines), truncated


def grep_tool(corpus: Corpus, *, timeout: float = 30.0, shards: int | None = None, ray: str | None = None
              ) -> Tool[GrepArgs]:
    """The ``grep`` tool; ``shards``: search that many parts of the corpus in parallel
    (:mod:`sleuth.tools.grep_shards`: the same results as one search), as Ray tasks on ``ray``'s cluster if given."""
    if shards is not None:
        from sleuth.tools.grep_shards import check_shards

        check_shards(shards)

    def run(args: GrepArgs) -> ToolResult:
        if shards is not None:
            from sleuth.tools.grep_shards import grep_sharded

            result = grep_sharded(corpus, args, shards=shards, timeout=timeout, ray=ray)
        else:
            result = grep(corpus, args, timeout=timeout)
        text, truncated = render(result, args.max_chars)
        return ToolResult(text=text, data=result.model_dump(), truncated=truncated)

    return Tool(
        "grep",
        "Search the raw text of every document with ripgrep. Returns matching lines with their doc id and line "
        "number. Use it for exact names, numbers and phrases, and to check a fact in context.",
        GrepArgs,
        run,
        tags={"corpus"},
        output_type=GrepResult,
    )
