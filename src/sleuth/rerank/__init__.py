"""Rerankers behind one Protocol (:class:`Reranker`: ``run`` -> :class:`RerankResult`, ``rerank`` -> hits):
``listwise`` (RankGPT), ``first`` (FIRST single-token logits), ``icr`` (in-context reranking by attention; needs
``sleuth-search[attention]``).

``get_reranker(name, model=None, **opts)`` builds one. ``listwise`` and ``first`` take a ChatModel (or a model
spec string for :func:`sleuth.llm.get_model`; ``None`` means the default, the embedded local model); ``icr`` runs
its own transformers copy of the local model's weights and ignores ``model``. Build a reranker once and reuse it:
ICR's weights are loaded on first use and kept for the process.
"""

from __future__ import annotations

from typing import Any

from sleuth.errors import ConfigError
from sleuth.rerank.base import Reranker, RerankerBase, RerankResult

__all__ = ["RERANKERS", "RerankResult", "Reranker", "RerankerBase", "get_reranker"]

RERANKERS = {
    "listwise": "sleuth.rerank.listwise:ListwiseReranker",
    "rankgpt": "sleuth.rerank.listwise:ListwiseReranker",
    "first": "sleuth.rerank.first:FirstReranker",
    "icr": "sleuth.rerank.icr:ICRReranker",
}
_NEEDS_CHAT_MODEL = {"listwise", "rankgpt", "first"}


def get_reranker(name: str, model: Any = None, **opts: Any) -> Reranker:
    """A reranker by name. Unknown names raise :class:`~sleuth.errors.ConfigError` (never return None)."""
    import importlib

    key = (name or "").strip().lower()
    if key not in RERANKERS:
        raise ConfigError(f"unknown reranker {name!r}", hint=f"use one of {sorted(set(RERANKERS))}")
    module, _, cls_name = RERANKERS[key].partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    if key in _NEEDS_CHAT_MODEL:
        if model is None or isinstance(model, str):
            from sleuth.llm import get_model

            model = get_model(model or "local")
        return cls(model, **opts)
    return cls(**opts)
