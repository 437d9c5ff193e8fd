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
from typing import Any, Literal

from pydantic import Field

from sleuth.callcontrol import CallControl
from sleuth.errors import ConfigError, MissingExtraError, SleuthError
from sleuth.tools.base import Tool, ToolArgs, Toolkit, ToolResult

# Every tool name a provider may contribute, in listing order.
TOOL_ORDER = ["ls", "grep", "read", "df", "search", "workspace_grep", "rerank", "ask"]


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


# Retrieval methods tried for `search` after bm25 (which also backs `df`). sira needs a model; dense and hybrid
# need the `dense` extra and an embedding index.
EXTRA_METHODS = ("sira", "dense", "hybrid")


def _dense_dir() -> str:
    """The folder of the dense index the default dense search opens (over passages, or whole documents)."""
    from sleuth.retrieval import PASSAGES_DEFAULT
    from sleuth.retrieval.passages import DENSE_PASSAGES

    return DENSE_PASSAGES if PASSAGES_DEFAULT["dense"] else "dense"


def _index_provider(corpus: Any, options: dict[str, Any]) -> list[Tool[Any]]:
    """``search`` and ``df`` over the corpus's BM25 index, plus the other search methods that are available.

    ``build_index`` (default True) builds a missing BM25 index and rebuilds a stale one; False uses only a fresh
    existing index (else both tools are omitted, with the reason). ``methods``: the search methods wanted besides
    bm25; None (default) means every one usable without building anything new (dense and hybrid when their index
    exists, sira when a model is given). Methods named explicitly have their indexes built when ``build_index``.
    ``workspace`` (default False): add ``workspace_grep`` (grep inside the top n BM25 documents of a query).
    """
    from sleuth.retrieval import RETRIEVERS, get_retriever
    from sleuth.retrieval.fresh import FreshRetrievers
    from sleuth.tools.search import search_tools

    build = bool(options.get("build_index", True))
    model = options.get("model")
    explicit = options.get("methods")
    wanted = [m for m in (EXTRA_METHODS if explicit is None else explicit) if m != "bm25"]
    build_extra = build and explicit is not None
    skipped: dict[str, str] = options.setdefault("_omitted", {})
    started: list[bool] = []

    def open_all() -> tuple[dict[str, Any], dict[str, Any]]:
        """Every retriever; called again by FreshRetrievers whenever the corpus changes (the BM25 index is then
        updated incrementally; a dense index is rebuilt when it was built at the start or building is allowed)."""
        again = bool(started)
        retrievers = {"bm25": get_retriever("bm25", corpus, build_missing=build, rebuild=build)}
        failed: dict[str, Any] = {}
        for method in wanted:
            if method not in RETRIEVERS:
                failed[method] = "not in this build of sleuth"
                continue
            if method == "sira" and model is None:
                failed[method] = "needs a model (start with --model)"
                continue
            if method in ("dense", "hybrid") and not build_extra and not (corpus.state_dir / _dense_dir()).exists():
                # checked before opening: opening imports torch (seconds) only to find no index
                failed[method] = "no dense index (build it with `sleuth search QUERY --corpus CORPUS --method dense`)"
                continue
            opts: dict[str, Any] = {}
            if method == "dense":
                opts = {"build_missing": build_extra, "rebuild": again and build}
            elif method == "hybrid":
                opts = {"dense": {"build_missing": build_extra, "rebuild": again and build}}
            try:
                retrievers[method] = get_retriever(method, corpus, model=model, **opts)
            except (SleuthError, ImportError) as e:
                failed[method] = e if isinstance(e, SleuthError) else str(e)
        started.append(True)
        return retrievers, failed

    fresh = FreshRetrievers(corpus, open_all, interval_s=float(options.get("freshness_interval", 0.0)))
    for method, why in fresh.failed.items():
        skipped[f"search:{method}"] = str(why)
    tools = search_tools(corpus, fresh)
    if options.get("workspace"):
        from sleuth.tools.workspace import workspace_tool

        tools.append(workspace_tool(corpus, fresh))
    return tools


def _rerank_provider(corpus: Any, options: dict[str, Any]) -> list[Tool[Any]]:
    """``rerank``: reorder doc ids with ``reranker`` (a Reranker, or a name for
    :func:`sleuth.rerank.get_reranker`: listwise, first, icr). Default: listwise over ``model`` when one is given."""
    reranker = options.get("reranker")
    model = options.get("model")
    if reranker is None:
        if model is None:
            raise ConfigError(
                "rerank needs a reranker", hint="pass reranker= (start `sleuth mcp` with --reranker or --model)"
            )
        reranker = "listwise"
    from sleuth.tools.rerank import rerank_tool

    if isinstance(reranker, str):
        from sleuth.rerank import get_reranker

        reranker = get_reranker(reranker, model=model)
    return [rerank_tool(corpus, reranker)]


class AskArgs(ToolArgs):
    question: str = Field(min_length=1, description="The question to answer from the documents.")
    agent: Literal["router", "react", "sira", "iter-retgen"] = Field(
        "router", description="Search strategy: router picks one; react = grep/read/search loop."
    )


