"""From command-line choices to a runnable evaluation: data, corpus, system, scorer and run configuration.

This is the only place that names the other parts of sleuth (``get_retriever``, ``get_reranker``,
``ToolCatalog``, ``Agent``), always through their public factories; the runner only sees callables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sleuth.errors import ConfigError, DataError
from sleuth.evals.datasets.base import EvalSet
from sleuth.evals.runner import RunConfig
from sleuth.evals.scoring import (
    Scorer,
    browsecomp_scorer,
    qa_scorer,
    retrieval_scorer,
    tools_scorer,
)
from sleuth.evals.systems import AgentSystem, RetrievalSystem, System, SystemOutput
from sleuth.records import TraceEvent, Usage
from sleuth.tracing.tracer import MemoryTracer

TASKS = ("hotpotqa", "beir", "browsecomp-plus", "tools")


@dataclass
class Options:
    task: str
    data: str
    agent: str | None = None
    method: str | None = None
    rerank: str | None = None
    rerank_depth: int = 20
    model: str | None = None
    judge_model: str | None = None
    api_base: str | None = None  # --api-base / --api-key-env for model and judge (see sleuth.config)
    api_key_env: str | None = None
    k: int = 100
    seed: int | None = None
    split: str = "test"
    subset: str | None = None
    corpus: str | None = None
    answers: str | None = None
    cache_dir: str | None = None
    progress: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Prepared:
    eval_set: EvalSet
    system: System
    scorer: Scorer
    config: RunConfig
    primary: str
    corpus_info: dict[str, Any]
    label: str


def load_data(opts: Options) -> EvalSet:
    from sleuth.evals import datasets as D

    if opts.task == "hotpotqa":
        return D.load_hotpotqa(opts.data)
    if opts.task == "beir":
        return D.load_beir(opts.data, opts.split)
    if opts.task == "browsecomp-plus":
        return D.load_browsecomp_plus(opts.data, corpus=opts.corpus, answers=opts.answers)
    if opts.task == "tools":
        return D.load_tools(opts.data, opts.subset, opts.split)
    raise ConfigError(f"unknown eval task {opts.task!r}", hint=f"use one of: {', '.join(TASKS)}")


def _model(spec: str | None, opts: Options | None = None) -> Any:
    from sleuth.llm import get_model

    if opts is None:
        return get_model(spec)
    return get_model(spec, api_base=opts.api_base, api_key_env=opts.api_key_env)


def reranker_options(opts: Options, dataset: str = "") -> dict[str, Any]:
    """Constructor options for ``get_reranker(opts.rerank)``: for ICR the reference's instruction for the set
    (IE for BEIR sets other than its five QA ones, QA otherwise); ``opts.extra["reranker"]`` overrides."""
    out: dict[str, Any] = {}
    if (opts.rerank or "").strip().lower() == "icr":
        from sleuth.rerank.icr import instruction_for

        out["instruction"] = instruction_for(opts.task, dataset or Path(opts.data).name)
    return {**out, **opts.extra.get("reranker", {})}


def _retrieval_system(opts: Options, corpus: Any, chat_model: Any, dataset: str = "") -> RetrievalSystem:
    from sleuth.retrieval import get_retriever

    retriever = get_retriever(opts.method or "bm25", corpus, model=chat_model, **opts.extra.get("retriever", {}))
    reranker = None
    if opts.rerank:
        try:
            from sleuth.rerank import get_reranker
        except ImportError:
            raise ConfigError(
                "rerankers are not available in this build of sleuth", hint="run without --rerank"
            ) from None
        reranker = get_reranker(opts.rerank, model=chat_model, **reranker_options(opts, dataset))
    return RetrievalSystem(retriever, corpus, k=opts.k, reranker=reranker, rerank_depth=opts.rerank_depth)


class ToolRetrievalSystem:
    """``ToolCatalog.search(request, k, method)``; usage of model-based methods comes from its trace events."""

    def __init__(self, catalog: Any, method: str, k: int) -> None:
        self.catalog, self.method, self.k = catalog, method, k

    def __call__(self, q: Any) -> SystemOutput:
        tracer = MemoryTracer()
        hits = self.catalog.search(q.question, k=self.k, method=self.method, tracer=tracer)
        usage = Usage()
        for e in tracer.events:
            if e.kind == "llm" and e.usage is not None:
                usage = usage + e.usage
        return SystemOutput(ranking=[h.doc_id for h in hits], usage=usage, events=list(tracer.events), tool_calls=0)


def _tool_catalog(es: EvalSet, chat_model: Any) -> Any:
    from sleuth.retrieval.tool_catalog import ToolCatalog, ToolSpec as CatalogTool

    tools = []
    for t in es.tools:
        desc = t.description if t.name == t.id else f"{t.name}. {t.description}"
        tools.append(CatalogTool(name=t.id, description=desc))
    return ToolCatalog(tools, model=chat_model)


def _agent_options(opts: Options) -> dict[str, Any]:
    """The agent's budget, policies and dci context from ``opts.extra["agent_flags"]`` (the CLI's flags)."""
    from sleuth.agents.options import agent_options

    return agent_options(opts.agent or "router", **opts.extra.get("agent_flags", {}))


def _agent_system(opts: Options, corpus: Any, chat_model: Any) -> AgentSystem:
    from sleuth.agents import Agent

    agent = Agent.for_corpus(corpus, model=chat_model, agent=opts.agent or "router", **_agent_options(opts))
    return AgentSystem(agent, corpus)


def prepare(opts: Options, *, chat_model: Any = None, judge: Any = None) -> Prepared:
    """Load the data, build the corpus and the system. ``chat_model``/``judge`` may be injected (tests)."""
    es = load_data(opts)
    chat_model = _chat_model(opts, chat_model)
    system_cfg = system_config(opts, chat_model)
    corpus, corpus_info = _corpus(es, opts)
    system = _system(es, opts, corpus, chat_model)
    scorer, primary, judge = _scorer(es, opts, corpus, judge)
    judge_name = getattr(judge, "model", None) if judge is not None else None
    checksum = es.checksum + (f"+corpus:{corpus_info.get('fingerprint')}" if es.kind == "browsecomp" else "")
    config = RunConfig(
        task=opts.task, data_checksum=checksum, system=system_cfg, seed=opts.seed, judge_model=judge_name
    )
    return Prepared(es, system, scorer, config, primary, corpus_info, system_label(system_cfg))


def _chat_model(opts: Options, injected: Any) -> Any:
    """The injected model, else one from ``--model`` when the system needs a model (agents, sira, llm-query,
    model rerankers); ``None`` otherwise."""
    if injected is not None:
        return injected
    model_rerank = bool(opts.rerank) and opts.rerank != "icr"
    needs_model = bool(opts.agent) or opts.method in ("sira", "llm-query") or model_rerank
    return _model(opts.model, opts) if needs_model else None


def system_config(opts: Options, chat_model: Any) -> dict[str, Any]:
    """What decides the system's numbers (``RunConfig.system``)."""
    return {
        "agent": opts.agent,
        "method": None if opts.agent else (opts.method or "bm25"),
        "rerank": opts.rerank,
        "rerank_depth": opts.rerank_depth if opts.rerank else None,
        "model": (getattr(chat_model, "model", None) or opts.model) if chat_model is not None else None,
        "k": opts.k,
        "split": opts.split if opts.task in ("beir", "tools") else None,
        "subset": opts.subset,
        **({"rerank_options": reranker_options(opts)} if (opts.rerank or "").lower() == "icr" else {}),
        **({"agent_options": _recorded_agent_options(opts)} if opts.agent else {}),
        **{k: v for k, v in opts.extra.items() if k not in ("retriever", "agent_flags")},
    }


