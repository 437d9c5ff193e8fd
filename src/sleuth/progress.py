"""Progress bars for long jobs (imports, index builds, embedding, evals), on stderr, off when not a terminal.

Library functions take ``progress: bool | None`` (None = only when stderr is a terminal) and use
:func:`progress_bar`; nothing is printed from constructors.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Bar:
    def __init__(self, progress: Any, task: Any) -> None:
        self._p, self._t = progress, task

    def advance(self, n: float = 1) -> None:
        if self._p is not None:
            self._p.advance(self._t, n)

    def update(self, **fields: Any) -> None:
        """``completed=``, ``total=``, ``description=`` (rich's names)."""
        if self._p is not None:
            self._p.update(self._t, **fields)


def enabled(progress: bool | None) -> bool:
    if progress is None:
        return sys.stderr.isatty()
    return progress


@contextmanager
def progress_bar(total: float | None, description: str, progress: bool | None = None) -> Iterator[_Bar]:
    if not enabled(progress):
        yield _Bar(None, None)
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

    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as p:
        yield _Bar(p, p.add_task(description, total=total))