def _ask_provider(corpus: Any, options: dict[str, Any]) -> list[Tool[Any]]:
    """``ask``: sleuth's own agent answers with doc ids. Needs ``model`` (a ChatModel).

    The run reports every agent step to the call's :class:`~sleuth.callcontrol.CallControl` (MCP progress
    notifications) and stops at the next step or model call once the call is cancelled."""
    model = options.get("model")
    if model is None:
        raise ConfigError("ask needs a model", hint="pass model= (or start `sleuth mcp` with --model)")
    from sleuth.agents.agent import Agent
    from sleuth.agents.state import AgentResult
    from sleuth.llm.controlled import ControlledModel

    budget = options.get("budget")

    def run(args: AskArgs, control: CallControl) -> ToolResult:
        result: AgentResult | None = None
        with Agent.for_corpus(corpus, model=ControlledModel(model, control), agent=args.agent, budget=budget) as a:
            steps = a.stream(args.question)
            try:
                for n, event in enumerate(steps, 1):
                    if event.kind == "done":
                        result = event.result
                        break
                    control.progress(f"#{n} {event.node}" + (f": {event.summary}" if event.summary else ""))
                    control.check()
            finally:
                getattr(steps, "close", lambda: None)()  # a cancelled run's graph is closed here, in this thread
        assert result is not None
        sources = ", ".join(result.doc_ids) or "none"
        head = result.answer if result.answer is not None else f"No answer: {result.note}"
        text = f"{head}\n\nSources: {sources}\n[{result.strategy}; {result.steps} steps; stop: {result.stop_reason}]"
        return ToolResult(text=text, data=result.model_dump(mode="json"))

    return [
        Tool(
            "ask",
            "Let sleuth's search agent answer a question from the documents (it searches and reads on its own) and "
            "cite the doc ids it used. Slower than searching yourself.",
            AskArgs,
            run,
            tags={"agent"},
            output_type=AgentResult,
            takes_control=True,
        )
    ]


Provider = Callable[[Any, dict[str, Any]], list[Tool[Any]]]

PROVIDERS: dict[str, Provider] = {
    "ls, grep, read": _corpus_provider,
    "search, df, workspace_grep": _index_provider,
    "rerank": _rerank_provider,
    "ask": _ask_provider,
}


def build_toolkit(
    corpus: Any,
    include: Iterable[str] | None = None,
    *,
    extra_tools: Iterable[Tool[Any]] = (),
    **options: Any,
) -> Toolset:
    """Every available sleuth tool for ``corpus``, optionally only those named in ``include``.

    ``options`` are passed to the providers: ``model`` (a ChatModel: adds ``ask`` and the ``sira`` search
    method), ``build_index`` (default True: build a missing BM25 index, rebuild a stale one), ``methods``
    (extra search methods to try, default sira/dense/hybrid), ``workspace`` (True: add ``workspace_grep``),
    ``reranker`` (a Reranker or a name: adds ``rerank``;
    default listwise over ``model``), ``budget`` (for ``ask``). ``extra_tools`` are appended as they are
    (your own tools, served the same way).
    Names in ``include`` that no provider offers raise :class:`~sleuth.errors.ConfigError` naming the reason.
    """
    corpus = open_corpus(corpus)
    options = {**options, "_omitted": {}}
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
        except OSError as e:  # e.g. a read-only corpus folder where the index cannot be written
            omitted[provider_name] = f"{type(e).__name__}: {e}"
            continue
        for t in got:
            tools.setdefault(t.name, t)
    omitted.update(options["_omitted"])
    for t in extra_tools:
        if t.name in tools:
            raise ConfigError(f"duplicate tool name {t.name!r}", hint="rename your tool")
        tools[t.name] = t
    if wanted is not None:
        missing = [n for n in wanted if n not in tools]
        if missing:
            reasons = "; ".join(f"{n}: {_reason_for(n, omitted)}" for n in missing)
            raise ConfigError(f"tools not available: {reasons}", hint=f"available tools: {', '.join(_ordered(tools))}")
        selected = [tools[n] for n in wanted]
    else:
        selected = [tools[n] for n in _ordered(tools)]
    return Toolset(toolkit=Toolkit(selected), omitted=omitted, corpus=corpus)


def _ordered(tools: dict[str, Any]) -> list[str]:
    known = [n for n in TOOL_ORDER if n in tools]
    return known + [n for n in tools if n not in known]


def _reason_for(name: str, omitted: dict[str, str]) -> str:
    for key, why in omitted.items():
        if name in key.replace(",", " ").split():
            return why
    return "no such sleuth tool"


def safe_invoke(
    toolkit: Toolkit, name: str, arguments: Any, *, tracer: Any = None, control: CallControl | None = None
) -> ToolResult:
    """``Toolkit.invoke`` for remote callers: sleuth's real faults (a missing index, a dead model server) also
    come back as error results, with their hint. Other exceptions propagate."""
    try:
        return toolkit.invoke(name, arguments, tracer=tracer, control=control)
    except SleuthError as e:
        message = e.message + (f" (hint: {e.hint})" if e.hint else "")
        return ToolResult(
            text=f"Error ({type(e).__name__}): {message}",
            data=e.to_dict(),
            is_error=True,
            error_type=type(e).__name__,
        )
