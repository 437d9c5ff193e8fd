"""Sleuth's default agent set-up over a corpus folder: the model, the retrievers, the react toolkit.

* retrievers: ``bm25`` (the corpus's BM25 index, built on first use when missing) and ``sira`` (one model call
  proposes evidence phrases, one weighted BM25 call);
* toolkit: ``grep``, ``read``, ``ls`` (direct corpus interaction), ``search`` (methods bm25 and sira) and ``df``,
  ``rerank`` (``rerank="auto"``: none for the embedded local model, listwise for any other model), and ``answer``.

Why "auto": with the packaged 0.5B model every LLM reranker made BM25's order worse (docs/results/rerank.md:
FIRST and listwise lost nDCG@10 on both HotpotQA and SciFact), and each extra tool lengthens a small model's
prompt; a strong API model gets RankGPT's listwise reranker, which needs no logprobs.

Shared components (the SIRA retriever, the reranker) are built once and take no tracer: the retrieval nodes and
the ``search``/``rerank`` tools (:class:`~sleuth.agents.runtrace.PerCallTool`) hand them the calling run's tracer
per call, so their model calls land in the trace of the run that made them.
"""

from __future__ import annotations

from typing import Any

from sleuth.agents.budget import Budget
from sleuth.agents.config import AgentConfig
from sleuth.agents.context import ContextPolicy
from sleuth.agents.runtrace import CallReranker, PerCallTool, call_retrievers
from sleuth.llm.base import ChatModel
from sleuth.retrieval.base import Retriever
from sleuth.tools.base import Tool, Toolkit


def resolve_model(model: ChatModel | str | None) -> tuple[ChatModel, bool]:
    """``(model, owned)``: a model string (or None: the configured default) is built here and owned."""
    if model is None or isinstance(model, str):
        from sleuth.llm import get_model

        return get_model(model), True
    return model, False


def default_retrievers(corpus: Any, model: ChatModel) -> dict[str, Retriever]:
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraRetriever

    bm25 = BM25Retriever.open(corpus)
    return {"bm25": bm25, "sira": SiraRetriever(bm25, model)}


def resolve_rerank(rerank: str | None, model: ChatModel | None) -> str | None:
    """``"auto"`` -> None for the embedded local model (or no model), ``"listwise"`` otherwise; else as given."""
    if rerank != "auto":
        return rerank
    if model is None or getattr(model, "is_local", False):
        return None
    return "listwise"


def default_toolkit(
    corpus: Any, retrievers: dict[str, Retriever], model: ChatModel | None = None, rerank: str | None = "auto"
) -> Toolkit:
    from sleuth.tools import corpus_tools
    from sleuth.tools.search import search_tool, search_tools

    if not retrievers:
        from sleuth.retrieval.bm25 import BM25Retriever

        retrievers = {"bm25": BM25Retriever.open(corpus)}
    _, df = search_tools(corpus, retrievers)
    search = PerCallTool(lambda tracer: search_tool(call_retrievers(retrievers, tracer)))
    tools: list[Tool[Any]] = [*corpus_tools(corpus), search, df]
    rerank = resolve_rerank(rerank, model)
    if rerank and model is not None:
        from sleuth.rerank import get_reranker
        from sleuth.tools.rerank import rerank_tool

        reranker = get_reranker(rerank, model)
        tools.append(PerCallTool(lambda tracer: rerank_tool(corpus, CallReranker(reranker, tracer))))
    return Toolkit(tools)


def default_config(
    corpus: Any,
    *,
    model: ChatModel | str | None = None,
    budget: Budget | None = None,
    context: ContextPolicy | None = None,
    rerank: str | None = "auto",
    **kwargs: Any,
) -> AgentConfig:
    """``rerank``: the reranker behind the ``rerank`` tool (first, listwise, icr), None for no rerank tool, or
    ``"auto"`` (see :func:`resolve_rerank`)."""
    from sleuth.corpus import Corpus

    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    chat_model, owned = resolve_model(model)
    retrievers = default_retrievers(c, chat_model)
    config = AgentConfig(
        model=chat_model,
        toolkit=default_toolkit(c, retrievers, chat_model, rerank),
        retrievers=retrievers,
        budget=budget or Budget(),
        context=context or ContextPolicy(),
        corpus=c,
        owns_model=owned,
        **kwargs,
    )
    return config
