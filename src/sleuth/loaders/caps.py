"""What a loader returns and the limits every conversion runs under (documented in the README's formats section)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class LoaderCaps(BaseModel):
    """Bounds on converting one file. A file over ``max_file_bytes`` is not opened; a conversion past
    ``timeout_s`` or ``memory_mb`` is stopped (the converter process is killed and restarted); text past
    ``max_chars`` or pages past ``max_pages`` are left out, with a note."""

    max_file_bytes: int = Field(256 << 20, ge=1)  # 256 MiB
    max_pages: int = Field(5000, ge=1)
    max_chars: int = Field(20_000_000, ge=1000)
    timeout_s: float = Field(120.0, gt=0)
    memory_mb: int = Field(2048, ge=256)  # the converter process's address space (RLIMIT_AS)


class Converted(BaseModel):
    """A file's text as sleuth reads it, with what the loader knows (pages, title, author, encoding) and notes on
    anything left out."""

    text: str
    loader: str  # pdf, docx, pptx, html, text
    meta: dict[str, Any] = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
