"""The `sleuth` command. Each command group lives in its own module exposing ``register(app)``.

A call registers only the module of the command it names (``COMMANDS``; ``sleuth``, ``--help`` and an unknown name
register all), and modules keep heavy imports (litellm, torch, bm25s, numba) inside the command functions:
`sleuth grep/read/ls/search/df` answer in a fraction of a second (``benchmarks/cli_speed.py``;
``tests/unit/test_cli_imports.py`` checks which modules a call imports).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from sleuth.cli.resident import ONE_SHOT_COMMANDS, ONE_SHOT_ENV, command_name
from sleuth.errors import SleuthError

COMMAND_MODULES = [
    "sleuth.cli.corpus_cmds",  # grep, read, ls, corpus import
    "sleuth.cli.model_cmds",  # model serve|status|stop
    "sleuth.cli.search_cmds",  # index, search, df, enrich
    "sleuth.cli.tools_cmds",  # tools search
    "sleuth.cli.ask_cmds",  # ask, trace show|html
    "sleuth.cli.eval_cmds",  # eval ...
    "sleuth.cli.mcp_cmds",  # mcp
    "sleuth.cli.daemon_cmds",  # daemon start|status|stop
]
# each top-level command (or group) -> its module (tests/unit/test_cli_imports.py checks it against register())
COMMANDS = {
    "grep": "sleuth.cli.corpus_cmds", "read": "sleuth.cli.corpus_cmds", "ls": "sleuth.cli.corpus_cmds",
    "corpus": "sleuth.cli.corpus_cmds", "model": "sleuth.cli.model_cmds", "index": "sleuth.cli.search_cmds",
    "search": "sleuth.cli.search_cmds", "df": "sleuth.cli.search_cmds", "enrich": "sleuth.cli.search_cmds",
    "tools": "sleuth.cli.tools_cmds", "ask": "sleuth.cli.ask_cmds", "trace": "sleuth.cli.ask_cmds",
    "eval": "sleuth.cli.eval_cmds", "mcp": "sleuth.cli.mcp_cmds", "daemon": "sleuth.cli.daemon_cmds",
}
class SleuthGroup(TyperGroup):
    """The root command: every failure, usage errors included, is one line plus a hint on stderr (a JSON object
    on stdout under ``--json``) and exit code 2; an interrupt exits 130."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, windows_expand_args: bool = True, **extra: Any) -> Any:
        from sleuth.cli.output import print_error, usage_error

        argv = list(sys.argv[1:] if args is None else args)
        try:
            rv = super().main(argv, prog_name or "sleuth", complete_var, standalone_mode=False, **extra)
        except typer.Abort:  # Ctrl-C or EOF at a prompt
            sys.stderr.write("aborted\n")
            code = 130
        except TyperException as e:  # click's usage errors: a bad flag, a value out of range, a missing argument
            if type(e).__name__ == "NoArgsIsHelpError":  # `sleuth` or `sleuth eval` alone: the help
                typer.echo(getattr(e, "format_message")())  # noqa: B009 - not on TyperException
                code = 0
            else:
                print_error(usage_error(e), as_json="--json" in argv)
                code = 2
        except SleuthError as e:  # raised outside a command's own handler
            print_error(e, as_json="--json" in argv)
            code = 2
        else:
            code = rv if isinstance(rv, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _print_version(value: bool) -> None:
    if value:
        from sleuth import __version__

        typer.echo(__version__)
        raise typer.Exit()


app = typer.Typer(
    name="sleuth",
    cls=SleuthGroup,
    help="Agentic search toolkit for LLM agents: grep/read over raw corpora, BM25/SIRA/dense search, reranking, "
    "an agent that chooses among them, traces and evals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,  # help text is plain: `[attention]` in a help string is an extra, not markup
)


def register_all(modules: Sequence[str] = COMMAND_MODULES) -> None:
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that command group is not written yet
                continue
            raise
        module.register(app)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Print the version and exit.", is_eager=True, callback=_print_version
    ),
) -> None:
    """Agentic search toolkit for LLM agents: grep/read over raw corpora, BM25/SIRA/dense search, reranking, an
    agent that chooses among them, traces and evals. Every command takes --json."""


def main(argv: list[str] | None = None) -> None:
    name = command_name(sys.argv[1:] if argv is None else argv)
    if name in ONE_SHOT_COMMANDS:
        for var, value in ONE_SHOT_ENV.items():
            os.environ.setdefault(var, value)
    register_all([COMMANDS[name]] if name in COMMANDS else COMMAND_MODULES)
    app(args=argv)


if __name__ == "__main__":  # pragma: no cover
    main()
