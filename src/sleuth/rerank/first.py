"""FIRST: listwise reranking from the first generated token (Reddy et al., "FIRST: Faster Improved Listwise
Reranking with Single Token Decoding", 2024).

The prompt is RankGPT's with letter identifiers ``A`` .. ``T`` (each letter is one token for Qwen's and most
BPE tokenizers; two-digit numbers are not). The model generates **one** token (``max_tokens=1``); the window is
ranked by the log-probabilities of the identifier letters among that token's top alternatives
(``logprobs=True, top_logprobs=K``), best first. Letters absent from the top-K follow in their input order.
A token like ``" C"`` or ``"[C"`` counts for ``C``; a letter's best variant wins.

A small model's first token carries a strong position prior (Qwen2.5-0.5B answers ``A`` or the last letter for
almost any query). With ``calibrate=True`` (default) a second one-token call with the content-free query ``"N/A"``
measures that prior and the window is ranked by ``log p(letter | query) - log p(letter | "N/A")`` (contextual
calibration, as ICR calibrates attention). The query is placed after the passages, so llama.cpp's prompt cache
serves the shared prefix and the second call costs only the last few tokens.

Where the backend returns no log-probabilities (``supports_logprobs`` is false, or the result carries none), or
no window letter is among the alternatives, the window is reranked by the listwise permutation prompt instead,
and the reason is recorded (``fallbacks`` and ``fallback_reasons`` in the ``kind="rerank"`` trace event).
"""

from __future__ import annotations

import string
from typing import Any

from sleuth.errors import ConfigError
from sleuth.llm.base import ChatModel, ChatResult, Message
from sleuth.prompts import load_with_meta
from sleuth.records import Hit, RerankResult
from sleuth.rerank import common
from sleuth.rerank.base import RerankerBase
from sleuth.rerank.listwise import ListwiseReranker, ListwiseStats
from sleuth.usagetap import UsageTap

LETTERS = string.ascii_uppercase
CALIBRATION_QUERY = "N/A"


def _first_top(result: ChatResult) -> dict[str, float]:
    if not result.logprobs:
        return {}
    first = result.logprobs[0]
    cands = dict(first.top)
    cands.setdefault(first.token, first.logprob)
    return cands


def letter_scores(result: ChatResult, n: int) -> dict[int, float]:
    """Index (0-based) -> best log-probability of its letter among the first generated token's alternatives."""
    out: dict[int, float] = {}
    for tok, lp in _first_top(result).items():
        t = tok.strip().strip("[]()").strip()
        if len(t) == 1 and t in LETTERS[:n]:
            i = LETTERS.index(t)
            if i not in out or lp > out[i]:
                out[i] = lp
    return out


def calibrated_scores(with_query: ChatResult, content_free: ChatResult, n: int) -> dict[int, float]:
    """``log p(letter | query) - log p(letter | "N/A")`` (contextual calibration of the position prior).

    A letter missing from one call's top-K gets that call's lowest listed log-probability (an upper bound of its
    own); letters missing from both calls stay unscored."""
    q, na = letter_scores(with_query, n), letter_scores(content_free, n)
    floor_q = min(_first_top(with_query).values(), default=0.0)
    floor_na = min(_first_top(content_free).values(), default=0.0)
    return {i: q.get(i, floor_q) - na.get(i, floor_na) for i in set(q) | set(na)}


class FirstReranker(RerankerBase):
    """Single-token listwise reranking (FIRST) with any ChatModel that returns top log-probabilities."""

    name = "first"

    def __init__(
        self,
        model: ChatModel,
        *,
        window: int = 20,
        step: int = 10,
        word_budget: int = common.DEFAULT_WORD_BUDGET,
        top_logprobs: int = 20,
        calibrate: bool = True,
        tracer: Any = None,
    ) -> None:
        if window > len(LETTERS):
            raise ConfigError(f"FIRST window {window} > {len(LETTERS)} letters", hint="use window <= 26 (default 20)")
        common.windows(window, window, step)
        self.model = model
        self.window = window
        self.step = step
        self.word_budget = word_budget
        self.top_logprobs = top_logprobs
        self.calibrate = calibrate
        self.tracer = tracer
        self._template, meta = load_with_meta("rerank_first")
        self._system = meta.get("system", "")
        self.fallback = ListwiseReranker(model, window=window, step=step, word_budget=word_budget, tracer=tracer)

    def messages(self, query: str, passages: list[str]) -> list[Message]:
        return common.window_messages(
            self._template, self._system, query, passages, LETTERS, last=LETTERS[len(passages) - 1]
        )

    def _first_token(self, query: str, passages: list[str], tracer: Any) -> ChatResult:
        return self.model.chat(
            self.messages(query, passages), temperature=0.0, max_tokens=1, logprobs=True,
            top_logprobs=self.top_logprobs, tracer=tracer, name="rerank.first",
        )

    def rank_window(
        self, query: str, chunk: list[Hit], stats: dict[str, Any], lw: ListwiseStats, tracer: Any = None
    ) -> list[int]:
        stats["windows"] += 1
        reason = None
        if not getattr(self.model, "supports_logprobs", False):
            reason = f"model {getattr(self.model, 'model', '?')!r} does not support logprobs"
        else:
            passages = [common.passage(h, self.word_budget) for h in chunk]
            result = self._first_token(query, passages, tracer)
            scores = letter_scores(result, len(chunk))
            if self.calibrate and scores:
                scores = calibrated_scores(result, self._first_token(CALIBRATION_QUERY, passages, tracer), len(chunk))
            if result.logprobs is None or not result.logprobs:
                reason = "the backend returned no logprobs"
            elif not scores:
                reason = f"no identifier among the top {self.top_logprobs} first tokens ({result.content!r})"
            else:
                stats["scored"] += len(scores)
                stats["unscored"] += len(chunk) - len(scores)
                ranked = sorted(scores, key=lambda i: -scores[i])
                return ranked + [i for i in range(len(chunk)) if i not in scores]
        stats["fallbacks"] += 1
        if reason not in stats["fallback_reasons"]:
            stats["fallback_reasons"].append(reason)
        return self.fallback.rank_window(query, chunk, lw, tracer)

    def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Any = None) -> RerankResult:
        """Rerank ``hits`` (rank only: letter log-probabilities of different windows are not comparable, so the
        hits carry ``score=None``); ``tracer`` (optional) overrides the constructor's for this call."""
        tracer = tracer if tracer is not None else self.tracer

        def rank(unique: list[Hit], tap: UsageTap) -> common.Ranking:
            stats: dict[str, Any] = {"windows": 0, "scored": 0, "unscored": 0, "fallbacks": 0, "fallback_reasons": []}
            lw = ListwiseStats()
            ranked = unique
            if len(unique) > 1:
                ranked = common.sliding_rerank(
                    unique, self.window, self.step, lambda c: self.rank_window(query, c, stats, lw, tap)
                )
            if stats["fallbacks"]:
                stats["listwise"] = lw.as_dict()
                stats["parse_failures"] = lw.parse_failures
            return ranked, None, stats

        return common.run_reranker(self.name, query, hits, k, tracer, rank)
