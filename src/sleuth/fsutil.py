"""Atomic file-system helpers: a build either completes and replaces the old state, or leaves it untouched.

``tempfile.mkstemp``/``mkdtemp`` create owner-only files and folders (0600/0700) whatever the umask; what these
helpers publish gets the mode the user's umask gives a plain ``open``/``mkdir`` (:func:`apply_umask`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding=encoding) as fh:
            fh.write(text)
            fh.flush()
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
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building.", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    apply_umask(tmp)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        old.rmdir()
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def sweep_stale_builds(parent: str | Path, name: str) -> int:
    """Remove leftovers of interrupted builds of ``name`` in ``parent``; returns how many were removed."""
    parent = Path(parent)
    n = 0
    if not parent.is_dir():
        return 0
    for p in parent.iterdir():
        if p.name.startswith((f".{name}.building.", f".{name}.old.")):
            shutil.rmtree(p, ignore_errors=True)
            n += 1
    return n
