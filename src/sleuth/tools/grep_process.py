"""ripgrep as a bounded process, for the grep tool (:mod:`sleuth.tools.grep`): started with a deadline and a
stderr reader, its output read in pieces of bounded size (lines cut to a budget, NUL-separated records), its exit
codes and messages classified (out of memory, per-file errors, a pattern it cannot compile)."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator
from typing import IO

from sleuth.corpus import is_document_id
from sleuth.errors import ToolExecutionError

CHUNK = 1 << 16
_COUNT_RE = re.compile(rb"\x00\d+:\d+:\d+:")


class Lines:
    """Lines of a byte stream, each cut to ``budget`` bytes (the rest of a longer line is skipped, not stored)."""

    def __init__(self, stream: IO[bytes], budget: int) -> None:
        self.stream = stream
        self.budget = budget
        self.buf = b""
        self.eof = False

    def _fill(self) -> bool:
        chunk = self.stream.read1(CHUNK) if hasattr(self.stream, "read1") else self.stream.read(CHUNK)
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def __iter__(self) -> Lines:
        return self

    def __next__(self) -> tuple[bytes, bool]:
        while True:
            i = self.buf.find(b"\n", 0, self.budget + 1)
            if i != -1:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                return line, False
            if len(self.buf) > self.budget:
                line = self.buf[: self.budget]
                self._skip_line()
                return line, True
            if not self._fill():
                if self.buf:
                    line, self.buf = self.buf, b""
                    return line, True  # a torn last line (the process was killed)
                raise StopIteration

    def _skip_line(self) -> None:
        while True:
            i = self.buf.find(b"\n")
            if i != -1:
                self.buf = self.buf[i + 1:]
                return
            self.buf = b""
            if not self._fill():
                return

    def drain(self) -> tuple[int, bytes]:
        """Read the rest without splitting it: (matching records seen, the last 4 KiB)."""
        count = len(_COUNT_RE.findall(self.buf))
        tail = self.buf[-4096:]
        self.buf = b""
        while self._fill():
            count += len(_COUNT_RE.findall(self.buf))
            tail = (tail + self.buf)[-4096:]
            self.buf = b""
        return count, tail


class Runner:
    """A ripgrep process with a deadline and a stderr reader (so neither pipe can block the other)."""

    def __init__(self, cmd: list[str], cwd: str, timeout: float) -> None:
        try:
            self.proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=CHUNK)
        except OSError as e:  # E2BIG and the like: never a traceback
            raise ToolExecutionError(f"could not start ripgrep ({type(e).__name__}: {e.strerror})") from e
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

    def stop(self) -> None:
        """Kill ripgrep now (used when reading fails); safe to call twice."""
        self._timer.cancel()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def out_of_memory(rc: int, stderr: str) -> bool:
    """ripgrep aborted on a refused allocation (a memory cap such as RLIMIT_AS or a cgroup) or was killed."""
    return rc < 0 and ("memory allocation of" in stderr or rc == -9)


def file_errors(stderr: str) -> list[str]:
    """`rg: path: why` lines (a file that could not be searched), as `path: why` with hidden files left out."""
    out = []
    for line in stderr.splitlines():
        if not line.startswith("rg: "):
            continue  # the detail lines of a compile error are indented or start with "error:"
        path, sep, why = line[4:].partition(": ")
        path = path[2:] if path.startswith("./") else path
        if sep and why and not path.startswith(("regex parse error", "PCRE2", "error")) and is_document_id(path):
            out.append(f"{path}: {why.strip()[:200]}")
    return out


def regex_error(stderr: str) -> str:
    """ripgrep's multi-line report (a banner, the pattern with a caret, one error per engine) as one line."""
    lines = [ln.strip() for ln in stderr.replace("rg: ", "").splitlines()]
    found = [ln.removeprefix("error: ") for ln in lines if ln.startswith(("error:", "PCRE2:"))]
    return "; ".join(dict.fromkeys(found))[:400] or " ".join(ln for ln in lines if ln)[:400]


def nul_records(stream: IO[bytes], budget: int) -> Iterator[bytes]:
    """The NUL-terminated records of a byte stream; a record longer than ``budget`` bytes is skipped whole."""
    buf = b""
    skipping = False
    while True:
        chunk = stream.read1(CHUNK) if hasattr(stream, "read1") else stream.read(CHUNK)
        if not chunk:
            if buf and not skipping:
                yield buf  # a torn last record (the process was killed)
            return
        buf += chunk
        *records, buf = buf.split(b"\0")
        for i, rec in enumerate(records):
            if skipping and i == 0:
                skipping = False
                continue
            yield rec
        if len(buf) > budget:
            buf, skipping = b"", True
