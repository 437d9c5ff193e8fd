"""One place that gathers every sleuth tool available for a corpus, for the MCP server, the OpenAI plug and the
LangChain wrappers.

Tools come from providers, one per engine family. A provider whose engine is not installed (an optional extra is
missing) or not configured (``ask`` without a model) is left out and the reason recorded in
:attr:`Toolset.omitted`, so a server can say what it does not offer instead of crashing when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleuth.errors import MissingExtraError, SleuthError
from sleuth.tools.base import Tool, Toolkit, ToolResult

# Every tool name a provider may contribute, in listing order.
TOOL_ORDER = ["ls", "grep", "read", "df", "search", "rerank", "ask"]


@dataclass
class Toolset:
    toolkit: Toolkit
    omitted: dict[str, str] = field(default_factory=dict)  # tool or provider name -> why it is not offered
    corpus: Any = None


def open_corpus(corpus: Any) -> Any:
    """A :class:`~sleuth.corpus.Corpus` from a Corpus, a path or a string."""
    from sleuth.corpus import Corpus

    if isinstance(corpus, Corpus):
        return corpus
    return Corpus(Path(corpus))


def _corpus_provider(corpus: Any, options: dict[str, Any]) -> list[Tool[Any]]:
    from sleuth.tools import corpus_tools

    return list(corpus_tools(corpus))


Provider = Callable[[Any, dict[str, Any]], list[Tool[Any]]]

PROVIDERS: dict[str, Provider] = {
    "corpus": _corpus_provider,
}


def build_toolkit(
    corpus: Any,
    include: Iterable[str] | None = None,
    *,
    extra_tools: Iterable[Tool[Any]] = (),
    **options: Any,
) -> Toolset:
    """Every available sleuth tool for ``corpus``, optionally only those named in ``include``.

    ``options`` are passed to the providers: ``model`` (a ChatModel, needed for ``ask``), ``reranker``,
    ``retrievers``. ``extra_tools`` are appended as they are (your own tools, served the same way).
    Names in ``include`` that no provider offers raise :class:`~sleuth.errors.ConfigError` naming the reason.
    """
    from sleuth.errors import ConfigError

    corpus = open_corpus(corpus)
    wanted = None if include is None else list(dict.fromkeys(include))
    tools: dict[str, Tool[Any]] = {}
    omitted: dict[str, str] = {}
    for provider_name, provider in PROVIDERS.items():
        try:
            got = provider(corpus, options)
        except MissingExtraError as e:
            omitted[provider_name] = f"{e.message}; {e.hint}"
            continue
        except ImportError as e:  # an engine module not present in this build
            omitted[provider_name] = f"not available: {e}"
            continue
        except SleuthError as e:
            omitted[provider_name] = str(e)
            continue
        for t in got:
            tools.setdefault(t.name, t)
    for t in extra_tools:
        if t.name in tools:
            raise ConfigError(f"duplicate tool name {t.name!r}", hint="rename your tool")
        tools[t.name] = t
    if wanted is not None:
        missing = [n for n in wanted if n not in tools]
        if missing:
            reasons = "; ".join(f"{n}: {omitted.get(n) or _reason_for(n, omitted)}" for n in missing)
            raise ConfigError(
                f"tools not available: {reasons}", hint=f"available tools: {', '.join(_ordered(tools))}"
            )
        selected = [tools[n] for n in wanted]
    else:
        selected = [tools[n] for n in _ordered(tools)]
    return Toolset(toolkit=Toolkit(selected), omitted=omitted, corpus=corpus)


def _ordered(tools: dict[str, Any]) -> list[str]:
    known = [n for n in TOOL_ORDER if n in tools]
    return known + [n for n in tools if n not in known]


def _reason_for(name: str, omitted: dict[str, str]) -> str:
    if omitted:
        return "its provider is unavailable (" + "; ".join(f"{k}: {v}" for k, v in omitted.items()) + ")"
    return "no such sleuth tool"


def safe_invoke(toolkit: Toolkit, name: str, arguments: Any, *, tracer: Any = None) -> ToolResult:
    """``Toolkit.invoke`` for remote callers: sleuth's real faults (a missing index, a dead model server) also
    come back as error results, with their hint. Other exceptions propagate."""
    try:
        return toolkit.invoke(name, arguments, tracer=tracer)
    except SleuthError as e:
        message = e.message + (f" (hint: {e.hint})" if e.hint else "")
        return ToolResult(
            text=f"Error ({type(e).__name__}): {message}",
            data=e.to_dict(),
            is_error=True,
            error_type=type(e).__name__,
        )
