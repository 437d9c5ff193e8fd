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
    enriched: bool = False  # search the in-index SIRA enrichment (bm25, sira)
    sira_form: str | None = None  # SIRA: "reference" (default) or "sleuth"
    sira_tiers: str | None = None  # SIRA: "unigram", "unigram,bigram" or "auto" (None: auto when a tuning split exists)
    sira_tune: str | None = None  # SIRA tiers' tuning split (sleuth.evals.tiers.tuning_set)
    iter_retgen_answer: str | None = None  # iter-retgen's form (None: the paper's, "last-generation")
    iter_retgen_steps: int | None = None  # iter-retgen's T (None: 3)
    fusion: str | None = None  # hybrid's fusion (None: sleuth.retrieval.hybrid.DEFAULT_FUSION)
    calibrate: bool = False  # adaptive fusion: cross-calibrate on the set's own questions (labels unused)
    passages: bool | None = None  # search passages (None: each method's default, retrieval.PASSAGES_DEFAULT)
    chunk_size: int | None = None  # passages' size and overlap in characters (None: the chunker's defaults)
    chunk_overlap: int | None = None
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
    options: Options  # as resolved (SIRA's tiers chosen): what a worker builds its own system from


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
    (IE for BEIR sets other than its five QA ones, QA otherwise); for FIRST its variant and for listwise its
    prompt, named even when they are the defaults (so a run's config says which form ran, and a run made with
    another form is not resumed by this one); ``opts.extra["reranker"]`` (``--rerank-opt``) overrides."""
    out: dict[str, Any] = {}
    name = (opts.rerank or "").strip().lower()
    if name == "icr":
        from sleuth.rerank.icr import instruction_for

        out["instruction"] = instruction_for(opts.task, dataset or Path(opts.data).name)
    elif name == "first":
        out["variant"] = "paper"
    elif name in ("listwise", "rankgpt"):
        out["prompt"] = "rankgpt"
    return {**out, **opts.extra.get("reranker", {})}


def sira_prompt_for(opts: Options) -> str | None:
    """The reference's query prompt for the set, as its configs choose it: query_multihop_v01 for HotpotQA
    (``enrich/hotpotqa.yaml``), its default query_v06 otherwise (None: the form's default). Only for the
    reference form of ``--method sira``."""
    if (opts.method or "") != "sira" or (opts.sira_form or "reference") != "reference":
        return None
    parts = [p.lower() for p in Path(opts.data).parts]
    return "reference-multihop" if opts.task == "hotpotqa" or any("hotpot" in p for p in parts) else None


def retriever_options(opts: Options) -> dict[str, Any]:
    """Options for ``get_retriever(opts.method)``: ``--enriched``, ``--sira-form`` and ``--fusion``, then
    ``opts.extra["retriever"]`` (which wins)."""
    method = opts.method or "bm25"
    out: dict[str, Any] = {}
    if opts.enriched:
        if method not in ("bm25", "sira"):
            raise ConfigError(f"--enriched works with --method bm25 or sira, not {method}",
                              hint="drop --enriched, or use --method bm25 / sira")
        out["enriched"] = True
    if opts.sira_form:
        if method != "sira":
            raise ConfigError("--sira-form needs --method sira", hint="add --method sira")
        out["sira"] = {"form": opts.sira_form}
    if opts.sira_tiers:
        if method != "sira":
            raise ConfigError("--sira-tiers needs --method sira", hint="add --method sira")
        tiers = tuple(t.strip() for t in opts.sira_tiers.split(",") if t.strip())
        out["sira"] = {**out.get("sira", {}), "tiers": tiers}
    prompt = sira_prompt_for(opts)
    if prompt is not None:
        out["sira"] = {**out.get("sira", {}), "prompt": prompt}
    if opts.fusion is not None and method == "hybrid":
        out["fusion"] = opts.fusion
    if opts.passages is not None:
        out["passages"] = opts.passages
    if opts.chunk_size is not None or opts.chunk_overlap is not None:
        from sleuth.retrieval.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE

        out["chunking"] = {"size": DEFAULT_SIZE if opts.chunk_size is None else opts.chunk_size,
                           "overlap": DEFAULT_OVERLAP if opts.chunk_overlap is None else opts.chunk_overlap}
    extra = dict(opts.extra.get("retriever", {}))
    if "sira" in out and isinstance(extra.get("sira"), dict):
        extra["sira"] = {**out["sira"], **extra["sira"]}
    return {**out, **extra}


def _retrieval_system(opts: Options, corpus: Any, chat_model: Any, dataset: str = "") -> RetrievalSystem:
    from sleuth.retrieval import get_retriever

    # --enriched over a corpus never enriched: IndexMissingError naming `sleuth enrich <the eval's corpus>`
    retriever = get_retriever(opts.method or "bm25", corpus, model=chat_model, **retriever_options(opts))
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


CALIBRATION_LIMIT = 1000  # distinct questions per half for --calibrate


def _tool_catalog(es: EvalSet, chat_model: Any, fusion: str | None = None, **kw: Any) -> Any:
    """The set's tools as a ``ToolCatalog``; tool texts are embedded through the on-disk vector cache
    (``$SLEUTH_HOME/embeddings``), so a rerun of a set embeds nothing. ``kw``: tool2vec's ``usage_dir``,
    ``usage_form``, ``usage_fusion``, ``usage_fuse_with``."""
    from sleuth.retrieval.tool_catalog import ToolCatalog, ToolSpec as CatalogTool

    tools = []
    for t in es.tools:
        desc = t.description if t.name == t.id else f"{t.name}. {t.description}"
        tools.append(CatalogTool(name=t.id, description=desc, title=None if t.name == t.id else t.name))
    return ToolCatalog(tools, model=chat_model, fusion=fusion, cache_embeddings=True, **kw)


def tool_catalog_for(es: EvalSet, opts: Options, chat_model: Any = None) -> Any:
    """:func:`_tool_catalog` with tool2vec's options from ``opts.extra``: ``usage`` is a usage folder (opened
    read-write) or a JSONL file of ``{request, tool}`` (added in memory)."""
    from pathlib import Path

    usage = opts.extra.get("usage")
    if opts.method == "tool2vec" and not usage:
        raise ConfigError("--method tool2vec needs usage requests", hint="pass --usage FILE.jsonl or a usage folder")
    folder = Path(usage) if usage and Path(usage).is_dir() else None
    kw = {k: opts.extra[k] for k in ("usage_form", "usage_fusion", "usage_fuse_with") if opts.extra.get(k)}
    catalog = _tool_catalog(es, chat_model, opts.fusion, usage_dir=folder, **kw)
    if usage and folder is None:
        catalog.add_usage(usage)
    return catalog


def _uses_iter_retgen(opts: Options) -> bool:
    return opts.agent in ("iter-retgen", "router", "auto")


def _iter_retgen_kwargs(opts: Options) -> dict[str, Any]:
    """The iter-retgen settings of an agent run, as ``AgentConfig`` takes them (the defaults filled in, so a run's
    configuration names the form it ran whether or not it was asked for)."""
    from sleuth.agents.options import iter_retgen_settings

    return iter_retgen_settings(opts.agent, opts.iter_retgen_answer, opts.iter_retgen_steps, fill_defaults=True)


def _agent_options(opts: Options) -> dict[str, Any]:
    """The agent's budget, policies and dci context from ``opts.extra["agent_flags"]`` (the CLI's flags)."""
    from sleuth.agents.options import agent_options

    return agent_options(opts.agent or "router", **opts.extra.get("agent_flags", {}))


def _agent_system(opts: Options, corpus: Any, chat_model: Any) -> AgentSystem:
    from sleuth.agents import Agent

    kwargs = _iter_retgen_kwargs(opts) if _uses_iter_retgen(opts) else {}
    agent = Agent.for_corpus(corpus, model=chat_model, agent=opts.agent or "router", **kwargs, **_agent_options(opts))
    return AgentSystem(agent, corpus)


def prepare(opts: Options, *, chat_model: Any = None, judge: Any = None) -> Prepared:
    """Load the data, build the corpus and the system. ``chat_model``/``judge`` may be injected (tests)."""
    es = load_data(opts)
    opts = resolve_sira_tiers(opts)
    if _uses_iter_retgen(opts):
        _iter_retgen_kwargs(opts)  # a bad iter-retgen setting fails here, before a model is built
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
    return Prepared(es, system, scorer, config, primary, corpus_info, system_label(system_cfg), opts)


def worker_parts(opts: Options) -> tuple[System, Scorer]:
    """A worker's own system and scorer (``--ray``), built from the resolved options (``Prepared.options``): the
    data, corpus and index opened from their paths, the model started for this process."""
    es = load_data(opts)
    chat_model = _chat_model(opts, None)
    corpus, _ = _corpus(es, opts)
    system = _system(es, opts, corpus, chat_model)
    scorer, _, _ = _scorer(es, opts, corpus, None)
    return system, scorer


def resolve_sira_tiers(opts: Options) -> Options:
    """``opts`` with SIRA's tiers chosen as the reference chooses them (:mod:`sleuth.evals.tiers`) when
    ``--method sira`` runs the reference form and ``--sira-tiers`` is ``auto`` or unset: on the tuning split
    (``--sira-tune``, or the BEIR folder's train split). Unset and no tuning split: the form's default tiers,
    recorded as such. A ``--sira-tiers`` list is kept as given."""
    from dataclasses import replace

    from sleuth.evals import tiers as T

    if opts.method != "sira" or opts.agent or (opts.sira_form or "reference") != "reference":
        if opts.sira_tiers == T.AUTO or opts.sira_tune:
            raise ConfigError("--sira-tiers auto and --sira-tune choose the reference form's tiers",
                              hint="use them with --method sira and the reference form, or drop them")
        return opts
    if opts.sira_tiers not in (None, T.AUTO):
        if opts.sira_tune:
            raise ConfigError("--sira-tune chooses the tiers: it goes with --sira-tiers auto (or none)",
                              hint="drop --sira-tiers, or drop --sira-tune")
        return opts
    tune = T.tuning_set(opts.task, opts.data, opts.sira_tune)
    if tune is None:
        if opts.sira_tiers == T.AUTO:
            raise ConfigError("--sira-tiers auto needs a tuning split: this set has no train split",
                              hint="pass --sira-tune with a BEIR folder (PATH or PATH:SPLIT) or a HotpotQA file")
        return replace(opts, extra={**opts.extra, "sira_tier_choice": "none (no tuning split; --sira-tune sets one)"})
    choice = T.choose(tune, opts.cache_dir, progress=opts.progress)
    return replace(opts, sira_tiers=choice["tiers"], extra={**opts.extra, "sira_tier_choice": choice})


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
        **({"enriched": True} if opts.enriched else {}),
        **({"sira_form": opts.sira_form or "reference", "sira_prompt": sira_prompt_for(opts) or
            ("sleuth" if opts.sira_form == "sleuth" else "reference")} if opts.method == "sira" and not opts.agent
           else {}),
        **({"sira_tiers": opts.sira_tiers} if opts.sira_tiers and opts.method == "sira" else {}),
        **({"fusion": opts.fusion or _default_fusion()} if opts.method == "hybrid" and not opts.agent else {}),
        **({"calibrate": "cross (2 halves of the questions)"} if opts.calibrate else {}),
        **_passage_config(opts),
        **({"rerank_options": reranker_options(opts)} if opts.rerank and reranker_options(opts) else {}),
        **(_iter_retgen_kwargs(opts) if _uses_iter_retgen(opts) else {}),
        **({"agent_options": _recorded_agent_options(opts)} if opts.agent else {}),
        **{k: v for k, v in opts.extra.items() if k not in ("retriever", "reranker", "agent_flags")},
    }


def _passage_config(opts: Options) -> dict[str, Any]:
    """``{"passages": {method: chunking params}}`` for the lists of the system that search passages; ``{}`` when
    none does (so runs over whole documents keep the configuration they had before passages existed)."""
    from sleuth.retrieval import PASSAGES_DEFAULT
    from sleuth.retrieval.chunking import Chunker

    if opts.agent:
        return {}
    method = opts.method or "bm25"
    lists = ("bm25", "dense") if method == "hybrid" else (method,)
    on = [m for m in lists if (opts.passages if opts.passages is not None else PASSAGES_DEFAULT.get(m, False))]
    if not on:
        return {}
    chunker = Chunker(size=opts.chunk_size or Chunker().size,
                      overlap=opts.chunk_overlap if opts.chunk_overlap is not None else Chunker().overlap)
    return {"passages": {m: chunker.params() for m in on}}


def _default_fusion() -> str:
    from sleuth.retrieval.hybrid import DEFAULT_FUSION

    return DEFAULT_FUSION


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
    if opts.calibrate and (opts.agent or opts.method != "hybrid" or (opts.fusion or _default_fusion()) != "adaptive"):
        raise ConfigError("--calibrate goes with --method hybrid --fusion adaptive",
                          hint="add --method hybrid --fusion adaptive, or drop --calibrate")
    questions = [q.question for q in es.questions]
    if es.kind == "tools":
        catalog = tool_catalog_for(es, opts, chat_model)
        if opts.calibrate:
            catalog.calibrate(questions, cross=True, limit=CALIBRATION_LIMIT)
        return ToolRetrievalSystem(catalog, opts.method or "bm25", opts.k)
    if opts.agent:
        return _agent_system(opts, corpus, chat_model)
    system = _retrieval_system(opts, corpus, chat_model, es.name)
    if opts.calibrate:
        system.retriever = system.retriever.cross_calibrated(  # type: ignore[attr-defined]
            questions, limit=CALIBRATION_LIMIT
        )
    return system


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
    if cfg.get("sira_form") == "sleuth":
        parts.append("[sleuth]")
    if cfg.get("enriched"):
        parts.append("+enriched")
    if cfg.get("iter_retgen_answer") not in (None, "last-generation"):
        parts.append(f"[{cfg['iter_retgen_answer']}]")
    if cfg.get("iter_retgen_steps") not in (None, 3):
        parts.append(f"[T={cfg['iter_retgen_steps']}]")
    if cfg.get("rerank"):
        ro = cfg.get("rerank_options") or {}
        form = ro.get("variant") or (ro.get("prompt") if ro.get("prompt") != "rankgpt" else None)
        parts.append(f"+{cfg['rerank']}" + (f"({form})" if form else ""))
    if cfg.get("model"):
        model = str(cfg["model"])
        parts.append("@" + (model.rsplit("/", 1)[-1] if model.startswith(("gguf:", "/")) else model))
    return "".join(parts)


def default_out_dir(opts: Options) -> Path:
    import time

    name = Path(opts.data).name.replace(".jsonl", "").replace(".json", "")
    what = opts.agent or opts.method or "bm25"
    if opts.sira_form == "sleuth":
        what += "-sleuth"
    if opts.enriched:
        what += "+enriched"
    if opts.passages is not None:
        what += "+passages" if opts.passages else "+whole"
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
