"""Progress of long jobs (imports, index builds, embedding, enrichment, evals, model start-up, weight assembly),
always on stderr, never mixed with results on stdout.

* On a terminal: a rich bar (description, bar, done/total, elapsed, time left).
* Otherwise (a log file, a pipe, CI): a plain line every ``SLEUTH_PROGRESS_INTERVAL`` seconds (default 10),
  printed by a heartbeat thread even while no item finishes, with items done, rate and time left, and one final
  line. A job shorter than the interval prints nothing::

      sleuth: embedding (minilm): 1,216/5,183 (23%), 38.2/s, 1m44s left, 32s elapsed
      sleuth: embedding (minilm): done 5,183 in 2m15s (38.4/s)

Library functions take ``progress: bool | None``: ``False`` is silent; ``True`` or ``None`` (the default) show it
as above. :func:`progress_bar` is the one entry point; nothing is printed from constructors.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

DEFAULT_INTERVAL_S = 10.0


def interval_s() -> float:
    """Seconds between plain progress lines: ``SLEUTH_PROGRESS_INTERVAL`` (default 10)."""
    try:
        return max(0.05, float(os.environ.get("SLEUTH_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


def enabled(progress: bool | None) -> bool:
    return progress is not False


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _num(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:,.1f}"


class _Bar:
    """What a job updates: :meth:`advance` by items done, :meth:`update` (``completed=``, ``total=``,
    ``description=``, rich's names). A silent bar ignores both."""

    def __init__(self, total: float | None, description: str) -> None:
        self.total, self.description, self.completed = total, description, 0.0
        self.t0 = time.monotonic()

    def advance(self, n: float = 1) -> None:
        self.completed += n

    def update(self, **fields: Any) -> None:
        for key in ("completed", "total", "description"):
            if key in fields and fields[key] is not None:
                setattr(self, key, fields[key])

    def close(self) -> None:
        return None


class _RichBar(_Bar):
    def __init__(self, progress: Any, total: float | None, description: str) -> None:
        super().__init__(total, description)
        self._p = progress
        self._t = progress.add_task(description, total=total)

    def advance(self, n: float = 1) -> None:
        super().advance(n)
        self._p.advance(self._t, n)

    def update(self, **fields: Any) -> None:
        super().update(**fields)
        self._p.update(self._t, **fields)


class _PlainBar(_Bar):
    """Plain lines on a stream from a heartbeat thread; a final line when at least one was printed."""

    def __init__(self, total: float | None, description: str, stream: TextIO, every_s: float) -> None:
        super().__init__(total, description)
        self._stream, self._every = stream, every_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._printed = False
        self._thread = threading.Thread(target=self._beat, name="sleuth-progress", daemon=True)
        self._thread.start()

    def advance(self, n: float = 1) -> None:
        with self._lock:
            self.completed += n

    def update(self, **fields: Any) -> None:
        with self._lock:
            super().update(**fields)

    def line(self) -> str:
        with self._lock:
            done, total, desc = self.completed, self.total, self.description
        elapsed = time.monotonic() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{_num(done)}/{_num(total)} ({100 * done / total:.0f}%)" if total else f"{_num(done)} done"]
        if done:
            parts.append(f"{rate:,.1f}/s" if rate >= 0.1 else f"{1 / rate:,.0f}s each" if rate else "")
            if total and rate > 0 and done < total:
                parts.append(f"{_duration((total - done) / rate)} left")
        parts.append(f"{_duration(elapsed)} elapsed")
        return f"sleuth: {desc}: " + ", ".join(p for p in parts if p)

    def _write(self, text: str) -> None:
        try:
            self._stream.write(text + "\n")
            self._stream.flush()
        except (OSError, ValueError):  # a closed or broken stream never breaks the job
            self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(self._every):
            self._write(self.line())
            self._printed = True

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._printed:
            elapsed = time.monotonic() - self.t0
            rate = f" ({self.completed / elapsed:,.1f}/s)" if elapsed > 0 and self.completed else ""
            self._write(f"sleuth: {self.description}: done {_num(self.completed)} in {_duration(elapsed)}{rate}")


@contextmanager
def progress_bar(
    total: float | None, description: str, progress: bool | None = None, *, stream: TextIO | None = None
) -> Iterator[_Bar]:
    """A bar for ``total`` items (None: unknown) on stderr (or ``stream``), closed when the block ends."""
    out = stream if stream is not None else sys.stderr
    if not enabled(progress):
        yield _Bar(total, description)
        return
    if not _isatty(out):
        bar = _PlainBar(total, description, out, interval_s())
        try:
            yield bar
        finally:
            bar.close()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = [TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=Console(file=out), transient=False) as p:
        yield _RichBar(p, total, description)


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


@contextmanager
def status(description: str, progress: bool | None = None, *, stream: TextIO | None = None) -> Iterator[_Bar]:
    """A job with no item count (a server starting): elapsed time only."""
    with progress_bar(None, description, progress, stream=stream) as bar:
        yield bar


__all__ = ["DEFAULT_INTERVAL_S", "enabled", "interval_s", "progress_bar", "status"]
