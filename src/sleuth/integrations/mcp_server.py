"""An MCP server that exposes a sleuth :class:`~sleuth.tools.base.Toolkit` to chat assistants.

The server is built generically from sleuth ``Tool`` objects (name, description, ``parameters_schema()``,
``output_schema()``, ``invoke()``), so a tool added to the toolkit appears in ``tools/list`` without any change here.

* Every tool is read-only and confined to the corpus: the tools themselves refuse paths outside the root
  (:class:`~sleuth.errors.PathOutsideCorpusError`), and the server adds no tool that writes.
* Every tool with an ``output_type`` lists an ``outputSchema``, and its results' structured content validates
  against it (data that is not an object is wrapped as ``{"result": ...}``).
* Faults the caller made (unknown tool, bad arguments, a doc id outside the corpus, a bad regex) come back as a
  tool result with ``isError: true`` carrying sleuth's error text and hint, so the assistant can correct itself.
  Real faults inside a tool (a missing index, a dead model server) come back the same way, with their hint; an
  unexpected exception is logged to stderr and returned as an error result. The server keeps serving.
* Calls run in worker threads with progress notifications, cancellation, a deadline (:data:`DEFAULT_CALL_TIMEOUT`;
  :data:`LONG_CALL_TIMEOUT` for the model-bound tools ``ask`` and ``rerank``) and a bounded result
  (:mod:`sleuth.integrations.mcp_calls`), so one slow call does not block other requests or other clients.
* The corpus's documents are resources (``sleuth://doc/{id}``), and sleuth's search strategies are prompts
  (:mod:`sleuth.integrations.mcp_content`).
* Error texts never carry absolute paths (the venv, the home folder, where a symlink points) nor a huge argument:
  an unexpected exception is logged to stderr and the caller only learns its type.

Transports: stdio (what desktop chat assistants launch) and streamable HTTP. HTTP binds ``127.0.0.1`` by default,
where ``Host`` and ``Origin`` must be loopback names (DNS-rebinding protection). Any other address is refused
unless the hosts clients may name are listed (``allow_hosts``: they replace the loopback check, they do not switch
it off) and a token is set; with a token every request must carry ``Authorization: Bearer <token>``
(:func:`check_http_exposure`, :class:`BearerTokenMiddleware`; docs/SECURITY.md).

``mcp`` is an optional dependency (``pip install 'sleuth-search[mcp]'``); it is imported inside the functions.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import sys
from typing import TYPE_CHECKING, Any

from sleuth.errors import ConfigError, MissingExtraError
from sleuth.integrations.mcp_calls import (
    DEFAULT_CALL_TIMEOUT,
    DEFAULT_CANCEL_GRACE,
    DEFAULT_MAX_RESULT_CHARS,
    DEFAULT_PROGRESS_INTERVAL,
    LONG_CALL_TIMEOUT,
    MIN_RESULT_CHARS,
    call_timeout_for,
    output_schema,
    run_call,
    run_tool,
    scrub_paths,
)
from sleuth.tools.base import Toolkit

if TYPE_CHECKING:  # pragma: no cover
    from mcp.server.lowlevel import Server

logger = logging.getLogger(__name__)

SERVER_NAME = "sleuth"
DEFAULT_MAX_CONCURRENT_CALLS = 4

__all__ = [
    "DEFAULT_CALL_TIMEOUT", "LONG_CALL_TIMEOUT", "build_server", "call_timeout_for", "check_http_exposure",
    "default_instructions", "http_app", "run", "run_tool", "scrub_paths", "serve_http", "serve_stdio",
]


def _require_mcp() -> None:
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("mcp", "mcp", "the MCP server (`sleuth mcp`)") from e


def build_server(
    toolkit: Toolkit,
    *,
    name: str = SERVER_NAME,
    instructions: str | None = None,
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    corpus: Any = None,
    progress_interval: float = DEFAULT_PROGRESS_INTERVAL,
    cancel_grace: float = DEFAULT_CANCEL_GRACE,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> Server[Any]:
    """A low-level MCP ``Server`` listing and calling every tool of ``toolkit``; with ``corpus`` (a
    :class:`~sleuth.corpus.Corpus`), also its documents as resources and the search-strategy prompts.

    ``call_timeout``: seconds a call may take (model-bound tools get at least :data:`LONG_CALL_TIMEOUT`); past it
    the call is stopped and answered with a ``ToolTimeoutError`` result. ``progress_interval``: seconds between
    heartbeat progress notifications while a tool reports nothing. ``cancel_grace``: seconds a cancelled call's
    worker keeps its slot while it stops. ``max_result_chars``: the most characters one result (text plus
    structured copy) or one resource read carries; longer ones are cut, saying so."""
    _require_mcp()
    if max_result_chars < MIN_RESULT_CHARS:
        raise ConfigError(f"max_result_chars={max_result_chars} leaves no room for a result",
                          hint=f"use {MIN_RESULT_CHARS} or more")
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from sleuth import __version__

    limiter = anyio.CapacityLimiter(max_concurrent_calls)
    read_only = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)
    listing = [
        types.Tool(
            name=tool.name,
            description=tool.description,
            input_schema=tool.parameters_schema(),
            output_schema=output_schema(tool),
            annotations=read_only,
        )
        for tool in toolkit
    ]

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=listing)

    async def call_tool(ctx: Any, params: Any) -> Any:
        return await run_call(
            ctx.session.report_progress, toolkit, params.name, params.arguments, limiter=limiter,
            timeout=call_timeout_for(toolkit, params.name, call_timeout), cancel_grace=cancel_grace,
            progress_interval=progress_interval, max_result_chars=max_result_chars,
        )

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        return toolkit[tool_name].parameters_schema() if tool_name in toolkit else None

    handlers: dict[str, Any] = {}
    if corpus is not None:
        from sleuth.integrations import mcp_content

        async def list_resources(ctx: Any, params: Any) -> Any:
            cursor = getattr(params, "cursor", None)
            return await anyio.to_thread.run_sync(mcp_content.list_resources, corpus, cursor)

        async def list_templates(ctx: Any, params: Any) -> Any:
            return mcp_content.list_templates()

        async def read_resource(ctx: Any, params: Any) -> Any:
            return await anyio.to_thread.run_sync(mcp_content.read_resource, corpus, params.uri, max_result_chars)

        async def list_prompts(ctx: Any, params: Any) -> Any:
            return mcp_content.list_prompts()

        async def get_prompt(ctx: Any, params: Any) -> Any:
            return mcp_content.get_prompt(params.name, params.arguments, toolkit.names())

        handlers = {"on_list_resources": list_resources, "on_list_resource_templates": list_templates,
                    "on_read_resource": read_resource, "on_list_prompts": list_prompts, "on_get_prompt": get_prompt}

    return Server(
        name,
        version=__version__,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=input_schema,
        **handlers,
    )


def default_instructions(toolkit: Toolkit, corpus_root: Any = None, omitted: dict[str, str] | None = None) -> str:
    lines = ["sleuth searches a folder of text documents (read-only)."]
    if corpus_root is not None:
        lines.append(f"Corpus: {corpus_root}. Doc ids are paths relative to it.")
    lines.append(f"Tools: {', '.join(toolkit.names())}.")
    lines.append("Start with ls or a search, then read the documents you need; cite doc ids.")
    if "search" in toolkit.names():
        lines.append("search's `where` filters on document metadata (e.g. [\"year>=2020\", \"path=notes/*.md\"]; "
                     "a field no document has is an error listing the fields that exist).")
    if corpus_root is not None:
        lines.append("Documents are also resources (sleuth://doc/{id}); prompts: answer, find-documents.")
    if omitted:
        lines.append("Not available here: " + "; ".join(f"{k} ({v})" for k, v in omitted.items()) + ".")
    return " ".join(lines)


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client over this process's stdin/stdout until it disconnects."""
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
MIN_TOKEN_CHARS = 16
_TOKEN_HINT = 'make one with: python -c "import secrets; print(secrets.token_urlsafe(32))"'


