"""Shared pieces of the rerankers: input checks, passage truncation, the sliding-window schedule, permutation repair.

Defined behaviour for bad input, the same for every backend:

* an empty or whitespace-only query raises :class:`~sleuth.errors.ToolArgumentError`; a negative ``k`` too;
* zero candidates return ``[]``; one candidate is returned as is, without a model call (and without a score);
* hits with the same ``doc_id`` are collapsed to their first occurrence (a reranker returns each document once);
* every passage is cut to a word budget *and* a character budget (text without spaces, e.g. Chinese, has no
  words to count), so a candidate longer than the model's window never overflows it; the word budget shrinks
  until the prompt fits the model's context (rank_llm's ``create_prompt`` loop: :func:`fit_words`);
* lists longer than the window are reranked with RankGPT's sliding window, from the back to the front, on
  rank_llm's schedule (:func:`windows`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import ContextOverflowError, ToolArgumentError
from sleuth.llm.base import ChatModel, Message
from sleuth.records import Hit, RerankResult, TraceEvent
from sleuth.usagetap import UsageTap

DEFAULT_WORD_BUDGET = 100
REFERENCE_WORD_BUDGET = 300  # RankGPT's and FIRST's max_length (words per passage) before fitting to the context
DEFAULT_CONTEXT_TOKENS = 4096  # rank_llm's context_size default, for a model that does not say its window
CHARS_PER_WORD = 8  # character budget = words * this (for scripts written without spaces)


def check_args(query: str, k: int | None) -> None:
    if not isinstance(query, str) or not query.strip():
        raise ToolArgumentError("the rerank query is empty", hint="pass the question or search query to rank by")
    if k is not None and k < 0:
        raise ToolArgumentError(f"k must be >= 0, got {k}", hint="pass k >= 1, or leave it out to keep every hit")


def window_messages(
    template: str, system: str, query: str, passages: list[str], labels: Sequence[Any], **fields: Any
) -> list[Message]:
    """The chat messages of one window: ``[label] passage`` lines filled into ``template`` (with ``num``, ``query``,
    ``passages`` and any extra ``fields``) as the user message, after ``system`` when it is not empty."""
    body = "\n".join(f"[{label}] {p}" for label, p in zip(labels, passages, strict=False))
    user = template.format(num=len(passages), query=query.strip(), passages=body, **fields)
    msgs: list[Message] = [{"role": "system", "content": system}] if system else []
    return [*msgs, {"role": "user", "content": user}]


def dedupe(hits: Sequence[Hit]) -> tuple[list[Hit], int]:
    """Drop hits whose ``doc_id`` was seen before; returns (unique hits in input order, number dropped)."""
    seen: set[str] = set()
    out: list[Hit] = []
    for h in hits:
        if h.doc_id in seen:
            continue
        seen.add(h.doc_id)
        out.append(h)
    return out, len(hits) - len(out)


def truncate(text: str, words: int = DEFAULT_WORD_BUDGET) -> str:
    """Whitespace-normalised ``text`` cut to ``words`` words and ``words * CHARS_PER_WORD`` characters."""
    parts = text.split()
    out = " ".join(parts[:words])
    limit = words * CHARS_PER_WORD
    if len(out) > limit:
        out = out[:limit]
    return out


def passage(hit: Hit, words: int = DEFAULT_WORD_BUDGET) -> str:
    """The text a reranker judges: ``Hit.text`` (falls back to the doc id when a hit carries no text)."""
    return truncate(hit.text or hit.doc_id, words)


def replace_number(text: str) -> str:
    """rank_llm's ``_replace_number``: ``[12]`` in a passage or query becomes ``(12)``, so that text never
    carries an identifier of the numbered prompt."""
    return re.sub(r"\[(\d+)\]", r"(\1)", text)


def prompt_tokens(model: ChatModel, messages: list[Message]) -> int:
    """The tokens of a chat prompt as rank_llm counts a message list for an API model (``rank_gpt.py``
    ``get_num_tokens``, its gpt-3.5 rule): each message's role and content, 4 per message, 3 priming the reply.
    One ``count_tokens`` call (the embedded server's own tokenizer when it runs)."""
    text = "\n".join(f"{m.get('role', '')}\n{m.get('content') or ''}" for m in messages)
    return model.count_tokens(text) + 4 * len(messages) + 3


def output_tokens(model: ChatModel, labels: Sequence[Any]) -> int:
    """rank_llm's ``num_output_tokens``: the tokens of the full answer ``[1] > [2] > ... > [n]``."""
    return model.count_tokens(" > ".join(f"[{label}]" for label in labels))


def context_of(model: ChatModel, context_size: int | None) -> int:
    """The window prompts are fitted to: ``context_size`` when given, else the model's ``context_tokens`` (the
    embedded server's ``n_ctx``), else rank_llm's default of 4,096 tokens."""
    return int(context_size or getattr(model, "context_tokens", None) or DEFAULT_CONTEXT_TOKENS)


def fit_words(
    build: Callable[[int], list[Message]], count: Callable[[list[Message]], int], n: int, words: int, context: int,
    reserve: int,
) -> tuple[list[Message], int]:
    """rank_llm's ``create_prompt`` loop: ``build(words)`` while the prompt is over ``context - reserve`` tokens,
    lowering the per-passage word budget by ``max(1, excess // (4 n))`` each time. Returns the messages and the
    budget used (at least 1 word: a prompt whose fixed part alone overflows is sent, and the server says so)."""
    while True:
        messages = build(words)
        excess = count(messages) - (context - reserve)
        if excess <= 0 or words <= 1:
            return messages, words
        words = max(1, words - max(1, excess // (4 * max(n, 1))))


def call_fitted(
    build: Callable[[int], list[Message]], call: Callable[[list[Message]], Any], messages: list[Message], words: int,
) -> tuple[Any, int, int]:
    """``call(messages)``; on :class:`ContextOverflowError` (the count was an estimate) rebuild with half the word
    budget and retry, twice at most. Returns (the call's result, the budget used, how many times it shrank)."""
    shrunk = 0
    while True:
        try:
            return call(messages), words, shrunk
        except ContextOverflowError:
            if shrunk == 2 or words <= 8:
                raise
            words //= 2
            shrunk += 1
            messages = build(words)


def windows(n: int, size: int, step: int) -> list[tuple[int, int]]:
    """RankGPT's sliding-window schedule over ``n`` ranked items: ``(start, end)`` pairs from the back to the front,
    exactly as rank_llm's ``sliding_windows`` (``listwise_rankllm.py``; gangiswag/llm-reranker's is the same).

    The window is at most ``n`` long; the last one ends at ``n``, each next one ``step`` earlier; the front one
    starts at 0 and may be shorter (25 items, 20/10: ``(5, 25), (0, 15)``); a window that would only repeat the
    front of the previous one is skipped (``start + step == 0``). The best items bubble to the top."""
    if size < 1 or step < 1:
        raise ToolArgumentError(f"window {size} and step {step} must be >= 1", hint="use window 20, step 10")
    size = min(size, n)
    out: list[tuple[int, int]] = []
    end, start = n, n - size
    while end > 0 and start + step != 0:
        start = max(start, 0)
        out.append((start, end))
        end, start = end - step, start - step
    return out


def sliding_rerank(items: list[Any], size: int, step: int, rank_window: Callable[[list[Any]], list[int]]) -> list[Any]:
    """Apply ``rank_window`` (returns a permutation of ``range(len(window))``, best first) window by window,
    from the back to the front. The merge rule is RankGPT's: each window's items are written back in the window's
    new order, in place, so the top of a later window's input includes the winners of the earlier windows."""
    items = list(items)
    for start, end in windows(len(items), size, step):
        chunk = items[start:end]
        order = rank_window(chunk)
        items[start:end] = [chunk[i] for i in order]
    return items


class Repair(BaseModel):
    """What the permutation parser had to fix in one model answer."""

    parsed: list[int] = Field(default_factory=list)  # 0-based indices the model named, in its order, valid only
    missing: int = 0  # identifiers the model left out (appended in their input order)
    repeated: int = 0  # identifiers named more than once (later mentions dropped)
    invented: int = 0  # identifiers outside 1..n (dropped)
    empty: bool = False  # no identifier at all

    @property
    def failed(self) -> bool:
        return self.empty or bool(self.missing or self.repeated or self.invented)


_NUM = re.compile(r"\d+")


def parse_permutation(text: str, n: int) -> tuple[list[int], Repair]:
    """Parse a RankGPT answer like ``[3] > [1] > [2]`` into a full permutation of ``range(n)``, never raising.

    Numbers are read wherever they appear (the model may drop the brackets or write prose); identifiers outside
    1..n are dropped, repeats keep their first place, and identifiers the model left out follow in input order."""
    rep = Repair()
    seen: set[int] = set()
    for m in _NUM.finditer(text or ""):
        tok = m.group()
        if len(tok) > 4:  # a long digit run is not an identifier
            rep.invented += 1
            continue
        i = int(tok) - 1
        if not 0 <= i < n:
            rep.invented += 1
        elif i in seen:
            rep.repeated += 1
        else:
            seen.add(i)
            rep.parsed.append(i)
    rep.empty = not rep.parsed
    rest = [i for i in range(n) if i not in seen]
    rep.missing = len(rest)
    return rep.parsed + rest, rep


# (ranked unique hits, the reranker's score per doc id or None for rank-only, counters for the trace and result)
Ranking = tuple[list[Hit], dict[str, float] | None, dict[str, Any]]


def run_reranker(
    method: str,
    query: str,
    hits: list[Hit],
    k: int | None,
    tracer: Any,
    rank: Callable[[list[Hit], UsageTap], Ranking],
) -> RerankResult:
    """The frame every reranker's ``run`` shares: check the arguments, collapse duplicates, call
    ``rank(unique_hits, tap)`` (``tap`` is the tracer to hand to every model call: it forwards to ``tracer`` and
    measures this call's usage), emit one ``kind="rerank"`` event and build the :class:`RerankResult`."""
    check_args(query, k)
    t0 = time.perf_counter()
    unique, dropped = dedupe(hits)
    tap = UsageTap(tracer, span=tracer is not None)  # this call's span: its model calls nest under it
    ranked, scores, stats = rank(unique, tap)
    has_scores = scores is not None
    first_pos: dict[str, int] = {}
    for i, h in enumerate(hits):
        first_pos.setdefault(h.doc_id, i)
    out: list[Hit] = []
    for h in ranked:
        meta = dict(h.metadata)
        meta.setdefault("first_stage_score", h.score)
        meta["reranker"] = method
        score = scores.get(h.doc_id) if scores is not None else None
        out.append(h.model_copy(update={"score": score, "metadata": meta}))
    latency = time.perf_counter() - t0
    if tracer is not None:
        tap.emit(tap.own(
            TraceEvent(
                kind="rerank",
                name=method,
                args={"query": query[:200], "candidates": len(hits)},
                usage=tap.usage if tap.usage.calls else None,
                latency_s=latency,
                data={
                    "duplicates": dropped, "has_scores": has_scores, **stats,
                    "hits": [{"doc_id": h.doc_id, "score": h.score} for h in (out if k is None else out[:k])],
                },
            )
        ))
    return RerankResult(
        query=query, method=method, hits=out if k is None else out[:k],
        permutation=[first_pos[h.doc_id] for h in ranked], has_scores=has_scores, duplicates=dropped,
        usage=tap.usage, latency_s=latency, stats={"duplicates": dropped, **stats},
    )
