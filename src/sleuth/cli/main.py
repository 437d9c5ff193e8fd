"""The `sleuth` command. Each command group lives in its own module exposing ``register(app)``.

Modules are imported at start-up, so they must keep heavy imports (litellm, torch, bm25s) inside the command
functions: `sleuth grep` stays instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from sleuth.errors import SleuthError

COMMAND_MODULES = [
    "sleuth.cli.corpus_cmds",  # grep, read, ls, corpus import
    "sleuth.cli.model_cmds",  # model serve|status|stop
    "sleuth.cli.search_cmds",  # index, search, df, enrich
    "sleuth.cli.tools_cmds",  # tools search
    "sleuth.cli.ask_cmds",  # ask, trace show|html
    "sleuth.cli.eval_cmds",  # eval ...
    "sleuth.cli.mcp_cmds",  # mcp
]

app = typer.Typer(
    name="sleuth",
    help="Agentic search toolkit for LLM agents: grep/read over raw corpora, BM25/SIRA/dense search, reranking, "
    "an agent that chooses among them, traces and evals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command group is not written yet
                continue
            raise
        module.register(app)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", is_eager=True),
) -> None:
    if version:
        from sleuth import __version__

        typer.echo(__version__)
        raise typer.Exit()


def main(argv: list[str] | None = None) -> None:
    _register_all()
    try:
        app(args=argv, standalone_mode=True)
    except SleuthError as e:  # pragma: no cover - typer converts most; this is the safety net
        from sleuth.cli.output import print_error

        print_error(e)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
