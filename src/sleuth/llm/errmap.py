"""Map litellm/openai/httpx exceptions to sleuth's typed model errors, and say which are transient."""

from __future__ import annotations

import re

from sleuth.errors import (
    ContextOverflowError,
    ModelAuthError,
    ModelConnectionError,
    ModelError,
    ModelNotFoundError,
    ModelProtocolError,
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

_JSON_DETAIL = re.compile("(?:" + "|".join(re.escape(p) for p in _JSON_ERRORS) + r")[^)]*\)")


def server_name(api_base: str | None) -> str:
    """How an error names the server a request went to."""
    return f"the server at {api_base}" if api_base else "the provider's default endpoint"


def protocol_error(model: str, api_base: str | None, what: str) -> ModelProtocolError:
    """A reply that is not an OpenAI-compatible completion: one line, naming the server."""
    return ModelProtocolError(f"{model}: {server_name(api_base)} did not answer with an OpenAI-compatible "
                              f"completion: {' '.join(what.split())[:300]}", api_base=api_base)


def map_error(exc: BaseException, model: str, api_base: str | None = None) -> tuple[ModelError, bool]:
    """Map a litellm/openai/httpx exception to a sleuth error; the bool says whether it is transient.
    ``api_base`` (where the request went) is named by errors that are the server's fault."""
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
        # a 200 whose body is not JSON (an HTML page, a proxy's error page, a truncated body): the server's fault
        found = _JSON_DETAIL.search(msg)
        detail = found.group(0) if found else short
        return protocol_error(model, api_base, f"the body is not valid JSON ({detail})"), False
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
