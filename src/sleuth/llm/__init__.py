"""Model access: one interface (:class:`ChatModel`), a litellm client, an embedded local model, a scripted fake.

Heavy imports (litellm, xllamacpp) happen lazily inside the modules that need them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sleuth.llm.base import ChatModel, ChatResult, Message, TokenLogprob, ToolCall

if TYPE_CHECKING:  # pragma: no cover - the lazy names of __getattr__, for type checkers
    from sleuth.llm.client import LLM as LLM, get_model as get_model
    from sleuth.llm.fake import ScriptedModel as ScriptedModel

__all__ = ["ChatModel", "ChatResult", "Message", "ScriptedModel", "TokenLogprob", "ToolCall", "get_model"]

_LAZY = {"ScriptedModel": "sleuth.llm.fake", "LLM": "sleuth.llm.client", "get_model": "sleuth.llm.client"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
