"""The model interface every sleuth component talks to.

A :class:`ChatModel` is passed in (never built inside a node or read from a global). Implementations:
``sleuth.llm.client.LLM`` (litellm: any provider, any OpenAI-compatible server, the embedded local model) and
``sleuth.llm.fake.ScriptedModel`` (a scripted fake for control-flow tests).

Messages are OpenAI-style dicts (``{"role": ..., "content": ...}``). Tools are OpenAI function-calling specs.

A conversation that ends with an assistant message is a **prefill** on a backend whose ``supports_prefill`` is
true: the reply continues that message (its first generated token follows the prefilled text), as llama.cpp's
server does by default. Elsewhere the trailing assistant message is only history. ``supports_logprobs`` says that
``logprobs=True`` returns the generated tokens' log-probabilities (``ChatResult.logprobs``).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel, Field

from sleuth.records import Usage

T = TypeVar("T", bound=BaseModel)
Message = dict[str, Any]


class ToolCall(BaseModel):
    """A tool call the model asked for. ``arguments`` is parsed JSON; ``raw_arguments`` is what the model wrote."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)
    raw_arguments: str = ""
    parse_error: str | None = None  # set when the arguments were not valid JSON even after repair


class TokenLogprob(BaseModel):
    token: str
    logprob: float
    top: dict[str, float] = Field(default_factory=dict)  # alternative token -> logprob


class ChatResult(BaseModel):
    content: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    latency_s: float = 0.0
    model: str = ""
    finish_reason: str | None = None
    logprobs: list[TokenLogprob] | None = None
    cached: bool = False
    response_model: str | None = None  # the model name the server reported (may differ from the one asked for)
    response_id: str | None = None  # the server's id of this completion

    def assistant_message(self) -> Message:
        """The OpenAI-style assistant message to append to a conversation."""
        msg: Message = {"role": "assistant", "content": self.content or ""}
        if self.tool_calls:
            import json

            msg["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.arguments)},
                }
                for c in self.tool_calls
            ]
        return msg


@runtime_checkable
class ChatModel(Protocol):
    """What sleuth needs from a language model."""

    model: str
    supports_logprobs: bool
    supports_prefill: bool

    def chat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stop: list[str] | None = None,
        tracer: Any = None,
        name: str = "chat",
    ) -> ChatResult:
        """One completion. With ``tools``, tool calls come back in ``ChatResult.tool_calls`` whether the backend
        has native tool calling or not (the client falls back to schema-constrained JSON)."""
        ...

    async def achat(
        self,
        messages: list[Message],
        *,
        tools: list[dict[str, Any]] | None = None,
        response_format: dict[str, Any] | type[BaseModel] | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        logprobs: bool = False,
        top_logprobs: int | None = None,
        stop: list[str] | None = None,
        tracer: Any = None,
        name: str = "chat",
    ) -> ChatResult: ...

    def structured(
        self,
        messages: list[Message],
        schema: type[T],
        *,
        retries: int = 2,
        max_tokens: int | None = None,
        tracer: Any = None,
        name: str = "structured",
    ) -> tuple[T, ChatResult]:
        """Output validated into ``schema`` (schema-constrained where the backend allows it), repaired, and
        retried at most ``retries`` times; raises :class:`sleuth.errors.ModelOutputError` after that.
        The returned ChatResult's usage covers all attempts."""
        ...

    def count_tokens(self, text: str) -> int: ...
