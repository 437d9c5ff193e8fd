"""A :class:`~sleuth.llm.base.ChatModel` that checks a call's :class:`~sleuth.callcontrol.CallControl` before every
request, so a cancelled run sends nothing more to the model server (used by the MCP ``ask`` tool)."""

from __future__ import annotations

from typing import Any

from sleuth.callcontrol import CallControl
from sleuth.llm.base import ChatModel, ChatResult, Message, T


class ControlledModel:
    """``inner`` behind ``control.check()``; every other attribute (``is_local``, ``close``, ...) is ``inner``'s."""

    def __init__(self, inner: ChatModel, control: CallControl) -> None:
        self.inner = inner
        self.control = control
        self.model = inner.model
        self.supports_logprobs = inner.supports_logprobs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def chat(self, messages: list[Message], **kwargs: Any) -> ChatResult:
        self.control.check()
        return self.inner.chat(messages, **kwargs)

    async def achat(self, messages: list[Message], **kwargs: Any) -> ChatResult:
        self.control.check()
        return await self.inner.achat(messages, **kwargs)

    def structured(self, messages: list[Message], schema: type[T], **kwargs: Any) -> tuple[T, ChatResult]:
        self.control.check()
        return self.inner.structured(messages, schema, **kwargs)

    def count_tokens(self, text: str) -> int:
        return self.inner.count_tokens(text)

