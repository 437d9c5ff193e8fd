"""Atomic file-system helpers: a build either completes and replaces the old state, or leaves it untouched.

Temp folders are named ``.<name>.building.<owner>.<random>`` (and ``.<name>.old.<owner>.<random>`` for the copy
being replaced), where ``<owner>`` is ``p<pid>h<host hash>``: :func:`sweep_stale_builds` can tell a leftover of a
killed build (its process is gone) from the folder of a build running right now.

``tempfile.mkstemp``/``mkdtemp`` create owner-only files and folders (0600/0700) whatever the umask; what these
helpers publish gets the mode the user's umask gives a plain ``open``/``mkdir`` (:func:`apply_umask`)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from pydantic import BaseModel

M = TypeVar("M", bound="BaseModel")


def sleuth_home() -> Path:
    """``$SLEUTH_HOME`` or ``~/.cache/sleuth`` (created on demand by the callers that write there). Here, in a
    module of the standard library only, for the CLI's resident-process client (:mod:`sleuth.cli.resident`)."""
    env = os.environ.get("SLEUTH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sleuth"


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux ``/proc``)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (a brief window)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give ``path`` the mode a plain ``mkdir``/``open`` would (0777/0666 minus the umask); for files and folders
    made with ``tempfile`` (owner-only) before they are renamed into place. Folders inside are not changed."""
    path = Path(path)
    base = 0o777 if path.is_dir() else 0o666
    os.chmod(path, base & ~current_umask())


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8", *, durable: bool = True) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``; ``durable``: fsync the
    file first (a cache that is only rebuilt if lost may skip it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        apply_umask(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield a fresh temp folder beside ``target``; on success it replaces ``target`` whole, on any error (or
    KeyboardInterrupt) it is deleted and ``target`` is left as it was.

    The swap is two renames (old aside, new in), so a crash between them leaves ``target`` missing, never half
    written; the old copy is removed afterwards.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building.{owner_tag()}.", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    apply_umask(tmp)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.{owner_tag()}.", dir=target.parent))
        old.rmdir()
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


LEFTOVER_MAX_AGE_S = 3600.0  # a leftover whose owner cannot be checked is removed after this long
_OWNER_RE = re.compile(r"\.(?:building|old)\.p(?P<pid>\d+)h(?P<host>[0-9a-f]{6})\.")


def _host_hash() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:6]


def owner_tag() -> str:
    """``p<pid>h<host hash>``: who is writing a temp folder (part of its name)."""
    return f"p{os.getpid()}h{_host_hash()}"


def pid_alive(pid: int, *, zombie_alive: bool = True) -> bool:
    """Whether a process with this id runs on this machine. A zombie (exited, not yet reaped) counts as running
    unless ``zombie_alive`` is false (read from /proc; where that cannot be read, it counts as running)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    if zombie_alive:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def leftover_is_dead(path: Path, *, locked: bool = False, max_age_s: float = LEFTOVER_MAX_AGE_S) -> bool:
    """The one rule for a ``.<name>.building.*`` / ``.<name>.old.*`` folder: is its writer gone?

    * ``locked``: the caller holds the target's build lock, and every builder of that target holds it for as long
      as its temp folder exists, so a folder tagged with an owner is dead, whoever the owner was.
    * otherwise a folder tagged by this machine is dead when its process is gone.
    * a folder whose owner cannot be checked (untagged: an older sleuth; or tagged by another host) is dead once
      it is older than ``max_age_s``: it may belong to a build running right now.
    """
    m = _OWNER_RE.search(path.name)
    if m is not None:
        if locked:
            return True
        if m.group("host") == _host_hash():
            pid = int(m.group("pid"))
            return pid != os.getpid() and not pid_alive(pid)
    try:
        return time.time() - path.stat().st_mtime > max_age_s
    except OSError:
        return False


def sweep_stale_builds(
    parent: str | Path, name: str, *, locked: bool = False, max_age_s: float = LEFTOVER_MAX_AGE_S
) -> int:
    """Remove leftovers of interrupted builds of ``name`` in ``parent`` whose writer is gone (see
    :func:`leftover_is_dead`); the temp folder of a build running now is left alone. Returns how many were removed."""
    parent = Path(parent)
    n = 0
    if not parent.is_dir():
        return 0
    for p in parent.iterdir():
        if p.name.startswith((f".{name}.building.", f".{name}.old.")) and leftover_is_dead(
            p, locked=locked, max_age_s=max_age_s
        ):
            shutil.rmtree(p, ignore_errors=True)
            n += not p.exists()
    return n


def read_jsonl_models(path: Path, model: type[M], key: Callable[[M], str]) -> dict[str, M]:
    """The records of a resumable JSONL output file (an enrichment, a usage generation), by ``key``; the last
    record of a key wins. A line that does not validate (a torn line from an interrupted run) is skipped."""
    out: dict[str, M] = {}
    if not path.is_file():
        return out
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = model.model_validate_json(line)
            except ValueError:
                continue  # a torn line from an interrupted run
            out[key(rec)] = rec
    return out


def end_torn_line(path: Path) -> None:
    """A run killed mid-write leaves a last line without its newline: end it, so the next record starts a line of
    its own (the torn one is then skipped by :func:`read_jsonl_models`, and its item is done again)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        fh.seek(-1, 2)
        torn = fh.read(1) != b"\n"
    if torn:
        with path.open("a", encoding="utf-8") as fh:
            fh.write("\n")
