"""Token and cost accounting for one model call.

* Tokens: what the provider reports (``usage.prompt_tokens``/``completion_tokens``); when it reports nothing, a
  local tiktoken count (``token_source="local_tokenizer"``). ``cached_tokens``: the part of the prompt the
  provider reports as served from its prompt cache (``usage.prompt_tokens_details.cached_tokens``), 0 otherwise.
* tiktoken offline: ``get_encoding`` downloads its BPE files unless they are in ``TIKTOKEN_CACHE_DIR``. The
  litellm wheel ships them (``litellm/litellm_core_utils/tokenizers/``); :func:`ensure_tiktoken_offline` points
  ``TIKTOKEN_CACHE_DIR`` there explicitly (found without importing litellm), unless the user set it.
* Cost: litellm's bundled price map (``LITELLM_LOCAL_MODEL_COST_MAP=True``: no download) when it knows the
  model; otherwise the call is unpriced and :attr:`Usage.cost` reads ``"unmeasured"``, never 0.
* :class:`UsageCounter`: the one tracer wrapper that counts what the calls it sees cost (an agent node, a SIRA
  proposal, an enrichment call), forwarding every event to the tracer it wraps.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from sleuth.records import TraceEvent, Usage
from sleuth.tracing.tracer import CallTally, ForwardingTracer

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def litellm_tokenizer_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return d if d.is_dir() else None


def ensure_tiktoken_offline() -> None:
    """Point ``TIKTOKEN_CACHE_DIR`` at litellm's bundled BPE files (unless already set)."""
    if os.environ.get("TIKTOKEN_CACHE_DIR"):
        return
    d = litellm_tokenizer_dir()
    if d is not None:
        os.environ["TIKTOKEN_CACHE_DIR"] = str(d)


@lru_cache(maxsize=4)
def _encoding(name: str) -> Any:
    ensure_tiktoken_offline()
    import tiktoken

    return tiktoken.get_encoding(name)


def encoding_for(model: str) -> str:
    m = model.lower()
    if any(k in m for k in ("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4")):
        return "o200k_base"
    return "cl100k_base"


def count_tokens(text: str, model: str = "") -> int:
    """Local token count with tiktoken (an estimate for non-OpenAI models; exact for OpenAI ones)."""
    if not text:
        return 0
    return len(_encoding(encoding_for(model)).encode(text, disallowed_special=()))


def messages_text(messages: list[dict[str, Any]]) -> str:
    parts = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):  # multi-part content
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        parts.append(f"{m.get('role', '')}: {content or ''}")
        for c in m.get("tool_calls") or []:
            fn = c.get("function", {}) if isinstance(c, dict) else {}
            parts.append(f"{fn.get('name', '')} {fn.get('arguments', '')}")
    return "\n".join(parts)


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float | None:
    """USD cost from litellm's bundled price map, or None when the model is not in it (unpriced)."""
    try:
        import litellm

        p, c = litellm.cost_per_token(model=model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    except Exception:  # litellm raises a bare Exception for unmapped models
        return None
    total = float(p) + float(c)
    if total == 0.0 and not _known_free(model):
        return None  # litellm prices some unknown/self-hosted routes at 0: that is not a measurement
    return total


def _known_free(model: str) -> bool:
    try:
        import litellm

        info = litellm.get_model_info(model)
    except Exception:
        return False
    return info.get("input_cost_per_token") == 0 and info.get("output_cost_per_token") == 0


def usage_from_response(
    model: str,
    reported: Any,
    messages: list[dict[str, Any]],
    completion_text: str,
    *,
    priced_model: str | None = None,
) -> Usage:
    """A one-call :class:`Usage` from a provider's usage block (object or dict), else from a local count."""
    pt = ct = None
    cached = 0
    if reported is not None:
        pt, ct = field_of(reported, "prompt_tokens"), field_of(reported, "completion_tokens")
        details = field_of(reported, "prompt_tokens_details")  # OpenAI's form; llama.cpp and vLLM send it too
        hit = field_of(details, "cached_tokens")  # None when there are no details
        cached = hit if isinstance(hit, int) and hit > 0 else 0
    if isinstance(pt, int) and isinstance(ct, int) and (pt or ct):
        source = "provider"
    else:
        pt, ct = count_tokens(messages_text(messages), model), count_tokens(completion_text, model)
        source, cached = "local_tokenizer", 0
    cost = price(priced_model, pt, ct) if priced_model else None
    return Usage.one_call(pt, ct, cost, source, cached_tokens=min(cached, pt))  # type: ignore[arg-type]


def field_of(obj: Any, key: str) -> Any:
    """``obj[key]`` of a dict, ``obj.key`` of an object (litellm's response types), None when absent."""
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


class UsageCounter(ForwardingTracer):
    """Forwards every event to ``inner`` (None: drops it) and keeps a :class:`~sleuth.tracing.CallTally` of the
    events that passed: LLM calls, tool calls and the usage of the LLM calls (a failed structured call's tokens
    too, since its event carries them even when the call raises). ``span=True``: it also opens a span
    (:class:`~sleuth.tracing.tracer.ForwardingTracer`), for a component call whose model calls nest under it."""

    def __init__(self, inner: Any = None, *, span: bool = False) -> None:
        super().__init__(inner, span=span)
        self.tally = CallTally()

    def emit(self, event: TraceEvent) -> TraceEvent:
        self.tally.add(event)
        return super().emit(event)

    @property
    def usage(self) -> Usage:
        return self.tally.usage

    @property
    def llm_calls(self) -> int:
        return self.tally.llm_calls

    @property
    def tool_calls(self) -> int:
        return self.tally.tool_calls
