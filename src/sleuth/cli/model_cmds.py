"""`sleuth model serve | status | stop`: the embedded llama.cpp server shared by sleuth processes."""

from __future__ import annotations

from typing import Any

import typer

from sleuth.cli.output import JSON_OPTION, Output, run_command

model_app = typer.Typer(help="The embedded local model server (llama.cpp on 127.0.0.1).", no_args_is_help=True)

MODEL_OPTION = typer.Option(
    "local", "--model", "-m", help="local, local:<packaged name> (smollm2-135m, ...) or gguf:/path/file.gguf."
)


def _server(model: str, n_ctx: int | None = None, threads: int | None = None) -> Any:
    from sleuth.llm.local import LocalServer

    kwargs: dict[str, Any] = {}
    if n_ctx:
        kwargs["n_ctx"] = n_ctx
    if threads:
        kwargs["threads"] = threads
    return LocalServer.for_spec(model, **kwargs)


def _status_text(st: Any) -> str:
    if not st.running:
        return "not running"
    kind = "persistent" if st.persistent else f"on demand, {st.clients} client(s)"
    health = "healthy" if st.healthy else "NOT answering"
    return f"running ({kind}, {health}) pid {st.pid} at {st.api_base}\nmodel {st.model_path}\nlog {st.log_file}"


@model_app.command("serve")
def serve_cmd(
    model: str = MODEL_OPTION,
    n_ctx: int = typer.Option(None, "--n-ctx", help="Context window in tokens (default: $SLEUTH_N_CTX, else 4096)."),
    threads: int = typer.Option(
        None, "--threads", help="CPU threads (default: $SLEUTH_THREADS, else cores, at most 4)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start the server in the background and keep it running until `sleuth model stop`."""

    def work() -> Output:
        server = _server(model, n_ctx, threads)
        st = server.status()
        if st.healthy and not st.persistent:
            server.stop()  # an on-demand server would exit with its clients: replace it with a persistent one
        server.ensure(persistent=True, lease=False)
        st = server.status()
        return Output(st.to_dict(), _status_text(st))

    run_command(as_json, work, typer.echo)


@model_app.command("status")
def status_cmd(model: str = MODEL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Is the server running, healthy, and where?"""

    def work() -> Output:
        from sleuth.llm.local import LocalServer

        st = LocalServer.handle(model).status()
        return Output(st.to_dict(), _status_text(st))

    run_command(as_json, work, typer.echo)


@model_app.command("stop")
def stop_cmd(model: str = MODEL_OPTION, as_json: bool = JSON_OPTION) -> None:
    """Stop the server (whoever started it)."""

    def work() -> Output:
        from sleuth.llm.local import LocalServer

        stopped = LocalServer.handle(model).stop()
        return Output({"stopped": stopped}, "stopped" if stopped else "not running")

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
