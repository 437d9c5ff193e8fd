"""`grep`: ripgrep over the raw corpus, run as a subprocess with an argument list (never a shell).

The output of ``rg --json`` is parsed as it streams. Once ``max_matches`` matching lines are collected, the rest
of rg's output is only counted (a byte scan, no JSON parsing), so a pattern that matches gigabytes costs little
more than ripgrep itself; the totals come from rg's own summary, and the result says how much was not shown.
"""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from sleuth.corpus import Corpus
from sleuth.errors import DocumentNotFoundError, InvalidPatternError, ToolExecutionError, ToolTimeoutError
from sleuth.rg import base_args
from sleuth.tools.base import Tool, ToolArgs, ToolResult

CHUNK = 1 << 20
_MATCH = b'{"type":"match"'
_BEGIN = b'{"type":"begin"'


class GrepArgs(ToolArgs):
    pattern: str = Field(min_length=1, description="Regular expression (Rust regex syntax; PCRE2 features such as "
                         "look-around are used when needed), or literal text with fixed_strings=true.")
    path: str | None = Field(None, description="A doc id or folder (relative to the corpus root) to search in. "
                             "Default: the whole corpus.")
    glob: str | None = Field(None, description="Only search doc ids matching this glob, e.g. '*.md' or 'reports/**'.")
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
    complete: bool = True  # false when the search was stopped early (timeout)
    seconds: float = 0.0


def _text(obj: dict[str, Any]) -> str:
    if "text" in obj:
        return obj["text"]
    return base64.b64decode(obj.get("bytes", "")).decode("utf-8", "replace")


def _doc_id(obj: dict[str, Any]) -> str:
    p = _text(obj)
    return p[2:] if p.startswith("./") else p


def _clip(line: str, start_byte: int | None, limit: int) -> str:
    line = line.rstrip("\r\n")
    if len(line) <= limit:
        return line
    if start_byte is None:
        return line[:limit] + f" …[+{len(line) - limit} chars]"
    start = len(line.encode("utf-8")[:start_byte].decode("utf-8", "ignore"))
    lo = max(0, start - limit // 3)
    hi = lo + limit
    return ("…" if lo else "") + line[lo:hi] + (f" …[+{len(line) - hi} chars]" if hi < len(line) else "")


class _Runner:
    """A ripgrep process with a deadline and a stderr reader (so neither pipe can block the other)."""

    def __init__(self, cmd: list[str], cwd: str, timeout: float) -> None:
        self.proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=CHUNK)
        self.timed_out = False
        self._stderr = bytearray()
        self._t_err = threading.Thread(target=self._drain_stderr, daemon=True)
        self._t_err.start()
        self._timer = threading.Timer(timeout, self._kill)
        self._timer.daemon = True
        self._timer.start()

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read(4096), b""):  # type: ignore[union-attr]
            if len(self._stderr) < 65536:
                self._stderr.extend(chunk)

    def _kill(self) -> None:
        self.timed_out = True
        self.proc.kill()

    def finish(self) -> tuple[int, str]:
        rc = self.proc.wait()
        self._timer.cancel()
        self._t_err.join(timeout=5)
        return rc, self._stderr.decode("utf-8", "replace")


def _check(rc: int, stderr: str, pattern: str, runner: _Runner, timeout: float) -> None:
    if runner.timed_out:
        return
    low = stderr.lower()
    if rc == 2 and ("regex parse error" in low or "error parsing" in low or ("pcre2" in low and "error" in low)):
        raise InvalidPatternError(f"invalid regex {pattern!r}: {_regex_error(stderr)}")
    if rc not in (0, 1, 2):
        raise ToolExecutionError(f"ripgrep exited with code {rc}: {stderr.strip()[:500]}")


