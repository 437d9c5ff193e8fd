"""The lifecycle of an on-disk index, one mechanism for BM25, dense and enrichment indexes: open it, or build it
under a cross-process lock; sweep what killed builds left behind.

* :func:`open_or_build`: load the index; when it is missing, stale or corrupt, either raise (the caller did not
  allow a build) or take the index's build lock and look again (another process may have built it while this one
  waited) before building. Two processes opening a missing index at once build it once: one builds, the other
  waits and uses the result. The stale rule is the caller's ``stale`` function (corpus fingerprint, parameters,
  embedder), applied the same way everywhere: stale -> rebuild when ``rebuild`` is set, else
  :class:`StaleIndexError`.
* :func:`building`: the one way to write an index folder: hold the lock, sweep dead leftovers, then
  :func:`sleuth.fsutil.atomic_dir`. Builders call it directly, so even a build that does not go through
  :func:`open_or_build` is serialised with the others.
* The lock is ``.<name>.lock`` beside the index (a ``filelock`` flock: released by the kernel when its holder
  dies, so a killed build never leaves a stale lock). Leftover temp folders are judged by
  :func:`sleuth.fsutil.leftover_is_dead`: under the lock every tagged leftover is dead and is removed at once;
  without it (the lock is busy) only those whose process is gone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from sleuth.errors import IndexBusyError, IndexCorruptError, IndexMissingError, SearchIndexError, StaleIndexError

if TYPE_CHECKING:
    from filelock import FileLock

T = TypeVar("T")

LOCK_TIMEOUT_S = 3600.0  # how long a process waits for another one's build of the same index


def lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


def _lock(target: Path) -> FileLock:
    from filelock import FileLock

    # one instance per path in this process: re-entrant in a thread (open_or_build holds it while the builder
    # takes it again); other threads and processes wait
    return FileLock(str(lock_path(target)), is_singleton=True)


@contextmanager
def build_lock(target: Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold ``target``'s build lock, waiting at most ``timeout`` seconds for another holder."""
    from filelock import Timeout

    target.parent.mkdir(parents=True, exist_ok=True)
    lock = _lock(target)
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise IndexBusyError(
            f"another process has been building the index at {target} for over {timeout:.0f} s "
            f"(lock {lock_path(target)})"
        ) from None
    try:
        yield
    finally:
        lock.release()


def sweep_leftovers(target: Path) -> int:
    """Remove temp folders of dead builds of ``target``, without waiting: with the lock free, every tagged
    leftover; with a build running, only those whose process is gone. Never raises (a read-only corpus is fine)."""
    from filelock import Timeout

    from sleuth.fsutil import sweep_stale_builds

    if not target.parent.is_dir():
        return 0
    leftovers = (f".{target.name}.building.", f".{target.name}.old.")
    if not any(p.name.startswith(leftovers) for p in target.parent.iterdir()):
        return 0  # nothing to sweep: create no lock file (opening an index never writes into a corpus)
    try:
        lock = _lock(target)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return sweep_stale_builds(target.parent, target.name, locked=False)
        try:
            return sweep_stale_builds(target.parent, target.name, locked=True)
        finally:
            lock.release()
    except OSError:  # no permission to create the lock file: judge by process ids only
        try:
            return sweep_stale_builds(target.parent, target.name, locked=False)
        except OSError:
            return 0


@contextmanager
def building(target: Path, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Write a new version of the index folder ``target``: yields a temp folder that replaces ``target`` whole
    when the block succeeds (see :func:`sleuth.fsutil.atomic_dir`), under ``target``'s build lock."""
    from sleuth.fsutil import atomic_dir, sweep_stale_builds

    with build_lock(target, timeout=timeout):
        sweep_stale_builds(target.parent, target.name, locked=True)
        with atomic_dir(target) as tmp:
            yield tmp


@dataclass
class Opened(Generic[T]):
    index: T
    status: str  # "up to date", "up to date (built by another process)", "rebuilt (<reason>)"


def _identity(target: Path) -> tuple[int, int] | None:
    try:
        st = (target / "meta.json").stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns)


_REBUILT = {
    IndexMissingError: "built",
    StaleIndexError: "rebuilt (the corpus changed)",
    IndexCorruptError: "rebuilt (the old index was unreadable)",
}


def open_or_build(
    target: Path,
    *,
    load: Callable[[], T],
    stale: Callable[[T], str | None],
    build: Callable[[], object],
    rebuild: bool = False,
    build_missing: bool = True,
    force: bool = False,
    timeout: float = LOCK_TIMEOUT_S,
    what: str = "index",
    fix: str = "",
) -> Opened[T]:
    """Open the index at ``target`` with ``load`` (which raises IndexMissingError / IndexCorruptError /
    StaleIndexError), or build it with ``build``.

    ``stale(index)`` returns why a loaded index cannot serve (``None``: it can). A missing index is built when
    ``build_missing``; a stale or corrupt one is rebuilt when ``rebuild``, else the error is raised (a stale one
    as :class:`StaleIndexError` naming ``what``, the reason and the ``fix``). ``force`` rebuilds even an index
    that is up to date, unless another process rebuilt it while this one waited for the lock.
    """

    def attempt() -> tuple[T | None, SearchIndexError | None]:
        try:
            index = load()
        except (IndexMissingError, IndexCorruptError, StaleIndexError) as e:
            return None, e
        reason = stale(index)
        if reason is not None:
            return None, StaleIndexError(f"{what} at {target} is stale: {reason}", hint=fix or None)
        return index, None

    sweep_leftovers(target)
    seen = _identity(target)
    if force:
        status = "rebuilt (--rebuild)"
    else:
        index, problem = attempt()
        if index is not None:
            return Opened(index, "up to date")
        del index
        assert problem is not None
        if not (build_missing if isinstance(problem, IndexMissingError) else rebuild):
            raise problem
        status = _REBUILT.get(type(problem), f"rebuilt ({type(problem).__name__})")
    with build_lock(target, timeout=timeout):
        if _identity(target) != seen:  # another process (re)built it while we waited: look again
            index, _ = attempt()
            if index is not None:
                return Opened(index, "up to date (built by another process)")
            del index
        build()
        return Opened(load(), status)
