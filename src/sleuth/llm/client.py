"""The model client: :class:`LLM` (any litellm model, any OpenAI-compatible server, the embedded local model)
and :func:`get_model`.

* Model strings: any litellm string (``openai/gpt-4o-mini``, ``anthropic/...``, ``ollama/...``, ``openai/<name>``
  with ``api_base`` for vLLM/llama.cpp/...); ``local`` (the packaged Qwen2.5-Coder-0.5B on the embedded
  llama.cpp server, started on demand); ``local:<name>`` (another packaged GGUF); ``gguf:/path/file.gguf``.
* Tools: native ``tool_calls`` are used as-is. A backend without them (the embedded server) gets the tools as a
  system instruction and its output constrained by a JSON schema to one ``{"name", "arguments"}`` call, parsed
  (and repaired) into ``ChatResult.tool_calls``.
* Prefill (``supports_prefill``): messages that end with an assistant message are sent as they are; the embedded
  llama.cpp server continues that message (``prefill_assistant``, its default). For another server, pass
  ``prefill=True`` when it does the same (llama.cpp does; vLLM with ``extra_params={"continue_final_message":
  True, "add_generation_prompt": False}``). ``context_tokens``: the model's window, when known.
* Retries with exponential backoff on transient errors only (connection, timeout, 429, 5xx); a crashed local
  server is restarted once per call, and the call's trace gets a ``note`` event (``local_server``) saying so.
  The local server's token (from its owner-only state file) is sent as the API key. A concurrency limit
  (semaphore) per client. Opt-in on-disk response cache keyed by the full request. Typed errors
  (``sleuth.errors``) mapped from litellm's exceptions; a reply that is not an OpenAI-compatible completion is a
  :class:`~sleuth.errors.ModelProtocolError` naming the server, never a model mistake.

litellm is imported on first use (it costs ~5 s), never at ``import sleuth``.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sleuth.config import model_settings, sleuth_home
from sleuth.errors import ModelAuthError, ModelConnectionError, ModelError, ModelNotFoundError, ModelOutputError
from sleuth.llm import accounting, events
from sleuth.llm.base import ChatModel, ChatResult, Message, T
from sleuth.llm.cache import ResponseCache
from sleuth.llm.errmap import map_error
from sleuth.llm.response import chat_result, fallback_messages, response_format_dict
from sleuth.llm.tokenizer import is_local_spec
from sleuth.llm.toolcalls import (
    loads_lenient,
    tool_call_schema,
    tool_prompt,
)
from sleuth.records import TraceEvent

__all__ = ["LLM", "ResponseCache", "get_model", "is_local_spec", "map_error", "response_format_dict"]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

def _litellm() -> Any:
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class LLM:
    """A :class:`~sleuth.llm.base.ChatModel` over litellm. See the module docstring."""

    def __init__(
        self,
        model: str = "local",
        *,
        api_base: str | None = None,
        api_key: str | None = None,
        max_concurrency: int = 4,
        max_retries: int = 3,
        timeout_s: float = 600.0,
        cache: bool | str | Path = False,
        native_tools: bool | None = None,
        backoff_s: float = 0.5,
        local_server: Any = None,
        extra_params: dict[str, Any] | None = None,
        prefill: bool | None = None,
        context_tokens: int | None = None,
    ) -> None:
        self.model = model
        self.api_base = api_base
        self.api_key = api_key
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.extra_params = dict(extra_params or {})
        self.is_local = is_local_spec(model)
        self.server = local_server
        self._counter: Any = None  # the local model's TokenCounter, loaded at the first count_tokens
        if self.is_local and self.server is None:
            from sleuth.llm.local import LocalServer

            self.server = LocalServer.for_spec(model)
        # the embedded server writes tool calls as text: constrain instead; others use native tool calls
        self.native_tools = (not self.is_local) if native_tools is None else native_tools
        self.supports_logprobs = self.is_local or model.startswith(("openai/", "gpt-")) or api_base is not None
        # a trailing assistant message is continued (llama.cpp's server does it by default; vLLM needs
        # extra_params={"continue_final_message": True, "add_generation_prompt": False}): say so with prefill=True
        self.supports_prefill = self.is_local if prefill is None else prefill
        self._context_tokens = context_tokens
        self._endpoint: tuple[str, str | None] | None = None  # the local server's (api_base, token)
        self._sem = threading.Semaphore(max_concurrency)
        self._max_concurrency = max_concurrency
        self._asems: dict[int, asyncio.Semaphore] = {}
        if cache:
            root = Path(cache) if isinstance(cache, str | Path) else sleuth_home() / "llm-cache"
            self.cache: ResponseCache | None = ResponseCache(root)
        else:
            self.cache = None

    def __repr__(self) -> str:
        return f"LLM(model={self.model!r}, api_base={self.api_base!r})"

    @property
    def context_tokens(self) -> int | None:
        """The model's window in tokens when known: the constructor's ``context_tokens``, else the embedded
        server's ``n_ctx`` (of the running server, else the one it would start with); ``None`` for remote models."""
        if self._context_tokens is not None:
            return self._context_tokens
        if self.server is None:
            return None
        state = self.server.read_state() or {}
        n_ctx = state.get("n_ctx") or getattr(self.server, "n_ctx", None)
        return int(n_ctx) if n_ctx else None

    # -- setup ----------------------------------------------------------------------------------------------
    def start(self) -> str:
        """Start (or attach to) the local server; returns its api_base. No-op for remote models."""
        if self.server is None:
            return self.api_base or ""
        return self._local_endpoint()[0]

    def _local_endpoint(self, tracer: Any = None) -> tuple[str, str | None]:
        """The local server's (api_base, token), starting the server if needed (one tuple: threads share it)."""
        endpoint = self._endpoint
        if endpoint is None:
            endpoint = self._endpoint = self.server.connect(note=self._note(tracer))
        return endpoint

    def _note(self, tracer: Any) -> Any:
        """A callback that records what the local server handle did (a restart) as a ``note`` trace event."""
        if tracer is None:
            return None

        def note(message: str, data: dict[str, Any]) -> None:
            tracer.emit(TraceEvent(kind="note", name="local_server", preview=message[:200],
                                   args={"model": self.model}, data=data))

        return note

    def _where(self, endpoint: tuple[str, str | None] | None) -> str | None:
        """The api_base a request went to (named by errors that are the server's fault)."""
        return endpoint[0] if endpoint else self.api_base

    def _recover_local(
        self, err: ModelError, transient: bool, tried: set[str], tracer: Any, used: tuple[str, str | None] | None
    ) -> bool:
        """After a failed call to the embedded server: forget the endpoint; retry once on a server another process
        replaced (a 401: new token; or a new address); restart a dead or hung server once. True: retry at once."""
        if self.server is None:
            return False
        if isinstance(err, ModelAuthError) and "reauth" not in tried:
            tried.add("reauth")
            self._endpoint = None
            return True
        if not transient:
            return False
        self._endpoint = None  # re-resolve: the server may have moved or died
        st = self.server.status()
        if st.healthy and used is not None and st.api_base != used[0] and "moved" not in tried:
            tried.add("moved")
            return True
        if "restart" not in tried and not st.healthy:
            tried.add("restart")
            self.server.restart(note=self._note(tracer), reason=f"{type(err).__name__}: {err.message}"[:200])
            return True
        return False

    def close(self) -> None:
        """Drop this process's lease on the local server (it exits shortly after its last client)."""
        if self.server is not None:
            self.server.release()

    @property
    def litellm_model(self) -> str:
        return "openai/local" if self.is_local else self.model

    def _cache_identity(self) -> dict[str, Any]:
        if self.is_local:
            return {"model": self.model, "weights": str(self.server.model_path) if self.server else ""}
        return {"model": self.model, "api_base": self.api_base}

    # -- request building -----------------------------------------------------------------------------------
    def _request(
        self,
        messages: list[Message],
        tools: list[dict[str, Any]] | None,
        response_format: dict[str, Any] | type[BaseModel] | None,
        temperature: float,
        max_tokens: int | None,
        logprobs: bool,
        top_logprobs: int | None,
        stop: list[str] | None,
    ) -> tuple[dict[str, Any], bool]:
        """The litellm kwargs (without connection details) and whether the tool fallback is on."""
        fallback = bool(tools) and not self.native_tools
        req: dict[str, Any] = {"messages": messages, "temperature": temperature}
        if fallback:
            assert tools is not None
            req["messages"] = fallback_messages(messages, tool_prompt(tools))
            req["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "tool_call", "schema": tool_call_schema(tools)},
            }
        else:
            if tools:
                req["tools"] = tools
            rf = response_format_dict(response_format)
            if rf is not None:
                req["response_format"] = rf
        if max_tokens is not None:
            req["max_tokens"] = max_tokens
        if logprobs:
            req["logprobs"] = True
            if top_logprobs:
                req["top_logprobs"] = top_logprobs
        if stop:
            req["stop"] = stop
        req.update(self.extra_params)
        return req, fallback

    def _connection(self, endpoint: tuple[str, str | None] | None) -> dict[str, Any]:
        conn: dict[str, Any] = {"timeout": self.timeout_s, "num_retries": 0, "max_retries": 0}
        if self.is_local:
            assert endpoint is not None
            conn["api_base"] = endpoint[0]
            conn["api_key"] = endpoint[1] or "sk-local"  # a server started by an older sleuth has no token
            conn["extra_body"] = {"cache_prompt": True}
        else:
            if self.api_base:
                conn["api_base"] = self.api_base
            if self.api_key:
                conn["api_key"] = self.api_key
        return conn

    def _map_error(self, exc: BaseException, where: str | None) -> tuple[ModelError, bool]:
        """:func:`map_error` (naming the server ``where``), with hints at the CLI flags for a remote ``api_base``."""
        if self.is_local or not where:
            return map_error(exc, self.model, where)
        err, transient = map_error(exc, f"{self.model} at {where}", where)
        if isinstance(err, ModelConnectionError):
            err.hint = f"check that the server at {where} is running and reachable (--api-base)"
        elif isinstance(err, ModelAuthError):
            err.hint = (f"{where} refused the key: pass --api-key-env VAR naming the environment variable "
                        "that holds its key (or set api_key_env in config.toml)")
        return err, transient

    # -- response handling ----------------------------------------------------------------------------------
    def _result(
        self,
        resp: Any,
        req: dict[str, Any],
        fallback: bool,
        t0: float,
        tools: list[dict[str, Any]] | None,
        where: str | None = None,
    ) -> ChatResult:
        return chat_result(resp, req, model=self.model, litellm_model=self.litellm_model,
                           priced_model=None if self.is_local else self.model, fallback=fallback, t0=t0,
                           tools=tools, where=where)

    def _trace(self, tracer: Any, name: str, result: ChatResult, req: dict[str, Any], n_tools: int) -> None:
        """``n_tools``: the tools offered to the model (natively or, in the fallback, through the prompt)."""
        if tracer is None:
            return
        tracer.emit(events.call_event(
            name, model=self.model, provider=self.provider, server=self._server_url(), req=req, result=result,
            n_tools=n_tools, tracer=tracer,
        ))

    @property
    def provider(self) -> str:
        """``gen_ai.provider.name`` of this client's model (OpenTelemetry GenAI semantic conventions)."""
        return events.provider_name(self.model, local=self.is_local)

    def _server_url(self) -> str | None:
        """The server the calls go to (the local server's api_base once started), for the trace."""
        return self._endpoint[0] if self.is_local and self._endpoint else self.api_base

    def _cached(
        self, req: dict[str, Any], tracer: Any, name: str, n_tools: int
    ) -> tuple[str | None, ChatResult | None]:
        """The request's cache key (None when caching is off or the call is not cacheable) and a traced hit."""
        key = self._cache_key(req)
        if key and (hit := self.cache.get(key)) is not None:  # type: ignore[union-attr]
            hit = hit.model_copy(update={"cached": True, "latency_s": 0.0})
            self._trace(tracer, name, hit, req, n_tools)
            return key, hit
        return key, None

    def _backoff(self, attempt: int) -> float:
        return self.backoff_s * (2**attempt) * (0.75 + 0.5 * random.random())

    def _retry_delay(
        self, exc: BaseException, err: ModelError, transient: bool, attempt: int, tracer: Any, name: str,
        req: dict[str, Any], t0: float, n_tools: int,
    ) -> float:
        """The seconds to wait before retrying a failed call (chat and achat), or trace ``err`` and raise it
        (``from exc``) when it is not transient or the retries are spent."""
        if not transient or attempt >= self.max_retries:
            self._trace_error(tracer, name, req, err, t0, n_tools)
            raise err from exc
        return self._backoff(attempt)

    def _done(
        self, key: str | None, result: ChatResult, tracer: Any, name: str, req: dict[str, Any], n_tools: int
    ) -> ChatResult:
        """Cache (when caching) and trace a successful call's result (chat and achat)."""
        if key:
            self.cache.put(key, result)  # type: ignore[union-attr]
        self._trace(tracer, name, result, req, n_tools)
        return result

    # -- ChatModel ------------------------------------------------------------------------------------------
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
        req, fallback = self._request(
            messages, tools, response_format, temperature, max_tokens, logprobs, top_logprobs, stop
        )
        key, hit = self._cached(req, tracer, name, len(tools or []))
        if hit is not None:
            return hit
        litellm = _litellm()
        tried: set[str] = set()
        attempt = 0
        t0 = time.perf_counter()
        while True:
            endpoint = None
            try:
                endpoint = self._local_endpoint(tracer) if self.server is not None else None
                with self._sem:
                    resp = litellm.completion(model=self.litellm_model, **req, **self._connection(endpoint))
                result = self._result(resp, req, fallback, t0, tools, self._where(endpoint))
                break
            except Exception as e:
                err, transient = self._map_error(e, self._where(endpoint))
                if self._recover_local(err, transient, tried, tracer, endpoint):
                    continue
                time.sleep(self._retry_delay(e, err, transient, attempt, tracer, name, req, t0, len(tools or [])))
                attempt += 1
        return self._done(key, result, tracer, name, req, len(tools or []))

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
    ) -> ChatResult:
        req, fallback = self._request(
            messages, tools, response_format, temperature, max_tokens, logprobs, top_logprobs, stop
        )
        key, hit = self._cached(req, tracer, name, len(tools or []))
        if hit is not None:
            return hit
        litellm = _litellm()
        sem = self._async_sem()
        tried: set[str] = set()
        attempt = 0
        t0 = time.perf_counter()
        while True:
            endpoint = None
            try:
                endpoint = await asyncio.to_thread(self._local_endpoint, tracer) if self.server is not None else None
                async with sem:
                    resp = await litellm.acompletion(model=self.litellm_model, **req, **self._connection(endpoint))
                result = self._result(resp, req, fallback, t0, tools, self._where(endpoint))
                break
            except Exception as e:
                err, transient = self._map_error(e, self._where(endpoint))
                if self.server is not None and await asyncio.to_thread(
                    self._recover_local, err, transient, tried, tracer, endpoint
                ):
                    continue
                delay = self._retry_delay(e, err, transient, attempt, tracer, name, req, t0, len(tools or []))
                await asyncio.sleep(delay)
                attempt += 1
        return self._done(key, result, tracer, name, req, len(tools or []))

    def _async_sem(self) -> asyncio.Semaphore:
        loop_id = id(asyncio.get_running_loop())
        if loop_id not in self._asems:
            self._asems[loop_id] = asyncio.Semaphore(self._max_concurrency)
        return self._asems[loop_id]

    def _cache_key(self, req: dict[str, Any]) -> str | None:
        if self.cache is None or req.get("temperature", 0) > 0:
            return None  # sampling is not reproducible: only greedy calls are cached
        return ResponseCache.key({**self._cache_identity(), "native_tools": self.native_tools, **req})

    def _trace_error(
        self, tracer: Any, name: str, req: dict[str, Any], err: ModelError, t0: float, n_tools: int = 0
    ) -> None:
        if tracer is not None:
            tracer.emit(events.failed_call_event(
                name, model=self.model, provider=self.provider, server=self._server_url(), req=req,
                error=f"{type(err).__name__}: {err.message}", latency_s=time.perf_counter() - t0,
                usage=err.context.get("usage"),  # a rejected reply's tokens still count
                n_tools=n_tools, tracer=tracer,
            ))

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
        convo = list(messages)
        total = None
        last_error = ""
        for _ in range(retries + 1):
            result = self.chat(convo, response_format=schema, max_tokens=max_tokens, tracer=tracer, name=name)
            total = result.usage if total is None else total + result.usage
            try:
                value = schema.model_validate(loads_lenient(result.content))
                return value, result.model_copy(update={"usage": total})
            except (ValidationError, ValueError) as e:
                last_error = str(e)[:500]
                convo = [
                    *messages,
                    {"role": "assistant", "content": result.content},
                    {"role": "user", "content": f"That reply was not valid: {last_error}\n"
                     f"Reply again with only a JSON object that matches the {schema.__name__} schema."},
                ]
        raise ModelOutputError(
            f"{self.model}: output did not validate as {schema.__name__} after {retries + 1} attempts: {last_error}"
        )

    def count_tokens(self, text: str) -> int:
        """A local model: exact, with the GGUF file's own tokenizer (:mod:`sleuth.llm.tokenizer`; no server
        needed), else the running server's ``/tokenize``; else (and for API models) a tiktoken count."""
        if self.is_local:
            if self._counter is None:
                from sleuth.llm.tokenizer import counter_for

                self._counter = counter_for(self.model)
            if self._counter.exact:
                return self._counter.count(text)
        if self.server is not None:
            st = self.server.read_state()
            if st:
                try:
                    import urllib.request

                    body = json.dumps({"content": text}).encode()
                    headers = {"Content-Type": "application/json"}
                    if st.get("token"):
                        headers["Authorization"] = f"Bearer {st['token']}"
                    rq = urllib.request.Request(st["url"] + "/tokenize", data=body, headers=headers)
                    with urllib.request.urlopen(rq, timeout=10) as r:
                        return len(json.loads(r.read())["tokens"])
                except (OSError, ValueError, KeyError):
                    pass
        return accounting.count_tokens(text, self.model)


def get_model(
    spec: str | None = None, *, api_base: str | None = None, api_key_env: str | None = None, **kwargs: Any
) -> ChatModel:
    """The model for ``spec`` (``--model``), else ``SLEUTH_MODEL``, else the config file, else ``local``.

    ``api_base``/``api_key_env`` are the ``--api-base``/``--api-key-env`` flags; the order with the environment
    and the config file is in :mod:`sleuth.config`.

    ``fake`` returns a :class:`~sleuth.llm.fake.ScriptedModel` with an empty script (pass ``script=[...]``).
    """
    settings = model_settings(spec, api_base, api_key_env)
    if settings.name == "fake":
        from sleuth.llm.fake import ScriptedModel

        return ScriptedModel(kwargs.pop("script", ()), **kwargs)
    if not settings.name.strip():
        raise ModelNotFoundError("empty model string")
    params: dict[str, Any] = {
        "api_base": settings.api_base,
        "api_key": settings.api_key,
        "max_concurrency": settings.max_concurrency,
        "max_retries": settings.max_retries,
        "timeout_s": settings.timeout_s,
        "cache": settings.cache,
        "prefill": settings.prefill,
    }
    params.update(kwargs)
    return LLM(settings.name, **params)