def _regex_error(stderr: str) -> str:
    """ripgrep's multi-line report (a banner, the pattern with a caret, one error per engine) as one line."""
    lines = [ln.strip() for ln in stderr.replace("rg: ", "").splitlines()]
    found = [ln.removeprefix("error: ") for ln in lines if ln.startswith(("error:", "PCRE2:"))]
    return "; ".join(dict.fromkeys(found))[:400] or " ".join(ln for ln in lines if ln)[:400]


def _command(args: GrepArgs, mode: str) -> list[str]:
    cmd = base_args()
    if mode == "files":
        cmd += ["--files-with-matches", "--null"]
    elif mode == "count":
        cmd += ["--count", "--null"]
    else:
        cmd += ["--json"]
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
        cmd.append(f"--glob={args.glob}")
    cmd.append(f"--regexp={args.pattern}")  # `--regexp=` keeps a leading '-' from being read as a flag
    return cmd


def _target(corpus: Corpus, path: str | None) -> list[str]:
    if not path or path in (".", "./"):
        return []
    rel = PurePosixPath(path.strip("/"))
    try:
        resolved = corpus.path_of(str(rel))  # a document
    except DocumentNotFoundError:
        resolved = corpus.root.joinpath(*rel.parts).resolve()
        if not resolved.is_relative_to(corpus.root) or ".." in rel.parts:
            raise
        if not resolved.is_dir():
            raise
    return ["--", str(resolved.relative_to(corpus.root))]


def grep(corpus: Corpus, args: GrepArgs, *, timeout: float = 30.0, max_line_chars: int = 300) -> GrepResult:
    t0 = time.perf_counter()
    mode = "files" if args.files_with_matches else "count" if args.count else "lines"
    cmd = _command(args, mode) + _target(corpus, args.path)
    runner = _Runner(cmd, str(corpus.root), timeout)
    result = GrepResult(pattern=args.pattern, mode=mode)
    if mode == "lines":
        _read_json(runner, args, result, max_line_chars)
    else:
        _read_null(runner, args, result, mode)
    rc, stderr = runner.finish()
    _check(rc, stderr, args.pattern, runner, timeout)
    if runner.timed_out:
        result.complete = False
        if not result.matches and not result.files and not result.counts:
            raise ToolTimeoutError(f"grep for {args.pattern!r} took longer than {timeout:g}s and found nothing yet")
    result.seconds = round(time.perf_counter() - t0, 4)
    return result


def _read_null(runner: _Runner, args: GrepArgs, result: GrepResult, mode: str) -> None:
    assert runner.proc.stdout is not None
    data = runner.proc.stdout.read()
    if mode == "files":
        files = sorted(_strip(p) for p in data.decode("utf-8", "replace").split("\0") if p.strip())
        result.total_docs = len(files)
        result.files = files[: args.max_matches]
        result.not_shown_docs = len(files) - len(result.files)
        return
    counts: dict[str, int] = {}
    for line in data.decode("utf-8", "replace").splitlines():
        path, _, n = line.partition("\0")
        if n.strip().isdigit():
            counts[_strip(path)] = int(n)
    result.total_docs = len(counts)
    result.total_matches = sum(counts.values())
    shown = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: args.max_matches]
    result.counts = dict(shown)
    result.not_shown_docs = len(counts) - len(shown)
    result.not_shown_matches = result.total_matches - sum(result.counts.values())


def _strip(p: str) -> str:
    return p[2:] if p.startswith("./") else p


