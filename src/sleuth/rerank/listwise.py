"""Listwise reranking with a permutation prompt (RankGPT: Sun et al., "Is ChatGPT Good at Search?", 2023).

The default is the reference's form (sunnweiwei/RankGPT ``rank_gpt.py``; castorini/rank_llm ``rank_gpt``):

* **the prompt** is RankGPT's conversation (``prompts/rerank_listwise.md``): a system line, the task, then each
  passage as its own user turn (``[3] text``) answered by the assistant (``Received passage [3].``), then the
  instruction to answer with a permutation like ``[3] > [1] > [2]``;
* **passages** are cut to 300 words each (RankGPT's ``max_length``), and the budget shrinks until the prompt fits
  the model's context (rank_llm's ``create_prompt`` loop; the context is the model's ``context_tokens``, the
  embedded server's ``n_ctx``, else 4,096); ``[12]`` inside a passage or the query becomes ``(12)`` (rank_llm);
* **windows** of 20 move by 10 from the back of the list to the front (rank_llm's ``sliding_windows``), so the
  best documents bubble up;
* **the answer** is read as RankGPT's ``receive_permutation`` reads it (:func:`sleuth.rerank.common.
  parse_permutation`): every number in the text, identifiers outside ``1..n`` dropped, repeats keep their first
  place, passages the model left out follow in their input order. Greedy decoding, at most as many tokens as the
  full permutation takes (rank_llm's ``num_output_tokens``).

Options: ``prompt="single-turn"`` puts the whole window in one user message (sleuth's earlier default; fewer
tokens: no per-passage turns); ``word_budget``, ``window``, ``step``, ``context_size``, ``max_tokens``. Every repair
is counted; one ``kind="rerank"`` trace event per call reports the prompt form, windows, the smallest word budget
used, parse failures and repairs. A prompt that still overflows is retried with half the word budget (twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sleuth.errors import ConfigError
from sleuth.llm.base import ChatModel, Message
from sleuth.prompts import load_sections, load_with_meta
from sleuth.records import Hit, RerankResult
from sleuth.rerank import common
from sleuth.rerank.base import RerankerBase
from sleuth.usagetap import UsageTap

PROMPTS = ("rankgpt", "single-turn")


class ListwiseStats:
    """Counters for one rerank call (reported in the trace event)."""

    def __init__(self, words: int = 0) -> None:
        self.windows = 0
        self.parse_failures = 0
        self.missing = 0
        self.repeated = 0
        self.invented = 0
        self.empty = 0
        self.shrunk = 0
        self.words = words  # the smallest per-passage word budget any window used

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))


def rankgpt_messages(sections: dict[str, str], query: str, passages: Sequence[str]) -> list[Message]:
    """RankGPT's ``create_permutation_instruction``: the conversation for one window."""
    num = len(passages)
    msgs: list[Message] = [
        {"role": "system", "content": sections["system"]},
        {"role": "user", "content": sections["prefix_user"].format(num=num, query=query)},
        {"role": "assistant", "content": sections["prefix_assistant"]},
    ]
    for rank, text in enumerate(passages, 1):
        msgs.append({"role": "user", "content": sections["body_user"].format(rank=rank, passage=text)})
        msgs.append({"role": "assistant", "content": sections["body_assistant"].format(rank=rank)})
    msgs.append({"role": "user", "content": sections["suffix_user"].format(num=num, query=query)})
    return msgs


class ListwiseReranker(RerankerBase):
    """RankGPT permutation reranking with any :class:`~sleuth.llm.base.ChatModel` (injected)."""

    name = "listwise"

    def __init__(
        self,
        model: ChatModel,
        *,
        window: int = 20,
        step: int = 10,
        word_budget: int = common.REFERENCE_WORD_BUDGET,
        prompt: str = "rankgpt",
        context_size: int | None = None,
        max_tokens: int | None = None,
        tracer: Any = None,
    ) -> None:
        common.windows(window, window, step)  # validates window/step
        if prompt not in PROMPTS:
            raise ConfigError(f"unknown listwise prompt {prompt!r}", hint=f"use one of {', '.join(PROMPTS)}")
        if word_budget < 1:
            raise ConfigError(f"word_budget must be >= 1, got {word_budget}", hint="use 300 (RankGPT's)")
        self.model = model
        self.window = window
        self.step = step
        self.word_budget = word_budget
        self.prompt = prompt
        self.context_size = context_size
        self.max_tokens = max_tokens
        self.tracer = tracer
        self._sections, _ = load_sections("rerank_listwise")
        self._template, meta = load_with_meta("rerank_listwise_single_turn")
        self._system = meta.get("system", "")

    def messages(self, query: str, passages: list[str]) -> list[Message]:
        query = common.replace_number(query.strip())
        passages = [common.replace_number(p) for p in passages]
        if self.prompt == "single-turn":
            return common.window_messages(self._template, self._system, query, passages, range(1, len(passages) + 1))
        return rankgpt_messages(self._sections, query, passages)

    def rank_window(self, query: str, chunk: list[Hit], stats: ListwiseStats, tracer: Any = None) -> list[int]:
        """One model call: a permutation of ``range(len(chunk))``, best first (repaired, never raises on output)."""
        stats.windows += 1
        n = len(chunk)

        def build(words: int) -> list[Message]:
            return self.messages(query, [common.passage(h, words) for h in chunk])

        answer = common.output_tokens(self.model, range(1, n + 1))
        msgs, words = common.fit_words(
            build, lambda m: common.prompt_tokens(self.model, m), n, self.word_budget,
            common.context_of(self.model, self.context_size), answer,
        )

        def call(m: list[Message]) -> Any:
            return self.model.chat(
                m, temperature=0.0, max_tokens=self.max_tokens or answer, tracer=tracer, name="rerank.listwise"
            )

        result, words, shrunk = common.call_fitted(build, call, msgs, words)
        stats.shrunk += shrunk
        stats.words = min(stats.words, words)
        order, rep = common.parse_permutation(result.content, n)
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
            stats = ListwiseStats(self.word_budget)
            ranked = unique
            if len(unique) > 1:
                ranked = common.sliding_rerank(
                    unique, self.window, self.step, lambda c: self.rank_window(query, c, stats, tap)
                )
            return ranked, None, {"prompt": self.prompt, **stats.as_dict()}

        return common.run_reranker(self.name, query, hits, k, tracer, rank)
