"""A running call's link to whoever started it: progress reports out, a cancel request in.

A tool that declares it (``Tool(..., takes_control=True)``) is given the call's :class:`CallControl` by
``Toolkit.invoke(..., control=)``; the MCP server makes one per ``tools/call`` (progress notifications, the client's
cancel, the call's deadline). The tool reports what it is doing with :meth:`CallControl.progress` and calls
:meth:`CallControl.check` where it can stop (the ``ask`` tool: after every agent step and before every model call,
through :class:`sleuth.llm.controlled.ControlledModel`); once the call is cancelled, ``check`` raises
:class:`~sleuth.errors.CallCancelledError`. A model request already sent finishes (it is bounded by the model's
timeout and token limit); nothing new is started.

Without a caller (a plain ``Tool.run``), a tool gets a fresh control nobody cancels and whose reports go nowhere.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sleuth.errors import CallCancelledError

logger = logging.getLogger(__name__)

MAX_PROGRESS_CHARS = 300


class CallControl:
    """Thread-safe: the tool runs in a worker thread, the caller cancels from another."""

    def __init__(self, on_progress: Callable[[str], None] | None = None) -> None:
        self._cancelled = threading.Event()
        self._reason = ""
        self._on_progress = on_progress

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def reason(self) -> str:
        return self._reason

    def cancel(self, reason: str = "the caller cancelled the call") -> None:
        if not self._cancelled.is_set():
            self._reason = reason
            self._cancelled.set()

    def check(self) -> None:
        """Raise :class:`~sleuth.errors.CallCancelledError` once the call is cancelled."""
        if self._cancelled.is_set():
            raise CallCancelledError(self._reason or "the call was cancelled")

    def progress(self, message: str) -> None:
        """Report one line (cut to :data:`MAX_PROGRESS_CHARS`). Never raises: a failing receiver is logged."""
        if self._on_progress is None:
            return
        try:
            self._on_progress(" ".join(str(message).split())[:MAX_PROGRESS_CHARS])
        except Exception:
            logger.exception("progress receiver failed")

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, waking at once on cancel; True when the call is cancelled."""
        return self._cancelled.wait(seconds)
