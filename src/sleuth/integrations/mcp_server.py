"""An MCP server that exposes a sleuth :class:`~sleuth.tools.base.Toolkit` to chat assistants.

The server is built generically from sleuth ``Tool`` objects (name, description, ``parameters_schema()``,
``invoke()``), so a tool added to the toolkit appears in ``tools/list`` without any change here.

* Every tool is read-only and confined to the corpus: the tools themselves refuse paths outside the root
  (:class:`~sleuth.errors.PathOutsideCorpusError`), and the server adds no tool that writes.
* Faults the caller made (unknown tool, bad arguments, a doc id outside the corpus, a bad regex) come back as a
  tool result with ``isError: true`` carrying sleuth's error text and hint, so the assistant can correct itself.
  Real faults inside a tool (a missing index, a dead model server) come back the same way, with their hint; an
  unexpected exception is logged to stderr and returned as an error result. The server keeps serving.
* Tools run in worker threads (sleuth tools are synchronous: ripgrep subprocesses, BM25 scoring), so one slow
  call does not block other requests or other clients on the HTTP transport. A call whose client went away is
  abandoned: its thread finishes on its own and the result is dropped.
* Every call has a deadline (:data:`DEFAULT_CALL_TIMEOUT`; :data:`LONG_CALL_TIMEOUT` for the model-bound tools
  ``ask`` and ``rerank``): past it the caller gets a ``ToolTimeoutError`` result and its worker slot is freed for
  other calls, whatever the tool is doing (the tools bound themselves too: grep kills ripgrep at its own limit).
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
import os
import re
import sys
import tempfile
from typing import TYPE_CHECKING, Any

from sleuth.errors import ConfigError, MissingExtraError
from sleuth.integrations.toolset import safe_invoke
from sleuth.tools.base import Toolkit, ToolResult

if TYPE_CHECKING:  # pragma: no cover
    from mcp.server.lowlevel import Server

logger = logging.getLogger(__name__)

SERVER_NAME = "sleuth"
DEFAULT_MAX_CONCURRENT_CALLS = 4
DEFAULT_CALL_TIMEOUT = 120.0
LONG_CALL_TIMEOUT = 1800.0  # tools that run a language model (ask, rerank)
LONG_TOOL_TAGS = frozenset({"agent", "rerank"})
MAX_ERROR_CHARS = 2000
INTERNAL_ERROR_TEMPLATE = (
    "Error ({kind}): the sleuth server hit an internal fault in {tool}; the details are in the server's log. "
    "It keeps serving."
)
TIMEOUT_TEMPLATE = (
    "Error (ToolTimeoutError): {tool} did not finish within {seconds:g}s and was abandoned "
    "(hint: narrow the call: a more specific pattern, a glob or path, a smaller k)"
)
_ABS_PATH = re.compile(r"(?<![\w.~])(?:/[\w.@+%-]+){2,}/?")


def _private_roots() -> list[str]:
    """Folders whose names say something about the host: the venv, the interpreter, the home and temp folders."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.expanduser("~"), tempfile.gettempdir()}
    return sorted((r for r in roots if r and r != "/"), key=len, reverse=True)


def scrub_paths(text: str) -> str:
    """``text`` with absolute paths replaced by ``<path>`` and cut to :data:`MAX_ERROR_CHARS` (for error results)."""
    for root in _private_roots():
        text = text.replace(root, "<path>")
    text = _ABS_PATH.sub("<path>", text)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 40] + f" …[{len(text)} chars, cut]"
    return text


def _require_mcp() -> None:
    try:
        import mcp.server.lowlevel  # noqa: F401
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise MissingExtraError("mcp", "mcp", "the MCP server (`sleuth mcp`)") from e


def run_tool(toolkit: Toolkit, name: str, arguments: dict[str, Any] | None) -> ToolResult:
    """Run one tool for a remote caller: never raises.

    Input faults are already error results (``Toolkit.invoke``); other sleuth errors become error results with
    their hint (:func:`~sleuth.integrations.toolset.safe_invoke`); anything else becomes an internal-error
    result and is logged to stderr.
    """
    try:
        result = safe_invoke(toolkit, name, arguments or {})
    except Exception as e:
        logger.exception("tool %s failed", scrub_paths(str(name))[:80])
        tool = name if isinstance(name, str) and name in toolkit else "a tool"
        return ToolResult(
            text=INTERNAL_ERROR_TEMPLATE.format(kind=type(e).__name__, tool=tool),
            data={"error": type(e).__name__},
            is_error=True,
            error_type=type(e).__name__,
        )
    if result.is_error:
        result = result.model_copy(update={"text": scrub_paths(result.text), "data": None})
    return result


