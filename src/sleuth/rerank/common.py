"""Shared pieces of the rerankers: input checks, passage truncation, the sliding-window schedule, permutation repair.

Defined behaviour for bad input, the same for every backend:

* an empty or whitespace-only query raises :class:`~sleuth.errors.ToolArgumentError`; a negative ``k`` too;
* zero candidates return ``[]``; one candidate is returned as is, without a model call (and without a score);
* hits with the same ``doc_id`` are collapsed to their first occurrence (a reranker returns each document once);
* every passage is cut to a word budget *and* a character budget (text without spaces, e.g. Chinese, has no
  words to count), so a candidate longer than the model's window never overflows it;
* lists longer than the window are reranked with RankGPT's sliding window, from the back to the front.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import ToolArgumentError
from sleuth.llm.base import Message
from sleuth.records import Hit, RerankResult, TraceEvent
from sleuth.usagetap import UsageTap

DEFAULT_WORD_BUDGET = 100
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


def windows(n: int, size: int, step: int) -> list[tuple[int, int]]:
    """RankGPT's sliding-window schedule over ``n`` ranked items: ``(start, end)`` pairs from the back to the front.

    The last window ends at ``n``; each next one starts ``step`` earlier; the final window starts at 0. With
    ``n <= size`` there is one window; the front window always spans ``[0, size)``. Every item is covered, and the
    best items bubble to the top."""
    if size < 1 or step < 1:
        raise ToolArgumentError(f"window {size} and step {step} must be >= 1", hint="use window 20, step 10")
    if n <= size:
        return [(0, n)] if n else []
    out: list[tuple[int, int]] = []
    end = n
    while True:
        start = max(0, end - size)
        if start == 0:
            end = size  # the front window is a full one (RankGPT's loop would skip a short remainder)
        out.append((start, end))
        if start == 0:
            break
        end -= step
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
