"""Map litellm/openai/httpx exceptions to sleuth's typed model errors, and say which are transient."""

from __future__ import annotations

from sleuth.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelOutputError,
)

_CONTEXT_PHRASES = (
    "exceed_context_size",
    "exceeds the available context",
    "context length",
    "context_length_exceeded",
    "maximum context",
    "context window",
    "too many tokens",
    "prompt is too long",
)
_JSON_ERRORS = ("Expecting value", "Unterminated string", "Extra data", "Expecting ','", "Invalid control character",
                "Expecting property name")
_NOT_FOUND_PHRASES = ("llm provider not provided", "model_not_found", "does not exist", "unknown model", "not found")



def map_error(exc: BaseException, model: str) -> tuple[ModelError, bool]:
    """Map a litellm/openai/httpx exception to a sleuth error; the bool says whether it is transient."""
    if isinstance(exc, ModelError):
        return exc, isinstance(exc, ModelConnectionError)
    name = type(exc).__name__
    msg = str(exc)
    low = msg.lower()
    short = msg[:400]
    if name == "ContextWindowExceededError" or any(p in low for p in _CONTEXT_PHRASES):
        return ContextOverflowError(f"{model}: the request does not fit the context window: {short}"), False
    if name in ("AuthenticationError", "PermissionDeniedError"):
        return ModelAuthError(f"{model}: the provider refused the credentials: {short}"), False
    if name == "NotFoundError" or (name == "BadRequestError" and any(p in low for p in _NOT_FOUND_PHRASES)):
        return ModelNotFoundError(f"{model}: unknown model or endpoint: {short}"), False
    if name == "JSONDecodeError" or "[200 ok]" in low or any(p in msg for p in _JSON_ERRORS):
        return ModelOutputError(f"{model}: the server returned malformed JSON: {short}",
                                hint="check that api_base points at an OpenAI-compatible server"), False
    if name in (
        "APIConnectionError", "Timeout", "APITimeoutError", "RateLimitError", "ServiceUnavailableError",
        "InternalServerError", "BadGatewayError", "ConnectError", "ReadTimeout", "ConnectionError",
    ):  # fmt: skip
        return ModelConnectionError(f"{model}: {name}: {short}"), True
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and (status == 429 or status >= 500):
        return ModelConnectionError(f"{model}: HTTP {status}: {short}"), True
    if name == "BadRequestError":
        return ModelError(f"{model}: the provider rejected the request: {short}",
                          hint="check the request parameters this provider supports"), False
    return ModelError(f"{model}: {name}: {short}", hint="see the message; retry or use another model"), False
