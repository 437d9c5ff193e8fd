"""Prompt templates are package data (``*.md`` files beside this module), loaded by name.

A template may start with a YAML-ish front matter block of ``key: value`` lines between ``---`` lines; ``load``
returns the body, ``load_with_meta`` returns ``(body, meta)``. Fill templates with ``str.format`` fields.
"""

from __future__ import annotations

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
