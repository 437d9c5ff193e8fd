"""What an agent run is given: the model, the tools, the retrievers, the tracer, the budgets.

An :class:`AgentConfig` is passed to the graph as its LangGraph runtime *context* (``graph.invoke(...,
context=config)``); nodes read everything from it and build nothing themselves. It is not part of the
checkpointed state, so a resumed run gets its model and tools from the caller again.

Each run gets its own copy (``dataclasses.replace(config, tracer=run_tracer)``), so the per-run caches below
(the tool schemas the model is shown, token counts of prompt parts) start fresh and are never shared by runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sleuth.agents.budget import STEP_COSTS, Budget, StepCost
from sleuth.agents.context import DEFAULT_TOOL_FIELDS, ContextPolicy, slim_schema
from sleuth.agents.dci import DEFAULT_SCAN_BYTES, DCIContext, check_scan_budget
from sleuth.agents.policies import Policies
from sleuth.errors import ConfigError
from sleuth.llm.base import ChatModel
from sleuth.retrieval.base import Retriever
from sleuth.tools.answer import ANSWER_TOOL, answer_tool
from sleuth.tools.base import Toolkit
from sleuth.tracing.tracer import NullTracer, Tracer

# How iter-retgen answers. "last-generation" (the default) is the paper's form as FlashRAG's IterativePipeline runs
# it: T rounds of retrieve -> generate, and the answer is the T-th generation. "separate-call" is sleuth's earlier
# form: T retrievals, T-1 drafts, then one JSON answer call that sees the last passages and the last draft and
# cites doc ids.
IterRetGenAnswer = Literal["last-generation", "separate-call"]
ITER_RETGEN_ANSWERS: tuple[str, ...] = ("last-generation", "separate-call")


@dataclass
class AgentConfig:
    model: ChatModel
    toolkit: Toolkit | None = None  # react's tools; an `answer` tool is added when missing
    retrievers: dict[str, Retriever] = field(default_factory=dict)
    tracer: Tracer = field(default_factory=NullTracer)
    budget: Budget = field(default_factory=Budget)
    context: ContextPolicy = field(default_factory=ContextPolicy)
    router_model: ChatModel | None = None  # the model that picks a strategy (default: ``model``)
    sira_retriever: str = "sira"  # key in ``retrievers`` for the sira strategy
    iter_retgen_retriever: str = "bm25"  # key in ``retrievers`` for iter-retgen
    iter_retgen_steps: int = 3  # T: retrieve-generate rounds in iter-retgen (the paper's and FlashRAG's T=3)
    iter_retgen_answer: IterRetGenAnswer = "last-generation"  # see ITER_RETGEN_ANSWERS
    # auto's iter-retgen step: separate-call by default, since auto checks an answer's support against the passages
    # and scores its citations, which the paper form's 32-token T-th generation does not give
    auto_iter_retgen_answer: IterRetGenAnswer = "separate-call"
    iter_retgen_max_tokens: int = 32  # generation limit of one iter-retgen generation (FlashRAG: max_tokens 32)
    k: int = 5  # passages per retrieval shown to the model
    max_idle_turns: int = 2  # replies without a tool call before the reply text is taken as the answer
    max_repeats: int | None = 3  # the same call (name + arguments) this many times: stop searching, answer now
    default_strategy: str = "react"  # the router's choice when its output cannot be parsed
    corpus: Any = None  # optional sleuth Corpus: fills passages whose hits carry no text, checks doc ids
    # the arguments the model is shown per tool (others keep their defaults); None: full schemas
    tool_fields: dict[str, tuple[str, ...]] | None = field(default_factory=lambda: dict(DEFAULT_TOOL_FIELDS))
    owns_model: bool = False  # the model was built for this config (``Agent.for_corpus``): ``Agent.close`` closes it
    policies: Policies | None = None  # small-model policies; None: the agent's defaults (Policies.for_agent)
    dci_context: DCIContext = field(default_factory=DCIContext)  # context management of the dci loop
    max_scan_bytes: int = DEFAULT_SCAN_BYTES  # dci: the largest corpus it may grep (every grep reads all of it)
    # dci on a corpus too large to grep whole: grep inside the top N documents of a BM25 search (workspace_grep)
    # instead, with read; the scan budget does not apply (an adaptation of DCI, named in the trace)
    dci_workspace: int | None = None
    search_methods: list[str] | None = None  # the `search` tool's methods (the enum under constrain_args)
    step_costs: dict[str, StepCost] = field(default_factory=lambda: dict(STEP_COSTS))  # auto's planning estimates
    setup_notes: list[dict[str, Any]] = field(default_factory=list)  # set-up facts each run's trace starts with
    # computed once per config: the same schema bytes on every turn keep a server's prompt cache warm
    react_schemas: list[dict[str, Any]] = field(init=False, repr=False, compare=False)
    token_counts: dict[str, int] = field(init=False, repr=False, compare=False)  # text -> the model's token count
    schema_cache: dict[tuple[str, ...], list[dict[str, Any]]] = field(init=False, repr=False, compare=False)

    MAX_TOKEN_COUNTS = 4096  # entries kept in ``token_counts`` (cleared when full)

    def __post_init__(self) -> None:
        steps = self.iter_retgen_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(
                f"iter_retgen_steps (T) must be a whole number of at least 1, got {steps!r}",
                hint="T=3 is the paper's setting",
            )
        for name in ("iter_retgen_answer", "auto_iter_retgen_answer"):
            if getattr(self, name) not in ITER_RETGEN_ANSWERS:
                raise ConfigError(
                    f"unknown {name} {getattr(self, name)!r}",
                    hint=f"use one of: {', '.join(ITER_RETGEN_ANSWERS)} (the first is the paper's form)",
                )
        tokens = self.iter_retgen_max_tokens
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 1:
            raise ConfigError(f"iter_retgen_max_tokens must be at least 1, got {tokens!r}", hint="FlashRAG uses 32")
        if self.k < 1:
            raise ConfigError("k must be at least 1", hint="pass k=5")
        if self.toolkit is not None and ANSWER_TOOL not in self.toolkit:
            known = None
            if self.corpus is not None:
                corpus = self.corpus

                def known(doc_id: str) -> bool:
                    try:
                        return corpus.path_of(doc_id).is_file()
                    except Exception:
                        return False

            self.toolkit = Toolkit([*self.toolkit, answer_tool(known)])
        self.react_schemas = self.tool_schemas()
        self.token_counts = {}
        self.schema_cache = {}

    def count_tokens(self, text: str) -> int:
        """``model.count_tokens(text)``, cached per config (prompt parts repeat on every turn)."""
        n = self.token_counts.get(text)
        if n is None:
            n = self.model.count_tokens(text)
            if len(self.token_counts) >= self.MAX_TOKEN_COUNTS:
                self.token_counts.clear()
            self.token_counts[text] = n
        return n

    def tool_schemas(self, names: list[str] | None = None) -> list[dict[str, Any]]:
        """The tools' OpenAI schemas as the model sees them (slimmed to ``tool_fields``), in toolkit order."""
        if self.toolkit is None:
            return []
        out = []
        for tool in self.toolkit:
            if names is not None and tool.name not in names:
                continue
            fields = (self.tool_fields or {}).get(tool.name)
            out.append(slim_schema(tool.openai_schema(), fields))
        return out

    def schemas_for(self, names: tuple[str, ...] | None) -> list[dict[str, Any]]:
        """The schemas of ``names`` (None: every tool), computed once per config (the same bytes every turn)."""
        if names is None:
            return self.react_schemas
        if names not in self.schema_cache:
            self.schema_cache[names] = self.tool_schemas(list(names))
        return self.schema_cache[names]

    def resolved_policies(self, agent: str) -> Policies:
        return self.policies if self.policies is not None else Policies.for_agent(agent)

    def auto_steps(self) -> list[str]:
        """The steps ``auto`` can plan with, in escalation order: sira -> iter-retgen -> explore (free tool use)."""
        out = []
        if self.sira_retriever in self.retrievers:
            out.append("sira")
        if self.iter_retgen_retriever in self.retrievers:
            out.append("iter-retgen")
        if self.toolkit is not None:
            out.append("explore")
        return out

    def available_strategies(self) -> list[str]:
        out = []
        if self.toolkit is not None:
            out.append("react")
        if self.sira_retriever in self.retrievers:
            out.append("sira")
        if self.iter_retgen_retriever in self.retrievers:
            out.append("iter-retgen")
        return out

    def require(self, strategy: str) -> None:
        if strategy == "dci":
            names = self.toolkit.names() if self.toolkit is not None else []
            if self.dci_workspace:
                if not {"workspace_grep", "read"} <= set(names):
                    raise ConfigError("dci_workspace needs the workspace_grep and read tools",
                                      hint="pass toolkit=build_toolkit(corpus, workspace=True).toolkit")
                return
            if not {"grep", "read"} <= set(names):
                raise ConfigError(
                    "the dci agent needs grep and read tools", hint="pass toolkit=sleuth.corpus_tools(corpus)"
                )
            if self.corpus is not None:
                check_scan_budget(self.corpus, self.max_scan_bytes)
            return
        if strategy == "auto":
            if not self.auto_steps():
                raise ConfigError("auto has no step to plan with", hint="pass a toolkit or retrievers")
            return
        if strategy == "router":
            if not self.available_strategies():
                raise ConfigError("the router has no strategy to choose from", hint="pass a toolkit or retrievers")
            return
        if strategy == "react" and self.toolkit is None:
            raise ConfigError("the react strategy needs a toolkit", hint="pass toolkit=sleuth.corpus_tools(corpus)")
        if strategy == "sira" and self.sira_retriever not in self.retrievers:
            raise ConfigError(
                f"the sira strategy needs a retriever named {self.sira_retriever!r}; have {sorted(self.retrievers)}",
                hint="pass retrievers={'sira': ...} (build the BM25 index with `sleuth index CORPUS`)",
            )
        if strategy == "iter-retgen" and self.iter_retgen_retriever not in self.retrievers:
            raise ConfigError(
                f"iter-retgen needs a retriever named {self.iter_retgen_retriever!r}; have {sorted(self.retrievers)}",
                hint="pass retrievers={'bm25': ...} (build the BM25 index with `sleuth index CORPUS`)",
            )
