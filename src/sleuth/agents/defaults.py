"""Sleuth's default agent set-up over a corpus folder: the model, the retrievers, the react toolkit.

* retrievers: ``bm25`` (the corpus's BM25 index, built on first use when missing) and ``sira`` (one model call
  proposes evidence phrases, one weighted BM25 call); for ``auto`` also ``dense`` and ``hybrid`` when the
  ``dense`` extra is installed (their index is built on the first call that asks for it);
* toolkit: ``grep``, ``read``, ``ls`` (direct corpus interaction), ``search`` (methods bm25 and sira) and ``df``,
  ``rerank`` (``rerank="auto"``: none for the embedded local model, listwise for any other model), and ``answer``;
  ``auto`` adds an ``iter_retgen`` round and, with ``rerank="auto"``, ICR for the local model (when the
  ``attention`` extra is installed; listwise, plus FIRST when the model gives logprobs, for other models);
* ``dci``: grep, read, ls and answer only; no index is opened or built.

With ``build_index=False`` and no BM25 index in the corpus, nothing is built: ``search`` falls back to a grep
ranking (:class:`~sleuth.agents.fallback.GrepRetriever`), sira is unavailable, iter-retgen retrieves with grep, and
every run's trace starts with a ``note`` named ``index`` that says so.

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
from sleuth.agents.dci import DEFAULT_SCAN_BYTES, check_scan_budget
from sleuth.agents.fallback import GrepRetriever, LazyRetriever
from sleuth.agents.runtrace import CallReranker, CallRetriever, PerCallTool, call_retrievers
from sleuth.errors import IndexMissingError
from sleuth.llm.base import ChatModel
from sleuth.retrieval.base import Retriever
from sleuth.tools.base import Tool, Toolkit


def resolve_model(model: ChatModel | str | None) -> tuple[ChatModel, bool]:
    """``(model, owned)``: a model string (or None: the configured default) is built here and owned."""
    if model is None or isinstance(model, str):
        from sleuth.llm import get_model

        return get_model(model), True
    return model, False


def default_retrievers(
    corpus: Any, model: ChatModel, *, build_index: bool = True, dense: bool = False
) -> dict[str, Retriever]:
    """bm25 and sira (plus lazily built dense and hybrid when ``dense`` and the extra is installed). Without a
    BM25 index and with ``build_index=False``: ``{"grep": GrepRetriever}``."""
    from sleuth.retrieval.bm25 import BM25Retriever
    from sleuth.retrieval.sira import SiraRetriever

    if not build_index and not (corpus.state_path / "bm25").is_dir():  # looked at without writing anything
        return {"grep": GrepRetriever(corpus)}
    try:
        bm25 = BM25Retriever.open(corpus, build_missing=build_index)
    except IndexMissingError:
        return {"grep": GrepRetriever(corpus)}
    out: dict[str, Retriever] = {"bm25": bm25, "sira": SiraRetriever(bm25, model)}
    if dense and dense_available():
        from sleuth.retrieval import get_retriever

        out["dense"] = LazyRetriever("dense", lambda: get_retriever("dense", corpus))
        out["hybrid"] = LazyRetriever("hybrid", lambda: get_retriever("hybrid", corpus))
    return out


def dense_available() -> bool:
    """The ``dense`` extra and its packaged MiniLM weights are installed (nothing is imported or loaded)."""
    import importlib.util

    if importlib.util.find_spec("sentence_transformers") is None:
        return False
    from sleuth.errors import SleuthError
    from sleuth.retrieval.embeddings import packaged_minilm_dir

    try:
        packaged_minilm_dir()
    except SleuthError:
        return False
    return True


def resolve_rerankers(rerank: str | None, model: ChatModel | None) -> list[str]:
    """``auto``'s rerankers: ``"auto"`` -> ICR for the local model (when the attention extra is installed),
    listwise (+ FIRST when the model gives logprobs) otherwise; else the comma list as given."""
    import importlib.util

    if rerank != "auto":
        return [r.strip() for r in (rerank or "").split(",") if r.strip()]
    if model is None:
        return []
    if getattr(model, "is_local", False):
        have = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers"))
        return ["icr"] if have else []
    return ["listwise", "first"] if getattr(model, "supports_logprobs", False) else ["listwise"]


def resolve_rerank(rerank: str | None, model: ChatModel | None) -> str | None:
    """``"auto"`` -> None for the embedded local model (or no model), ``"listwise"`` otherwise; else as given."""
    if rerank != "auto":
        return rerank
    if model is None or getattr(model, "is_local", False):
        return None
    return "listwise"


def default_toolkit(
    corpus: Any,
    retrievers: dict[str, Retriever],
    model: ChatModel | None = None,
    rerank: str | None = "auto",
    *,
    agent: str = "react",
    iter_retgen_retriever: str = "bm25",
    k: int = 5,
) -> Toolkit:
    from sleuth.tools import corpus_tools
    from sleuth.tools.search import search_tool, search_tools

    if not retrievers:
        from sleuth.retrieval.bm25 import BM25Retriever

        retrievers = {"bm25": BM25Retriever.open(corpus)}
    search = PerCallTool(lambda tracer: search_tool(call_retrievers(retrievers, tracer), corpus=corpus))
    tools: list[Tool[Any]] = [*corpus_tools(corpus), search]
    if "grep" not in retrievers:  # df reads the BM25 index (none in the grep fallback)
        tools.append(search_tools(corpus, retrievers)[1])
    names = resolve_rerankers(rerank, model) if agent == "auto" else [r for r in [resolve_rerank(rerank, model)] if r]
    if names and model is not None:
        from sleuth.rerank import get_reranker
        from sleuth.tools.rerank import rerank_tool

        rerankers = {n: get_reranker(n, model) for n in names}
        tools.append(PerCallTool(lambda tracer: rerank_tool(
            corpus, {n: CallReranker(r, tracer) for n, r in rerankers.items()})))
    if agent == "auto" and model is not None and iter_retgen_retriever in retrievers:
        from sleuth.agents.round_tool import iter_retgen_tool

        inner = retrievers[iter_retgen_retriever]
        tools.append(PerCallTool(lambda tracer: iter_retgen_tool(
            CallRetriever(inner, tracer) if tracer is not None else inner, model, k=k, tracer=tracer)))
    return Toolkit(tools)


def default_config(
    corpus: Any,
    *,
    model: ChatModel | str | None = None,
    budget: Budget | None = None,
    context: ContextPolicy | None = None,
    rerank: str | None = "auto",
    agent: str = "router",
    build_index: bool = True,
    **kwargs: Any,
) -> AgentConfig:
    """``rerank``: the reranker behind the ``rerank`` tool (first, listwise, icr; a comma list for ``auto``),
    None for no rerank tool, or ``"auto"`` (see :func:`resolve_rerank`, :func:`resolve_rerankers`).
    ``agent``: what the set-up is for (``dci`` opens no index). ``build_index``: build a missing BM25 index
    (else fall back to grep for ``search``)."""
    from sleuth.corpus import Corpus
    from sleuth.tools import corpus_tools

    c = corpus if isinstance(corpus, Corpus) else Corpus(corpus)
    workspace_tools: list[Any] = []
    if agent == "dci" and kwargs.get("dci_workspace"):  # grep inside a BM25 workspace: no scan budget
        from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
        from sleuth.tools.workspace import workspace_tool

        index = BM25Index.open(c, build_missing=build_index, rebuild=build_index)
        workspace_tools.append(workspace_tool(c, BM25Retriever(index)))
    elif agent == "dci":  # before any model starts: a corpus too large to grep is refused at once
        check_scan_budget(c, int(kwargs.get("max_scan_bytes", DEFAULT_SCAN_BYTES)))
    chat_model, owned = resolve_model(model)
    common: dict[str, Any] = {"model": chat_model, "budget": budget or Budget(), "context": context or ContextPolicy(),
                              "corpus": c, "owns_model": owned}
    if agent == "dci":
        return AgentConfig(toolkit=Toolkit([*corpus_tools(c), *workspace_tools]), **common, **kwargs)
    retrievers = default_retrievers(c, chat_model, build_index=build_index, dense=agent == "auto")
    notes = list(kwargs.pop("setup_notes", []))
    if "grep" in retrievers:
        kwargs.setdefault("iter_retgen_retriever", "grep")
        notes.append({"name": "index", "fallback": "grep", "index": str(c.state_path / "bm25"),
                      "message": f"no BM25 index in {c.state_path}: search falls back to grep (keyword counts over "
                      "the raw files), sira is unavailable, iter-retgen retrieves with grep; build one with "
                      f"`sleuth index {c.root}`"})
    toolkit = default_toolkit(c, retrievers, chat_model, rerank, agent=agent,
                              iter_retgen_retriever=kwargs.get("iter_retgen_retriever", "bm25"),
                              k=int(kwargs.get("k", 5)))
    return AgentConfig(toolkit=toolkit, retrievers=retrievers, search_methods=list(retrievers), setup_notes=notes,
                       **common, **kwargs)