def _recorded_agent_options(opts: Options) -> dict[str, Any]:
    from sleuth.agents.options import recorded

    return recorded(_agent_options(opts))


def _corpus(es: EvalSet, opts: Options) -> tuple[Any, dict[str, Any]]:
    """The searchable corpus (none for tool sets, whose catalog is built by the system) and its description."""
    from sleuth.evals.corpora import corpus_for

    if es.kind == "tools":
        return None, {"tools": len(es.tools)}
    if es.kind == "browsecomp" and not (es.corpus_dir or es.corpus_jsonl):
        raise DataError(
            "BrowseComp-Plus needs the corpus to search",
            hint="pass --corpus with the BrowseComp-Plus documents (a sleuth corpus folder or a JSONL file)",
        )
    corpus = corpus_for(es, opts.cache_dir, progress=opts.progress)
    return corpus, {"root": str(corpus.root), "documents": len(corpus), "fingerprint": corpus.fingerprint()}


def _system(es: EvalSet, opts: Options, corpus: Any, chat_model: Any) -> System:
    if es.kind == "tools":
        return ToolRetrievalSystem(_tool_catalog(es, chat_model), opts.method or "bm25", opts.k)
    if opts.agent:
        return _agent_system(opts, corpus, chat_model)
    return _retrieval_system(opts, corpus, chat_model, es.name)


def _scorer(es: EvalSet, opts: Options, corpus: Any, judge: Any) -> tuple[Scorer, str, Any]:
    """The task's scorer, its primary metric and the judge model (BrowseComp agents with reference answers)."""
    to_doc = corpus.doc_id_for if corpus is not None else None
    if es.kind == "qa":
        return qa_scorer(to_doc_id=to_doc), "f1" if opts.agent else "recall@5", judge
    if es.kind == "retrieval":
        return retrieval_scorer(), "ndcg@10", judge
    if es.kind == "tools":
        return tools_scorer(), "ndcg@10", judge
    if judge is None and opts.agent and any(q.answers for q in es.questions):
        judge = _model(opts.judge_model or opts.model, opts)
    primary = "accuracy" if opts.agent and judge is not None else "recall@100"
    return browsecomp_scorer(judge, to_doc_id=to_doc), primary, judge


def system_label(cfg: dict[str, Any]) -> str:
    parts = [f"agent:{cfg['agent']}" if cfg.get("agent") else str(cfg.get("method") or "?")]
    if cfg.get("rerank"):
        parts.append(f"+{cfg['rerank']}")
    if cfg.get("model"):
        model = str(cfg["model"])
        parts.append("@" + (model.rsplit("/", 1)[-1] if model.startswith(("gguf:", "/")) else model))
    return "".join(parts)


def default_out_dir(opts: Options) -> Path:
    import time

    name = Path(opts.data).name.replace(".jsonl", "").replace(".json", "")
    what = opts.agent or opts.method or "bm25"
    if opts.rerank:
        what += f"+{opts.rerank}"
    return Path("eval-runs") / f"{opts.task}-{name}-{what}-{time.strftime('%Y%m%d-%H%M%S')}"


__all__ = [
    "TASKS",
    "Options",
    "Prepared",
    "TraceEvent",
    "default_out_dir",
    "load_data",
    "prepare",
    "system_config",
    "system_label",
]