def call_timeout_for(toolkit: Toolkit, name: str, default: float) -> float:
    """The deadline of a call: ``default``, or :data:`LONG_CALL_TIMEOUT` for tools that run a model."""
    tool = toolkit.tools.get(name) if isinstance(name, str) else None
    if tool is not None and tool.tags & LONG_TOOL_TAGS:
        return max(default, LONG_CALL_TIMEOUT)
    return default


def _to_call_result(result: ToolResult) -> Any:
    import mcp_types as types

    meta: dict[str, Any] = {}
    if result.truncated:
        meta["truncated"] = True
    if result.error_type:
        meta["error_type"] = result.error_type
    structured: Any = None
    if not result.is_error and result.data is not None:  # an object (older protocol versions require one)
        structured = result.data if isinstance(result.data, dict) else {"result": result.data}
    return types.CallToolResult(
        content=[types.TextContent(text=result.text)],
        structured_content=structured,
        is_error=result.is_error,
        _meta={"sleuth": meta} if meta else None,
    )


def build_server(
    toolkit: Toolkit,
    *,
    name: str = SERVER_NAME,
    instructions: str | None = None,
    max_concurrent_calls: int = DEFAULT_MAX_CONCURRENT_CALLS,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
) -> Server[Any]:
    """A low-level MCP ``Server`` listing and calling every tool of ``toolkit``.

    ``call_timeout``: seconds a call may take (model-bound tools get at least :data:`LONG_CALL_TIMEOUT`); past it
    the call is abandoned and answered with a ``ToolTimeoutError`` result."""
    _require_mcp()
    import anyio
    import mcp_types as types
    from mcp.server.lowlevel import Server

    from sleuth import __version__

    limiter = anyio.CapacityLimiter(max_concurrent_calls)
    read_only = types.ToolAnnotations(read_only_hint=True, destructive_hint=False, open_world_hint=False)

    def mcp_tools() -> list[Any]:
        return [
            types.Tool(
                name=tool.name,
                description=tool.description,
                input_schema=tool.parameters_schema(),
                annotations=read_only,
            )
            for tool in toolkit
        ]

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=mcp_tools())

    async def call_tool(ctx: Any, params: Any) -> Any:
        seconds = call_timeout_for(toolkit, params.name, call_timeout)
        result: ToolResult | None = None
        with anyio.move_on_after(seconds):
            result = await anyio.to_thread.run_sync(
                run_tool, toolkit, params.name, params.arguments, limiter=limiter, abandon_on_cancel=True
            )
        if result is None:  # the deadline passed: the worker thread is abandoned, its slot freed
            logger.warning("tool call abandoned after %.1fs", seconds)
            tool = params.name if params.name in toolkit else "the call"
            result = ToolResult(
                text=TIMEOUT_TEMPLATE.format(tool=tool, seconds=seconds), is_error=True, error_type="ToolTimeoutError"
            )
        return _to_call_result(result)

    def input_schema(tool_name: str) -> dict[str, Any] | None:
        return toolkit[tool_name].parameters_schema() if tool_name in toolkit else None

    return Server(
        name,
        version=__version__,
        instructions=instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=input_schema,
    )


def default_instructions(toolkit: Toolkit, corpus_root: Any = None, omitted: dict[str, str] | None = None) -> str:
    lines = ["sleuth searches a folder of text documents (read-only)."]
    if corpus_root is not None:
        lines.append(f"Corpus: {corpus_root}. Doc ids are paths relative to it.")
    lines.append(f"Tools: {', '.join(toolkit.names())}.")
    lines.append("Start with ls or a search, then read the documents you need; cite doc ids.")
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
) -> None:
    """Blocking entry point used by ``sleuth mcp``."""
    import anyio

    if transport == "http":
        check_http_exposure(host, allow_hosts, token)  # before anything is built or bound
    server = build_server(toolkit, instructions=instructions, call_timeout=call_timeout)
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