def is_loopback(host: str) -> bool:
    """Is ``host`` (a bind address or a name) this machine only? ``0.0.0.0`` and ``::`` are not."""
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_http_exposure(host: str, allow_hosts: list[str] | None = None, token: str | None = None) -> None:
    """Refuse an HTTP setup that anyone but this machine's user could drive: a non-loopback ``host`` needs an
    explicit ``allow_hosts`` list (the names clients use in ``Host``) and a token; a token must be long enough."""
    if token is not None and len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"the MCP token is too short ({len(token)} characters, at least {MIN_TOKEN_CHARS})",
                          hint=_TOKEN_HINT)
    if is_loopback(host):
        return
    missing = [what for what, given in (("--allow-host", allow_hosts), ("a token", token)) if not given]
    if missing:
        raise ConfigError(
            f"refusing to serve MCP on {host}, reachable from other machines, without {' and '.join(missing)}",
            hint="list the host names clients will use (--allow-host NAME, repeatable) and set a token "
            f"(SLEUTH_MCP_TOKEN, or --token); clients send `Authorization: Bearer <token>`. {_TOKEN_HINT}",
        )


def transport_security(host: str, port: int, allow_hosts: list[str] | None = None) -> Any:
    """The SDK's Host/Origin checks: loopback names always, plus each allowed host (``name`` or ``name:port``)."""
    from mcp.server.transport_security import TransportSecuritySettings

    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for entry in allow_hosts or []:
        name = entry.strip().lower()
        if not name:
            continue
        if name.rsplit(":", 1)[-1].isdigit() and not name.endswith("]"):
            hosts.append(name)
            origins += [f"http://{name}", f"https://{name}"]
        else:
            hosts += [name, f"{name}:{port}"]
            origins += [f"http://{name}", f"https://{name}", f"http://{name}:{port}", f"https://{name}:{port}"]
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


