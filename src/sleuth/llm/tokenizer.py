"""Counting tokens with the model's own tokenizer, without a server.

A :class:`TokenCounter` says how many tokens a text costs a given model and how it knows (:attr:`~TokenCounter.how`,
:attr:`~TokenCounter.exact`). :func:`counter_for` picks one:

* **A local GGUF model** (``local``, ``local:<name>``, ``gguf:/path``): the tokenizer stored in the GGUF file
  itself, read once with ``transformers`` (its GGUF converter; the ``attention`` extra) and cached beside the
  weights as ``<weights file>.tokenizer.json``, which later loads with ``tokenizers`` alone in about 0.3 s. On
  the 199 MetaTool tool schemas and a few multilingual strings its counts equal the llama.cpp server's
  ``/tokenize`` (``tests/model/test_tokenizer.py``). Without ``transformers`` and without the cached file, the
  count falls back to tiktoken and says so (``exact=False``).
* **An OpenAI model**: tiktoken's encoding for it (exact). **Any other model**: tiktoken's cl100k, an estimate
  (``exact=False``): sleuth downloads no tokenizer at run time.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleuth.errors import ConfigError

TOKENIZER_SUFFIX = ".tokenizer.json"


@dataclass(frozen=True)
class TokenCounter:
    """``count(text)`` tokens, as the model named ``model`` splits text; ``how`` names the tokenizer."""

    model: str
    how: str
    exact: bool
    _count: Callable[[str], int]

    def count(self, text: str) -> int:
        return self._count(text) if text else 0

    def describe(self) -> dict[str, Any]:
        return {"model": self.model, "tokenizer": self.how, "exact": self.exact}


def tiktoken_counter(model: str) -> TokenCounter:
    from sleuth.llm import accounting

    enc = accounting.encoding_for(model)
    exact = enc == "o200k_base" or model.lower().startswith(("gpt-", "openai/gpt-"))
    return TokenCounter(model, f"tiktoken {enc}" + ("" if exact else " (an estimate for this model)"), exact,
                        lambda text: accounting.count_tokens(text, model))


def cached_tokenizer_path(weights: Path) -> Path:
    return weights.with_name(weights.name + TOKENIZER_SUFFIX)


def gguf_tokenizer(weights: Path) -> Any:
    """The ``tokenizers.Tokenizer`` stored in the GGUF file ``weights`` (cached as JSON beside it). Raises
    :class:`ConfigError` with the install hint when it is not cached and ``transformers`` is missing."""
    from tokenizers import Tokenizer

    cached = cached_tokenizer_path(weights)
    if cached.is_file():
        try:
            return Tokenizer.from_file(str(cached))
        except Exception:  # a torn or foreign file: convert again
            cached.unlink(missing_ok=True)
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise ConfigError(
            f"reading the tokenizer of {weights.name} needs transformers",
            hint="pip install 'sleuth-search[attention]' (once: the tokenizer is then cached beside the weights)",
        ) from None
    import logging

    from sleuth.fsutil import atomic_write_text

    quiet = logging.getLogger("transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the converter logs every GGUF key it reads
    try:
        tok = AutoTokenizer.from_pretrained(str(weights.parent), gguf_file=weights.name)
    finally:
        quiet.setLevel(level)
    backend = tok.backend_tokenizer
    with contextlib.suppress(OSError):  # weights in a read-only place: convert again next time
        atomic_write_text(cached, json.dumps(json.loads(backend.to_str()), ensure_ascii=False))
    return backend


def gguf_counter(model: str, weights: Path) -> TokenCounter:
    tok = gguf_tokenizer(weights)
    return TokenCounter(model, f"the GGUF file's own tokenizer ({weights.name})", True,
                        lambda text: len(tok.encode(text, add_special_tokens=False).ids))


def is_local_spec(spec: str) -> bool:
    """``local``, ``local:<name>`` or ``gguf:/path``: a model the embedded llama.cpp server runs."""
    return spec == "local" or spec.startswith(("local:", "gguf:"))


def counter_for(model: Any = None) -> TokenCounter:
    """The token counter for ``model``: a model string (``local``, ``gguf:/path``, ``gpt-4o``, ...), a sleuth
    chat model (its ``model`` name), a :class:`TokenCounter` (returned as is) or None (``local``)."""
    if isinstance(model, TokenCounter):
        return model
    name = model if isinstance(model, str) else getattr(model, "model", None) or "local"
    if not isinstance(name, str):
        raise ConfigError(f"no tokenizer for {model!r}", hint="pass a model string such as local or gpt-4o")
    if is_local_spec(name):
        from sleuth.llm.local import resolve_local_model

        path, _ = resolve_local_model(name)
        try:
            return gguf_counter(name, path)
        except Exception:  # transformers missing (ConfigError), or a GGUF it cannot convert: an estimate, said so
            return tiktoken_counter(name)
    return tiktoken_counter(name)
