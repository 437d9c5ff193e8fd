"""`sleuth daemon start | status | stop`: the CLI's resident process (:mod:`sleuth.cli.resident`), which answers
the one-shot commands (grep, read, ls, search, df) without a new Python start-up per call."""

from __future__ import annotations

from typing import Any

import typer

from sleuth.cli.output import JSON_OPTION, Output, run_command

daemon_app = typer.Typer(
    help="A resident process that answers grep/read/ls/search/df without a Python start-up per call.",
    no_args_is_help=True,
)


def _text(st: dict[str, Any]) -> str:
    if not st["running"]:
        return "not running"
    state = "answering" if st.get("answering") else "NOT answering"
    if not st.get("current"):
        state += ", other code (it exits at the next call)"
    idle = f"exits after {st['idle_s']:g} s idle" if st.get("idle_s") else "runs until stopped"
    return f"running ({state}) pid {st['pid']}, {idle}\nsocket {st['socket']}\nlog {st['log']}"


@daemon_app.command("start")
def start_cmd(
    idle: float = typer.Option(1800.0, "--idle", min=0, help="Exit after this many seconds without a call (0: never)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Start it in the background (or keep the one that runs); `sleuth grep/read/ls/search/df` then use it."""

    def work() -> Output:
        from sleuth.cli import resident

        st = resident.start(idle_s=idle)
        return Output(st, _text(st))

    run_command(as_json, work, typer.echo)


@daemon_app.command("status")
def status_cmd(as_json: bool = JSON_OPTION) -> None:
    """Is it running, answering, and running this version of sleuth?"""

    def work() -> Output:
        from sleuth.cli import resident

        st = resident.status()
        return Output(st, _text(st))

    run_command(as_json, work, typer.echo)


@daemon_app.command("stop")
def stop_cmd(as_json: bool = JSON_OPTION) -> None:
    """Stop it."""

    def work() -> Output:
        from sleuth.cli import resident

        stopped = resident.stop()
        return Output({"stopped": stopped}, "stopped" if stopped else "not running")

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(daemon_app, name="daemon")
