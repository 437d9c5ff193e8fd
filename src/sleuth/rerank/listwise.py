"""Listwise reranking with a permutation prompt (RankGPT: Sun et al., "Is ChatGPT Good at Search?", 2023).

The model sees a window of numbered passages (``[1]`` .. ``[n]``, each cut to a word budget) and answers with a
permutation like ``[3] > [1] > [2]``. Windows of ``window`` passages (default 20) move ``step`` (default 10) from
the back of the list to the front, so the best documents bubble up (RankGPT's ``sliding_windows``).

The answer is parsed by :func:`sleuth.rerank.common.parse_permutation`, which never raises: identifiers outside
``1..n`` are dropped, repeats keep their first place, and passages the model left out follow in their input order.
Every repair is counted; one ``kind="rerank"`` trace event per call reports windows, parse failures and repairs.
A prompt that overflows the model's context is retried with half the word budget (twice at most).
"""

from __future__ import annotations

from typing import Any

from sleuth.errors import ContextOverflowError
from sleuth.llm.base import ChatModel, Message
from sleuth.prompts import load_with_meta
from sleuth.records import Hit, RerankResult
from sleuth.rerank import common
from sleuth.rerank.base import RerankerBase
from sleuth.usagetap import UsageTap


class ListwiseStats:
    """Counters for one rerank call (reported in the trace event)."""

    def __init__(self) -> None:
        self.windows = 0
        self.parse_failures = 0
        self.missing = 0
        self.repeated = 0
        self.invented = 0
        self.empty = 0
        self.shrunk = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


class ListwiseReranker(RerankerBase):
    """RankGPT permutation reranking with any :class:`~sleuth.llm.base.ChatModel` (injected)."""

    name = "listwise"

    def __init__(
        self,
        model: ChatModel,
        *,
        window: int = 20,
        step: int = 10,
        word_budget: int = common.DEFAULT_WORD_BUDGET,
        max_tokens: int | None = None,
        tracer: Any = None,
    ) -> None:
        common.windows(window, window, step)  # validates window/step
        self.model = model
        self.window = window
        self.step = step
        self.word_budget = word_budget
        self.max_tokens = max_tokens
        self.tracer = tracer
        self._template, meta = load_with_meta("rerank_listwise")
        self._system = meta.get("system", "")

    def messages(self, query: str, passages: list[str]) -> list[Message]:
        return common.window_messages(self._template, self._system, query, passages, range(1, len(passages) + 1))

    def _answer_budget(self, n: int) -> int:
        # "[12] > " is about 5 tokens for most tokenizers; a little slack for a closing remark.
        return self.max_tokens or 5 * n + 8

    def rank_window(self, query: str, chunk: list[Hit], stats: ListwiseStats, tracer: Any = None) -> list[int]:
        """One model call: a permutation of ``range(len(chunk))``, best first (repaired, never raises on output)."""
        stats.windows += 1
        budget = self.word_budget
        for attempt in range(3):
            msgs = self.messages(query, [common.passage(h, budget) for h in chunk])
            try:
                result = self.model.chat(
                    msgs, temperature=0.0, max_tokens=self._answer_budget(len(chunk)), tracer=tracer,
                    name="rerank.listwise",
                )
                break
            except ContextOverflowError:
                if attempt == 2 or budget <= 8:
                    raise
                budget //= 2
                stats.shrunk += 1
        order, rep = common.parse_permutation(result.content, len(chunk))
        stats.parse_failures += int(rep.failed)
        stats.missing += rep.missing
        stats.repeated += rep.repeated
        stats.invented += rep.invented
        stats.empty += int(rep.empty)
        return order

    def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Any = None) -> RerankResult:
        """Rerank ``hits`` (rank only: the hits carry ``score=None``); ``tracer`` (optional) overrides the
        constructor's for this call."""
        tracer = tracer if tracer is not None else self.tracer

        def rank(unique: list[Hit], tap: UsageTap) -> common.Ranking:
            stats = ListwiseStats()
            ranked = unique
            if len(unique) > 1:
                ranked = common.sliding_rerank(
                    unique, self.window, self.step, lambda c: self.rank_window(query, c, stats, tap)
                )
            return ranked, None, stats.as_dict()

        return common.run_reranker(self.name, query, hits, k, tracer, rank)
