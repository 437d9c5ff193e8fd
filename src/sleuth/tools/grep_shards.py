"""Sharded grep: the corpus split into ``shards`` parts of about equal file counts, ripgrep run on each part in
parallel (a thread per shard, each driving its own ripgrep processes), the results merged into the result one
ripgrep run over the whole corpus gives: the same matches in the same order (path order, ``--sort=path``), the
same caps (``max_matches`` over all shards, ``max_count`` per document), totals, truncation notes, long-line cuts
and errors (:func:`sleuth.tools.grep._merge`, the merge grep already uses for the corpus folder and the converted
texts). ``tests/integration/test_grep_shards.py`` checks it against one run on generated corpora (10k files
always; 100k in the slow variant).

A shard is a contiguous range of the search root's files in path order, given to ripgrep as the folders it covers
whole (ripgrep walks them, with the glob and hidden-file rules) and the files of folders it covers only in part
(named one by one, in chunks that keep the command line short; ripgrep searches named files whatever the glob,
so sleuth applies the same rules to them first: :func:`sleuth.globs.compile_glob`, hidden files, and the files
grep leaves to the converted-text run). The time limit is the whole call's: every run gets what is left of it.

On one machine this spreads ripgrep's single-threaded line mode (sleuth streams it with ``--threads=1``) over the
cores; with ``ray`` the same split goes to a Ray cluster's workers as tasks (each opens the corpus from its path)
and the driver merges what they return.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_left
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

from sleuth.corpus import Corpus, is_document_id
from sleuth.errors import ConfigError, ToolTimeoutError, shown
from sleuth.globs import compile_glob
from sleuth.tools.grep import GrepArgs, GrepResult, _command, _merge, _run, _sources, _target, grep, path_key

MAX_ARG_BYTES = 64 * 1024  # named files per ripgrep call, in bytes of arguments (far below ARG_MAX)
MAX_SHARDS = 256


def _files(base: Path, prefix: str, listing: Iterable[str] | None = None) -> list[str]:
    """Every visible regular file under ``base`` (no symlinks, no hidden parts: what ripgrep walks), as paths
    ``prefix + relative path``, in ``--sort=path`` order; from ``listing`` (the corpus's doc ids, the same rule)
    when given."""
    if listing is not None:
        return sorted((d for d in listing if d.startswith(prefix)), key=path_key)
    out: list[str] = []
    stack = [(str(base), prefix)]
    while stack:
        d, pre = stack.pop()
        try:
            entries = list(os.scandir(d))
        except OSError:
            continue
        for e in entries:
            if e.name.startswith(".") or e.is_symlink():
                continue
            if e.is_dir(follow_symlinks=False):
                stack.append((e.path, f"{pre}{e.name}/"))
            elif e.is_file(follow_symlinks=False):
                out.append(pre + e.name)
    out.sort(key=path_key)
    return out


def _cover(files: list[str], lo: int, hi: int, prefix: str) -> list[tuple[str, bool]]:
    """The ripgrep arguments that search exactly ``files[lo:hi]``, as (path, is a folder): each folder whose files
    all lie in the range (the outermost such), and every other file by name; in path order."""
    out: list[tuple[str, bool]] = []
    i = lo
    depth0 = prefix.count("/")
    while i < hi:
        parts = files[i].split("/")
        for depth in range(depth0 + 1, len(parts)):  # the outermost folder below the search root ...
            key = tuple(parts[:depth])
            first = bisect_left(files, (*key, ""), key=path_key)
            last = bisect_left(files, (*key, "\U0010ffff"), key=path_key)
            if first >= lo and last <= hi:  # ... whose files are all in this shard: walked by ripgrep
                out.append(("/".join(key), True))
                i = last
                break
        else:
            out.append((files[i], False))  # named: the file alone
            i += 1
    return out


def shard_args(base: Path, prefix: str, shards: int, listing: Iterable[str] | None = None,
               ) -> list[list[tuple[str, bool]]]:
    """ripgrep path arguments (relative to the run's folder, with whether each is a folder) of up to ``shards``
    parts of about equal file counts under ``base`` (``prefix``: ``base`` relative to the run's folder, ``""`` or
    ``"dir/"``); ``listing``: the files, when the caller has them."""
    files = _files(base, prefix, listing)
    n = min(shards, len(files))
    if n == 0:
        return []
    bounds = [round(i * len(files) / n) for i in range(n + 1)]
    return [_cover(files, a, b, prefix) for a, b in pairwise(bounds) if b > a]


def _chunks(paths: list[str]) -> list[list[str]]:
    """``paths`` in order, cut into runs whose arguments are at most :data:`MAX_ARG_BYTES` long."""
    out: list[list[str]] = []
    cur: list[str] = []
    size = 0
    for p in paths:
        if size + len(p) + 1 > MAX_ARG_BYTES and cur:
            out.append(cur)
            cur, size = [], 0
        cur.append(p)
        size += len(p) + 1
    if cur:
        out.append(cur)
    return out


def check_shards(shards: object) -> None:
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"grep shards must be a whole number in 1..{MAX_SHARDS}, got {shards!r}")


def grep_sharded(corpus: Corpus, args: GrepArgs, *, shards: int, timeout: float = 30.0,
                 max_line_chars: int = 300, ray: str | None = None) -> GrepResult:
    """:func:`sleuth.tools.grep.grep` over ``shards`` parts of the corpus searched in parallel, merged into the
    result of one run (see the module docstring). One document (``path`` names a file) is one run. ``ray``: the
    shards run as Ray tasks on that cluster (:func:`sleuth.cluster.connect`; the corpus at the same path on every
    node) instead of threads here."""
    check_shards(shards)
    t0 = time.perf_counter()
    mode = "files" if args.files_with_matches else "count" if args.count else "lines"
    glob = compile_glob(args.glob) if args.glob else None
    entries = corpus.entries()
    runs: list[list[tuple[str, list[str]]]] = [[] for _ in range(shards)]  # per shard: (cwd, command) in order
    for cwd, excludes, target in _sources(corpus, args.path, entries):
        base = Path(cwd).joinpath(*target[1].split("/")) if target else Path(cwd)
        if not base.is_dir():  # one document
            return grep(corpus, args, timeout=timeout, max_line_chars=max_line_chars)
        prefix = f"{target[1]}/" if target else ""
        in_store = Path(cwd) != corpus.root

        def named_ok(p: str, in_store: bool = in_store) -> bool:
            """What one walk would have searched: a visible document id the glob selects, and in the corpus
            folder only UTF-8 text read in place (the rest is the converted-text run's)."""
            if not is_document_id(p) or (glob is not None and not glob.match(p)):
                return False
            return in_store or (p in entries and entries[p].status == "text")

        cmd = _command(args, mode, excludes)
        listing = None if in_store else entries.keys()  # the corpus folder's files: listed once already
        for i, paths in enumerate(shard_args(base, prefix, shards, listing)):
            kept = [p for p, folder in paths if folder or named_ok(p)]
            for chunk in _chunks(kept):
                runs[i].append((cwd, [*cmd, "--", *chunk]))
    return _execute(corpus, args, mode, runs, t0, timeout, max_line_chars, ray)


def grep_documents(corpus: Corpus, args: GrepArgs, doc_ids: list[str], *, timeout: float = 30.0,
                   max_line_chars: int = 300, shards: int = 1) -> GrepResult:
    """:func:`sleuth.tools.grep.grep` over the documents ``doc_ids`` only (a workspace), as one ripgrep run over
    a folder holding just them would search them: ``args.glob`` and ``args.path`` narrow them further, converted
    documents are searched in their converted text, documents that are gone or unreadable are left out. Costs
    what the documents cost, whatever the corpus's size (no listing of the corpus). ``shards``: parallel parts."""
    from sleuth.errors import DocumentNotFoundError

    check_shards(shards)
    t0 = time.perf_counter()
    mode = "files" if args.files_with_matches else "count" if args.count else "lines"
    glob = compile_glob(args.glob) if args.glob else None
    target = _target(corpus, args.path)  # a path's own errors (outside the corpus, hidden, missing), as grep's
    under = target[1] if target else ""
    by_source: dict[str, list[str]] = {str(corpus.root): [], str(corpus.store.docs): []}
    for d in sorted(set(doc_ids), key=path_key):
        if not is_document_id(d) or (glob is not None and not glob.match(d)):
            continue
        if under and d != under and not d.startswith(under + "/"):
            continue
        try:
            status = corpus.entry(d).status
        except DocumentNotFoundError:  # removed since the search that named it
            continue
        if status in ("text", "converted"):
            by_source[str(corpus.root) if status == "text" else str(corpus.store.docs)].append(d)
    cmd = _command(args, mode)
    runs: list[list[tuple[str, list[str]]]] = [[] for _ in range(shards)]
    for cwd, docs in by_source.items():
        n = min(shards, len(docs))
        bounds = [round(i * len(docs) / n) for i in range(n + 1)] if n else []
        for i, (a, b) in enumerate(pairwise(bounds)):
            for chunk in _chunks(docs[a:b]):
                runs[i].append((cwd, [*cmd, "--", *chunk]))
    return _execute(corpus, args, mode, runs, t0, timeout, max_line_chars)


def _shard_runs(corpus: Corpus, args: GrepArgs, mode: str, todo: list[tuple[str, list[str]]], left: float,
                max_line_chars: int) -> list[tuple[GrepResult, bool]]:
    """One shard's runs in order within ``left`` seconds (from now): each part's result and whether it stopped."""
    t0 = time.perf_counter()
    done = []
    for cwd, cmd in todo:
        remaining = left - (time.perf_counter() - t0)
        if remaining <= 0:
            done.append((GrepResult(pattern=args.pattern, mode=mode), True))
            break
        done.append(_run(corpus, args, mode, cmd, cwd, remaining, max_line_chars))
        if done[-1][1]:
            break
    return done


def _remote_shard_runs(root: str, state_dir: str, args: GrepArgs, mode: str, todo: list[tuple[str, list[str]]],
                       left: float, max_line_chars: int) -> list[tuple[GrepResult, bool]]:
    """A shard on a Ray worker: the corpus opened from its path (the same path on every node)."""
    return _shard_runs(Corpus(root, state_dir=state_dir), args, mode, todo, left, max_line_chars)


def _execute(corpus: Corpus, args: GrepArgs, mode: str, runs: list[list[tuple[str, list[str]]]], t0: float,
             timeout: float, max_line_chars: int, ray: str | None = None) -> GrepResult:
    """Each shard's runs in order, the shards in parallel (threads here, or Ray tasks on the cluster at ``ray``),
    within one time limit; one merged result."""
    parts: list[GrepResult] = []
    stopped: list[bool] = []
    busy = [r for r in runs if r]
    left = timeout - (time.perf_counter() - t0)
    if ray:
        from sleuth.cluster import connect

        rt = connect(ray)
        task = rt.remote(num_cpus=1)(_remote_shard_runs)
        refs = [task.remote(str(corpus.root), str(corpus.state_dir), args, mode, todo, left, max_line_chars)
                for todo in busy]
        results = rt.get(refs, timeout=max(left, 0) + 30)  # a task's own limit is left; the rest is transport
    else:
        with ThreadPoolExecutor(max(1, len(busy)), thread_name_prefix="grep-shard") as pool:
            results = list(pool.map(lambda todo: _shard_runs(corpus, args, mode, todo, left, max_line_chars), busy))
    for done in results:
        parts += [p for p, _ in done]
        stopped += [s for _, s in done]
    result = _merge(parts, args, mode) if parts else GrepResult(pattern=args.pattern, mode=mode)
    if any(stopped):
        result.complete, result.stopped_by = False, "time limit"
        if not result.matches and not result.files and not result.counts:
            raise ToolTimeoutError(
                f"grep for {shown(args.pattern)} took longer than {timeout:g}s and found nothing yet")
    result.seconds = round(time.perf_counter() - t0, 4)
    return result
