"""sleuth tools as LangChain ``BaseTool`` objects, for people who build their own LangGraph graphs.

Each wrapper keeps the sleuth tool's name, description and pydantic argument model (so ``bind_tools`` and
LangGraph's ``ToolNode`` see the same schema an OpenAI client sees) and returns ``(text, data)`` as
``content_and_artifact``: the model reads the text, the graph can keep the structured data.

Faults the caller made (a doc id outside the corpus, a bad regex) and sleuth's real faults (a missing index) are
raised as ``ToolException`` carrying sleuth's message and hint; with ``handle_tool_error=True`` (the default here)
LangChain turns them into a tool message with ``status="error"`` the model can read, so a graph keeps running.
Arguments that fail the schema are reported by LangChain's own validation (``ToolNode`` catches those).

``langchain-core`` is an optional dependency (``pip install 'sleuth-search[langchain]'``; LangGraph already
brings it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sleuth.errors import MissingExtraError, SleuthError
from sleuth.tools.base import Tool, Toolkit


def _base_tool_class() -> type:
    try:
        from langchain_core.tools import BaseTool
    except ImportError as e:  # pragma: no cover - only without the extra
        raise MissingExtraError("langchain", "langchain-core", "LangChain tools") from e
    return BaseTool


_WRAPPER: type | None = None


def _wrapper_class() -> type:
    """Build the ``BaseTool`` subclass once, on first use (keeps langchain out of ``import sleuth``)."""
    global _WRAPPER
    if _WRAPPER is not None:
        return _WRAPPER
    from langchain_core.tools import ToolException
    from pydantic import ConfigDict

    BaseTool = _base_tool_class()

    class SleuthTool(BaseTool):  # type: ignore[misc, valid-type]
        """A LangChain tool that runs a sleuth :class:`~sleuth.tools.base.Tool`."""

        model_config = ConfigDict(arbitrary_types_allowed=True)

        sleuth_tool: Any
        tracer: Any = None
        response_format: str = "content_and_artifact"
        handle_tool_error: Any = True

        def _run(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> tuple[str, Any]:
            try:
                result = self.sleuth_tool.invoke(kwargs, tracer=self.tracer)
            except SleuthError as e:
                raise ToolException(f"Error ({type(e).__name__}): {e}") from e
            if result.is_error:  # the tool message carries status="error" and sleuth's text
                raise ToolException(result.text)
            return result.text, result.data

    _WRAPPER = SleuthTool
    return SleuthTool


def to_langchain_tool(tool: Tool[Any], *, tracer: Any = None) -> Any:
    """Wrap one sleuth tool as a LangChain ``BaseTool``."""
    cls = _wrapper_class()
    return cls(
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_model,
        sleuth_tool=tool,
        tracer=tracer,
    )


def langchain_tools(
    corpus: Any = None,
    include: Iterable[str] | None = None,
    *,
    toolkit: Toolkit | None = None,
    tracer: Any = None,
    **toolset_options: Any,
) -> list[Any]:
    """sleuth's tools for ``corpus`` (or the tools of ``toolkit``) as LangChain tools.

    ``include`` picks tool names (default: every tool available for the corpus). Other keyword arguments go to
    :func:`sleuth.integrations.toolset.build_toolkit` (for example ``model=`` to add ``ask``).
    """
    if toolkit is None:
        if corpus is None:
            raise ValueError("pass a corpus (folder or Corpus) or a toolkit")
        from sleuth.integrations.toolset import build_toolkit

        toolkit = build_toolkit(corpus, include=include, **toolset_options).toolkit
    elif include is not None:
        toolkit = toolkit.subset(include)
    return [to_langchain_tool(t, tracer=tracer) for t in toolkit]
