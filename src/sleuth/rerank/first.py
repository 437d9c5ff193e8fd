"""FIRST: listwise reranking from the first generated token (Reddy et al., "FIRST: Faster Improved Listwise
Reranking with Single Token Decoding", 2024).

``variant="paper"`` (default) is the reference's form (gangiswag/llm-reranker ``rank_listwise_os_llm.py`` with
``use_logits=1, use_alpha=1``, as its ``run_rerank_llm.sh`` runs it; rank_llm's ``RankListwiseOSLLM`` with
``use_logits``/``use_alpha`` reads the logits the same way):

* the RankGPT ranking prompt with letter identifiers ``[A]`` .. ``[T]`` (``prompts/rerank_first_paper.md``,
  the reference's wording; ``[X]`` inside a passage becomes ``(X)``); passages cut to 300 words, shrunk until the
  prompt fits the model's context (the reference's ``create_prompt`` loop);
* the reply is **prefilled with** ``[`` and the model generates one token; its top log-probabilities
  (``top_logprobs``, default 30: rank_llm's ``logprobs=30``) rank the window: a token that is exactly one
  identifier letter scores that passage (its best log-probability when the letter appears twice), best first;
  passages whose letter is not among them follow in their input order (the reference's ``receive_permutation``);
* windows of 20 moved by 10 from the back to the front (``--window_size 20 --step_size 10``).

The prefill needs a backend that continues a trailing assistant message (``supports_prefill``: the embedded
llama.cpp server does). A reply whose first token starts with ``[`` again shows the backend ignored the prefill.

``variant="sleuth-best"`` is sleuth's earlier form, kept as an option (not the paper's): a prompt that asks for the
single most relevant passage, no prefill, 100 words per passage, the top 20 log-probabilities, a letter's spellings
(``" C"``, ``"[C"``) pooled by their best, and (``calibrate=True``) contextual calibration against a second call
with the content-free query ``"N/A"``: ``log p(letter | query) - log p(letter | "N/A")``, which removes much of a
small model's position prior (Qwen2.5-0.5B's first token favours one letter whatever the passages say).

A backend that cannot do what the variant needs (no log-probabilities; for ``paper`` also no prefill) is refused
with :class:`~sleuth.errors.ModelCapabilityError`, unless ``fallback="listwise"``: then such windows (and windows
whose top tokens hold no identifier) are ranked by listwise generation instead, and the ``kind="rerank"`` trace
event counts them (``fallbacks``, ``fallback_reasons``). Without a fallback, a window with no identifier among the
top tokens keeps its input order (``unscored_windows``). The event and ``RerankResult.stats`` say which variant ran.
"""

from __future__ import annotations

import re
import string
from typing import Any

from sleuth.errors import ConfigError, ModelCapabilityError
from sleuth.llm.base import ChatModel, ChatResult, Message
from sleuth.prompts import load_sections, load_with_meta
from sleuth.records import Hit, RerankResult
from sleuth.rerank import common
from sleuth.rerank.base import RerankerBase
from sleuth.rerank.listwise import ListwiseReranker, ListwiseStats
from sleuth.usagetap import UsageTap

LETTERS = string.ascii_uppercase
CALIBRATION_QUERY = "N/A"
PREFILL = "["
VARIANTS = ("paper", "sleuth-best")
FALLBACKS = ("listwise",)
_DEFAULTS = {"paper": {"word_budget": common.REFERENCE_WORD_BUDGET, "top_logprobs": 30},
             "sleuth-best": {"word_budget": common.DEFAULT_WORD_BUDGET, "top_logprobs": 20}}


class _Unranked(Exception):
    """A window FIRST could not rank from log-probabilities; ``capability``: the backend lacks what it needs."""

    def __init__(self, reason: str, *, capability: bool) -> None:
        super().__init__(reason)
        self.reason, self.capability = reason, capability


def _first_top(result: ChatResult) -> dict[str, float]:
    if not result.logprobs:
        return {}
    first = result.logprobs[0]
    cands = dict(first.top)
    cands.setdefault(first.token, first.logprob)
    return cands


def identifier_scores(result: ChatResult, n: int) -> dict[int, float]:
    """The reference's ``_evaluate_logits`` (``use_alpha``): index (0-based) -> log-probability of the first
    generated token that is exactly its letter (one character, ``A`` .. the ``n``-th letter; the best one when a
    letter appears twice), in the order the backend listed the alternatives."""
    out: dict[int, float] = {}
    for tok, lp in _first_top(result).items():
        if len(tok) == 1 and tok in LETTERS[:n]:
            i = LETTERS.index(tok)
            if lp > out.get(i, float("-inf")):
                out[i] = lp
    return out


