"""Agent-facing tools. Each is a pydantic argument model plus a function, exportable as an OpenAI schema."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sleuth.corpus import Corpus
from sleuth.tools.base import Tool, ToolArgs, Toolkit, ToolResult
from sleuth.tools.grep import grep_tool
from sleuth.tools.ls import ls_tool
from sleuth.tools.read import read_tool

if TYPE_CHECKING:  # the lazy alias of __getattr__, for type checkers
    from sleuth.integrations.openai_tools import openai_tools as openai_tools

__all__ = ["Tool", "ToolArgs", "ToolResult", "Toolkit", "corpus_tools", "grep_tool", "ls_tool", "read_tool"]
__all__ += ["openai_tools"]


def corpus_tools(corpus: Corpus | str, *, grep_timeout: float = 30.0) -> Toolkit:
    """grep, read and ls over one corpus: direct corpus interaction, no index needed."""
    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    return Toolkit([grep_tool(c, timeout=grep_timeout), read_tool(c), ls_tool(c)])


def __getattr__(name: str) -> Any:
    """``sleuth.tools.openai_tools``: a compatibility alias of :func:`sleuth.integrations.openai_tools.openai_tools`.

    Tools never import integrations or agents (integrations build on tools); the alias is resolved only when the
    name is asked for, so importing or running any tool loads neither."""
    if name == "openai_tools":
        from sleuth.integrations.openai_tools import openai_tools

        return openai_tools
    raise AttributeError(f"module 'sleuth.tools' has no attribute {name!r}")