def _read_json(runner: _Runner, args: GrepArgs, result: GrepResult, max_line_chars: int) -> None:
    stdout = runner.proc.stdout
    assert stdout is not None
    shown_docs: set[str] = set()
    fully_shown = 0
    pending_before: list[tuple[int, str]] = []
    last: GrepMatch | None = None
    full = False
    summary: dict[str, Any] | None = None
    for raw in stdout:
        msg = json.loads(raw)
        kind, data = msg["type"], msg["data"]
        if kind == "match":
            if full:
                break
            subs = data.get("submatches") or [{}]
            last = GrepMatch(
                doc_id=_doc_id(data["path"]),
                line=data.get("line_number") or 0,
                text=_clip(_text(data["lines"]), subs[0].get("start"), max_line_chars),
                before=pending_before,
            )
            pending_before = []
            result.matches.append(last)
            shown_docs.add(last.doc_id)
            full = len(result.matches) >= args.max_matches
        elif kind == "context":
            item = (data.get("line_number") or 0, _clip(_text(data["lines"]), None, max_line_chars))
            doc = _doc_id(data["path"])
            if last is not None and last.doc_id == doc and item[0] - last.line <= args.context and (
                not last.after or item[0] > last.after[-1][0]
            ):
                last.after.append(item)
            elif not full:
                pending_before.append(item)
        elif kind == "begin":
            pending_before = []
        elif kind == "end":
            if _doc_id(data["path"]) in shown_docs:
                fully_shown += 1
        elif kind == "summary":
            summary = data
    else:
        full = False
    if full:  # the rest is only counted; rg's summary line carries the totals
        tail = b""
        extra_matches = 1  # the match line that broke the loop
        while True:
            chunk = stdout.read(CHUNK)
            if not chunk:
                break
            extra_matches += chunk.count(_MATCH)
            tail = (tail + chunk)[-4096:]
        last_line = tail.rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:
            msg = json.loads(last_line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            msg = {}
        if msg.get("type") == "summary":
            summary = msg["data"]
        else:
            result.complete = False
            result.total_matches = len(result.matches) + extra_matches
    if summary is not None:
        stats = summary.get("stats", {})
        result.total_matches = stats.get("matched_lines", len(result.matches))
        result.total_docs = stats.get("searches_with_match", len(shown_docs))
    elif not full:
        result.total_matches = len(result.matches)
        result.total_docs = len(shown_docs)
    result.not_shown_matches = max(0, result.total_matches - len(result.matches))
    result.not_shown_docs = max(0, result.total_docs - fully_shown) if result.not_shown_matches else 0


def render(result: GrepResult, max_chars: int) -> tuple[str, bool]:
    """Text for a model, capped at ``max_chars``, with an explicit note of what was not shown."""
    lines: list[str] = []
    if result.mode == "files":
        head = f"{result.total_docs} documents match {result.pattern!r}"
        body = result.files
    elif result.mode == "count":
        head = f"{result.total_matches} matching lines in {result.total_docs} documents for {result.pattern!r}"
        body = [f"{doc}: {n}" for doc, n in result.counts.items()]
    else:
        head = f"{result.total_matches} matching lines in {result.total_docs} documents for {result.pattern!r}"
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
        return f"no matches for {result.pattern!r}", False
    used = len(head)
    cut_at = len(body)
    for i, line in enumerate(body):
        if used + len(line) + 1 > max_chars - 200:
            cut_at = i
            break
        used += len(line) + 1
    lines = [head, *body[:cut_at]]
    truncated = cut_at < len(body) or bool(result.not_shown_matches or result.not_shown_docs)
    notes = []
    if cut_at < len(body):
        notes.append(f"{len(body) - cut_at} more output lines cut at {max_chars} characters")
    if result.mode == "lines" and result.not_shown_matches:
        notes.append(f"{result.not_shown_matches} more matches in {result.not_shown_docs} documents not shown")
    elif result.not_shown_docs:
        notes.append(f"{result.not_shown_docs} more documents not shown")
    if not result.complete:
        notes.append("the search was stopped at its time limit; totals are lower bounds")
    if notes:
        lines.append("[truncated: " + "; ".join(notes) + ". Narrow the pattern, add a glob or path, or raise max_matches.]")
    return "\n".join(lines), truncated


def grep_tool(corpus: Corpus, *, timeout: float = 30.0) -> Tool[GrepArgs]:
    def run(args: GrepArgs) -> ToolResult:
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
    )
