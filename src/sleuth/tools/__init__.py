"""Agent-facing tools. Each is a pydantic argument model plus a function, exportable as an OpenAI schema."""

from __future__ import annotations

from typing import Any

from sleuth.corpus import Corpus
from sleuth.tools.base import Tool, ToolArgs, Toolkit, ToolResult
from sleuth.tools.grep import grep_tool
from sleuth.tools.ls import ls_tool
from sleuth.tools.read import read_tool

__all__ = ["Tool", "ToolArgs", "ToolResult", "Toolkit", "corpus_tools", "grep_tool", "ls_tool", "read_tool"]
__all__ += ["openai_tools"]


def corpus_tools(corpus: Corpus | str, *, grep_timeout: float = 30.0) -> Toolkit:
    """grep, read and ls over one corpus: direct corpus interaction, no index needed."""
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    return Toolkit([grep_tool(c, timeout=grep_timeout), read_tool(c), ls_tool(c)])


def openai_tools(*args: Any, **kwargs: Any) -> Any:
    """(specs, dispatcher) for OpenAI function calling: see :func:`sleuth.integrations.openai_tools.openai_tools`.

    Imported on first use (sleuth.integrations imports sleuth.tools)."""
    from sleuth.integrations.openai_tools import openai_tools as impl

    return impl(*args, **kwargs)
