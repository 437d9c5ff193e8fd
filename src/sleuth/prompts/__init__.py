"""Prompt templates are package data (``*.md`` files beside this module), loaded by name.

A template may start with a YAML-ish front matter block of ``key: value`` lines between ``---`` lines; ``load``
returns the body, ``load_with_meta`` returns ``(body, meta)``. Fill templates with ``str.format`` fields.
A body may be cut into named parts by marker lines ``=== NAME ===``; ``load_sections`` returns them by name, each
exactly as written (spaces kept; only the line break after a marker and the one before the next are not part).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources


@cache
def load_with_meta(name: str) -> tuple[str, dict[str, str]]:
    fname = name if "." in name else f"{name}.md"
    try:
        text = resources.files(__package__).joinpath(fname).read_text(encoding="utf-8")
    except FileNotFoundError as e:
        available = sorted(p.name for p in resources.files(__package__).iterdir() if p.name.endswith(".md"))
        raise KeyError(f"no prompt named {name!r}; available: {available}") from e
    meta: dict[str, str] = {}
    if text.startswith("---\n"):
        head, _, body = text[4:].partition("\n---\n")
        for line in head.splitlines():
            if ":" in line:
                k, _, v = line.partition(":")
                meta[k.strip()] = v.strip()
        text = body
    return text.strip("\n"), meta


def load(name: str) -> str:
    return load_with_meta(name)[0]


_SECTION = re.compile(r"^=== (\w+) ===$", re.MULTILINE)


@cache
def load_sections(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """``({section name: text}, meta)`` of a template whose body is cut by ``=== NAME ===`` lines."""
    body, meta = load_with_meta(name)
    parts = _SECTION.split(body)
    if parts[0].strip():
        raise KeyError(f"prompt {name!r} has text before its first '=== NAME ===' section")
    return {k: v.removeprefix("\n").removesuffix("\n") for k, v in zip(parts[1::2], parts[2::2], strict=True)}, meta
