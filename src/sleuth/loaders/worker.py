"""The converter process: PDF, DOCX, PPTX and HTML files are turned into text in a child process that sleuth can
stop, so no file can hang or exhaust the caller.

:class:`Converter` starts ``python -c <serve>`` lazily and reuses it for every file of a sync. Each request is one
JSON line (path, format, caps) and each answer one JSON line (the text, or the reason it cannot be read). The child
runs under ``RLIMIT_AS = caps.memory_mb`` (a ``MemoryError`` is an answer; a hard crash is noticed as the end of its
output), and the parent waits ``caps.timeout_s`` per file: past that the child is killed, the file is reported
("took longer than ... s"), and the next file gets a new child.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

from sleuth.errors import MissingExtraError, UnreadableDocumentError
from sleuth.loaders.caps import Converted, LoaderCaps

_SERVE = (
    "import sys; sys.path.insert(0, {root!r}); from sleuth.loaders.worker import serve; serve({memory_mb})"
)


def _load(fmt: str, path: str, caps: LoaderCaps) -> Converted:
    if fmt == "pdf":
        from sleuth.loaders.pdf import load_pdf

        return load_pdf(path, caps)
    if fmt == "docx":
        from sleuth.loaders.office import load_docx

        return load_docx(path, caps)
    if fmt == "pptx":
        from sleuth.loaders.office import load_pptx

        return load_pptx(path, caps)
    if fmt == "html":
        from sleuth.loaders import load_html

        return load_html(path, caps)
    raise ValueError(f"no converter for {fmt!r}")


def _answer(req: dict[str, Any]) -> dict[str, Any]:
    caps = LoaderCaps.model_validate(req["caps"])
    try:
        return {"ok": True, "converted": _load(req["format"], req["path"], caps).model_dump()}
    except UnreadableDocumentError as e:
        return {"ok": False, "message": e.message, "reason": e.reason, "hint": e.hint}
    except MissingExtraError as e:
        return {"ok": False, "missing": [e.context["extra"], e.context["package"], req["format"].upper() + " files"]}
    except MemoryError:
        return {"ok": False, "reason": "too large",
                "message": f"converting it needs more than the memory cap ({caps.memory_mb} MB)"}
    except RecursionError:
        return {"ok": False, "reason": "damaged", "message": "nested too deeply to read"}
    except OSError as e:
        return {"ok": False, "reason": "unreadable", "message": f"cannot be read ({type(e).__name__}: {e.strerror})"}


def serve(memory_mb: int) -> None:
    """The child's loop: one JSON request per stdin line, one JSON answer per stdout line."""
    import logging
    import resource

    logging.disable(logging.WARNING)  # pypdf logs every oddity of a file; the answer says what matters
    limit = memory_mb << 20
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit already: keep it
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = _answer(json.loads(line))
        out.write(json.dumps(answer) + "\n")
        out.flush()


class Converter:
    """A reusable converter child process (see the module docstring). Not thread-safe: one per sync."""

    def __init__(self, caps: LoaderCaps | None = None) -> None:
        self.caps = caps or LoaderCaps()
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()

    def __enter__(self) -> Converter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> subprocess.Popen[str]:
        root = str(Path(__file__).resolve().parent.parent.parent)
        code = _SERVE.format(root=root, memory_mb=self.caps.memory_mb)
        proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, encoding="utf-8")
        self._lines = queue.Queue()
        threading.Thread(target=self._pump, args=(proc.stdout, self._lines), daemon=True).start()
        self._proc = proc
        return proc

    @staticmethod
    def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _kill(self) -> int | None:
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
        return proc.wait()

    def convert(self, path: Path, fmt: str) -> Converted:
        """The text of ``path`` (a ``fmt`` file), or :class:`UnreadableDocumentError` with the reason."""
        caps = self.caps
        size = path.stat().st_size
        if size > caps.max_file_bytes:
            raise UnreadableDocumentError(
                f"{size / 2**20:.0f} MiB, over the {caps.max_file_bytes / 2**20:.0f} MiB cap on converted files",
                reason="too large",
            )
        proc = self._proc if self._proc is not None and self._proc.poll() is None else self._start()
        assert proc.stdin is not None
        try:
            proc.stdin.write(json.dumps({"path": str(path), "format": fmt, "caps": caps.model_dump()}) + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            rc = self._kill()
            raise UnreadableDocumentError(f"the converter process died (exit code {rc})", reason="crashed") from None
        try:
            line = self._lines.get(timeout=caps.timeout_s)
        except queue.Empty:
            self._kill()
            raise UnreadableDocumentError(
                f"converting it took longer than {caps.timeout_s:g} s (the time cap)", reason="timeout"
            ) from None
        if line is None:  # the child died: a hard out-of-memory crash, or a segfault in a parser
            rc = self._kill()
            why = "ran out of memory" if rc in (-6, -9, 1) else f"crashed (exit code {rc})"
            raise UnreadableDocumentError(
                f"the converter {why} on it (memory cap {caps.memory_mb} MB)", reason="too large" if rc in (
                    -6, -9, 1) else "crashed"
            )
        answer = json.loads(line)
        if answer.get("ok"):
            return Converted.model_validate(answer["converted"])
        if "missing" in answer:
            extra, package, feature = answer["missing"]
            raise MissingExtraError(extra, package, f"reading {feature}")
        raise UnreadableDocumentError(answer["message"], reason=answer.get("reason", "unreadable"),
                                      hint=answer.get("hint") or None)

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