class BearerTokenMiddleware:
    """ASGI: every HTTP request must carry ``Authorization: Bearer <token>`` (compared in constant time), else
    401 before the MCP app sees it."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            got = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
            if not hmac.compare_digest(got, self._expected):
                body = b'{"error": "unauthorized: send Authorization: Bearer <token>"}'
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b"Bearer")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def http_app(
    server: Server[Any],
    *,
    host: str = "127.0.0.1",
    path: str = "/mcp",
    port: int = 8765,
    allow_hosts: list[str] | None = None,
    token: str | None = None,
) -> Any:
    """The ASGI app serving ``server`` over streamable HTTP at ``path``, with the Host/Origin checks and, when
    ``token`` is set, the bearer-token check. Refuses a setup :func:`check_http_exposure` rejects."""
    check_http_exposure(host, allow_hosts, token)
    app = server.streamable_http_app(
        streamable_http_path=path, host=host, transport_security=transport_security(host, port, allow_hosts)
    )
    return BearerTokenMiddleware(app, token) if token else app


async def serve_http(
    server: Server[Any],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    path: str = "/mcp",
    log_level: str = "warning",
    allow_hosts: list[str] | None = None,
    token: str | None = None,
) -> None:
    """Serve any number of clients over streamable HTTP until cancelled."""
    import uvicorn

    app = http_app(server, host=host, path=path, port=port, allow_hosts=allow_hosts, token=token)
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)
    await uvicorn.Server(config).serve()


def run(
    toolkit: Toolkit,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8765,
    instructions: str | None = None,
    allow_hosts: list[str] | None = None,
    token: str | None = None,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    corpus: Any = None,
    max_result_chars: int = DEFAULT_MAX_RESULT_CHARS,
) -> None:
    """Blocking entry point used by ``sleuth mcp``."""
    import anyio

    if transport == "http":
        check_http_exposure(host, allow_hosts, token)  # before anything is built or bound
    server = build_server(toolkit, instructions=instructions, call_timeout=call_timeout, corpus=corpus,
                          max_result_chars=max_result_chars)
    if transport == "stdio":
        anyio.run(serve_stdio, server)
    elif transport == "http":
        anyio.run(lambda: serve_http(server, host=host, port=port, allow_hosts=allow_hosts, token=token))
    else:
        raise ValueError(f"unknown transport {transport!r}; use stdio or http")


def _stderr_logging(level: int = logging.WARNING) -> None:
    """For the CLI only: route sleuth's and the SDK's logs to stderr (stdout carries the stdio protocol)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for name in ("sleuth", "mcp"):
        log = logging.getLogger(name)
        if not log.handlers:
            log.addHandler(handler)
            log.setLevel(level)