def replace_letters(text: str) -> str:
    """The reference's ``_replace_number`` for letter identifiers: ``[B]`` in a passage becomes ``(B)``."""
    return re.sub(r"\[([A-z]+)\]", r"(\1)", text)


def letter_scores(result: ChatResult, n: int) -> dict[int, float]:
    """``sleuth-best``: index (0-based) -> best log-probability of its letter among the first generated token's
    alternatives, any spelling (``" C"``, ``"[C"``, ``"(C)"`` count for ``C``)."""
    out: dict[int, float] = {}
    for tok, lp in _first_top(result).items():
        t = tok.strip().strip("[]()").strip()
        if len(t) == 1 and t in LETTERS[:n]:
            i = LETTERS.index(t)
            if i not in out or lp > out[i]:
                out[i] = lp
    return out


def calibrated_scores(with_query: ChatResult, content_free: ChatResult, n: int) -> dict[int, float]:
    """``sleuth-best``: ``log p(letter | query) - log p(letter | "N/A")`` (contextual calibration).

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
        variant: str = "paper",
        window: int = 20,
        step: int = 10,
        word_budget: int | None = None,
        top_logprobs: int | None = None,
        calibrate: bool | None = None,
        fallback: str | None = None,
        context_size: int | None = None,
        tracer: Any = None,
    ) -> None:
        if variant not in VARIANTS:
            raise ConfigError(f"unknown FIRST variant {variant!r}", hint=f"use one of {', '.join(VARIANTS)}")
        if fallback is not None and fallback not in FALLBACKS:
            raise ConfigError(f"unknown FIRST fallback {fallback!r}", hint="use fallback='listwise' or none")
        if calibrate and variant == "paper":
            raise ConfigError("calibration is not part of FIRST's paper form",
                              hint="use variant='sleuth-best' for the calibrated variant")
        if window > len(LETTERS):
            raise ConfigError(f"FIRST window {window} > {len(LETTERS)} letters", hint="use window <= 26 (default 20)")
        common.windows(window, window, step)
        self.model = model
        self.variant = variant
        self.window = window
        self.step = step
        self.word_budget = word_budget or _DEFAULTS[variant]["word_budget"]
        self.top_logprobs = top_logprobs or _DEFAULTS[variant]["top_logprobs"]
        self.calibrate = variant == "sleuth-best" and calibrate is not False
        self.fallback = fallback
        self.context_size = context_size
        self.tracer = tracer
        self._paper, _ = load_sections("rerank_first_paper")
        self._template, meta = load_with_meta("rerank_first")
        self._system = meta.get("system", "")
        self.listwise = ListwiseReranker(model, window=window, step=step, word_budget=self.word_budget, tracer=tracer)
        self.missing = self._missing_capability()
        if self.missing and fallback is None:
            raise ModelCapabilityError(
                f"FIRST (variant={variant}) cannot run on {getattr(model, 'model', '?')!r}: {self.missing}",
                hint="pass fallback='listwise' (CLI: --rerank-opt fallback=listwise) to rank by listwise generation "
                "instead" + (", or variant='sleuth-best' (log-probabilities, no prefill)" if variant == "paper"
                            and getattr(model, "supports_logprobs", False) else "")
                + "; or use --rerank listwise",
            )

    def _missing_capability(self) -> str | None:
        if not getattr(self.model, "supports_logprobs", False):
            return "the backend does not return log-probabilities (supports_logprobs is false)"
        if self.variant == "paper" and not getattr(self.model, "supports_prefill", False):
            return ("the backend does not continue a prefilled reply (supports_prefill is false; for a server that "
                    "does, like llama.cpp's, say so: SLEUTH_PREFILL=1, [model] prefill = true, or "
                    "LLM(..., prefill=True))")
        return None

    # -- prompts ---------------------------------------------------------------------------------------------
    def messages(self, query: str, passages: list[str]) -> list[Message]:
        """The window's prompt, without the prefill (``paper``: the reference's; ``sleuth-best``: its own)."""
        if self.variant == "paper":
            body = "".join(f"[{LETTERS[i]}] {replace_letters(p)}\n" for i, p in enumerate(passages))
            user = self._paper["user"].format(num=len(passages), query=query.strip(), passages=body)
            return [{"role": "system", "content": self._paper["system"]}, {"role": "user", "content": user}]
        return common.window_messages(
            self._template, self._system, query, passages, LETTERS, last=LETTERS[len(passages) - 1]
        )

    def _one_token(self, messages: list[Message], tracer: Any) -> ChatResult:
        return self.model.chat(
            messages, temperature=0.0, max_tokens=1, logprobs=True, top_logprobs=self.top_logprobs, tracer=tracer,
            name="rerank.first",
        )

    # -- one window ------------------------------------------------------------------------------------------
    def _paper_scores(self, query: str, chunk: list[Hit], stats: dict[str, Any], tracer: Any) -> dict[int, float]:
        n = len(chunk)

        def build(words: int) -> list[Message]:
            return self.messages(query, [common.passage(h, words) for h in chunk])

        msgs, words = common.fit_words(
            build, lambda m: common.prompt_tokens(self.model, m), n, self.word_budget,
            common.context_of(self.model, self.context_size), common.output_tokens(self.model, LETTERS[:n]),
        )
        result, words, shrunk = common.call_fitted(
            build, lambda m: self._one_token([*m, {"role": "assistant", "content": PREFILL}], tracer), msgs, words
        )
        stats["words"] = min(stats["words"], words)
        stats["shrunk"] += shrunk
        if not result.logprobs:
            raise _Unranked("the backend returned no logprobs", capability=True)
        if result.logprobs[0].token.startswith(PREFILL):
            raise _Unranked(f"the backend did not continue the prefilled {PREFILL!r}: its reply began with "
                            f"{result.logprobs[0].token!r} (it does not support a prefill)", capability=True)
        return identifier_scores(result, n)

    def _calibrated_scores(self, query: str, chunk: list[Hit], tracer: Any) -> dict[int, float]:
        passages = [common.passage(h, self.word_budget) for h in chunk]
        result = self._one_token(self.messages(query, passages), tracer)
        if not result.logprobs:
            raise _Unranked("the backend returned no logprobs", capability=True)
        scores = letter_scores(result, len(chunk))
        if self.calibrate and scores:
            content_free = self._one_token(self.messages(CALIBRATION_QUERY, passages), tracer)
            scores = calibrated_scores(result, content_free, len(chunk))
        return scores

    def rank_window(
        self, query: str, chunk: list[Hit], stats: dict[str, Any], lw: ListwiseStats, tracer: Any = None
    ) -> list[int]:
        stats["windows"] += 1
        try:
            if self.missing:
                raise _Unranked(self.missing, capability=True)
            if self.variant == "paper":
                scores = self._paper_scores(query, chunk, stats, tracer)
            else:
                scores = self._calibrated_scores(query, chunk, tracer)
            if not scores:
                raise _Unranked(f"no identifier among the top {self.top_logprobs} first tokens", capability=False)
        except _Unranked as e:
            if self.fallback is None and e.capability:
                raise ModelCapabilityError(
                    f"FIRST (variant={self.variant}) on {getattr(self.model, 'model', '?')!r}: {e.reason}",
                    hint="pass fallback='listwise' (CLI: --rerank-opt fallback=listwise) to rank such windows by "
                    "listwise generation, or use --rerank listwise",
                ) from None
            if e.reason not in stats["fallback_reasons"]:
                stats["fallback_reasons"].append(e.reason)
            if self.fallback is None:
                stats["unscored_windows"] += 1
                stats["unscored"] += len(chunk)
                return list(range(len(chunk)))  # the reference's receive_permutation of an empty answer
            stats["fallbacks"] += 1
            return self.listwise.rank_window(query, chunk, lw, tracer)
        stats["scored"] += len(scores)
        stats["unscored"] += len(chunk) - len(scores)
        ranked = sorted(scores, key=lambda i: -scores[i])
        return ranked + [i for i in range(len(chunk)) if i not in scores]

    def run(self, query: str, hits: list[Hit], k: int | None = None, *, tracer: Any = None) -> RerankResult:
        """Rerank ``hits`` (rank only: letter log-probabilities of different windows are not comparable, so the
        hits carry ``score=None``); ``tracer`` (optional) overrides the constructor's for this call."""
        tracer = tracer if tracer is not None else self.tracer

        def rank(unique: list[Hit], tap: UsageTap) -> common.Ranking:
            stats: dict[str, Any] = {
                "variant": self.variant, "prefill": PREFILL if self.variant == "paper" else None,
                "calibrate": self.calibrate, "top_logprobs": self.top_logprobs, "fallback": self.fallback,
                "windows": 0, "scored": 0, "unscored": 0, "unscored_windows": 0, "words": self.word_budget,
                "shrunk": 0, "fallbacks": 0, "fallback_reasons": [],
            }
            lw = ListwiseStats(self.word_budget)
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
