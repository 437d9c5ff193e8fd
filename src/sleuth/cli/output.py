"""Shared CLI output: rich for people, one JSON object for machines (--json), typed errors as exit code 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import BaseModel

from sleuth.errors import SleuthError

JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object (for machines).")


def _default(o: Any) -> Any:
    if isinstance(o, BaseModel):
        return o.model_dump(mode="json")
    if hasattr(o, "__fspath__"):
        return str(o)
    if isinstance(o, set | tuple):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


# Hints written for models name tool arguments; on the command line they name the flags.
CLI_HINTS = {
    "InvalidPatternError": "fix the regex, or pass -F (--fixed-strings) to search for the literal text",
    "PassageNotFoundError": "use a passage id from `sleuth search`, with the --chunk-size its index was built with",
    "DocumentNotFoundError": "list doc ids with `sleuth ls` and use one of those",
}


def one_line(text: str) -> str:
    """Collapse a message onto one line (a multi-line message from a library or a subprocess)."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def cli_hint(e: SleuthError) -> str:
    for cls in type(e).__mro__:
        if cls.__name__ in CLI_HINTS:
            return CLI_HINTS[cls.__name__]
    if e.hint:
        return one_line(e.hint)
    import click

    ctx = click.get_current_context(silent=True)
    return f"see `{ctx.command_path if ctx else 'sleuth'} --help`"


def flag_errors(e: Any, flags: dict[str, str] | None = None) -> str:
    """A pydantic ValidationError of a tool's arguments, with CLI flag names (``--max-count``) for fields."""
    parts = []
    for err in e.errors():
        field = str(err.get("loc", ("arguments",))[0]) if err.get("loc") else "arguments"
        name = (flags or {}).get(field, "--" + field.replace("_", "-"))
        parts.append(f"{name}: {err.get('msg')}")
    return "; ".join(parts)


def usage_error(e: Any) -> SleuthError:
    """A click usage error (bad flag, value out of range, missing argument) as a :class:`UsageError`."""
    from sleuth.errors import UsageError

    ctx = getattr(e, "ctx", None)
    path = ctx.command_path if ctx is not None else "sleuth"
    return UsageError(one_line(e.format_message()), hint=f"see `{path} --help`")


def print_error(e: SleuthError, as_json: bool = False) -> None:
    """One line saying what went wrong and one with the hint (stderr), or one JSON object (stdout)."""
    message, hint = one_line(e.message), cli_hint(e)
    if as_json:
        print_json({"ok": False, "error": type(e).__name__, "message": message, "hint": hint})
        return
    from rich.console import Console
    from rich.markup import escape

    console = Console(stderr=True, soft_wrap=True)  # never break a message inside words or paths
    console.print(f"[bold red]error[/] ({type(e).__name__}): {escape(message)}", highlight=False)
    console.print(f"[yellow]hint[/]: {escape(hint)}", highlight=False)


@contextmanager
def cli_errors(as_json: bool = False) -> Iterator[None]:
    """Turn SleuthErrors into a readable message (or a JSON error object) and exit code 2."""
    try:
        yield
    except SleuthError as e:
        print_error(e, as_json)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        raise typer.Exit(130) from None


class Output:
    """A command's result: ``data`` is printed for ``--json``, ``text`` for people."""

    def __init__(self, data: Any, text: str) -> None:
        self.data, self.text = data, text

    def __str__(self) -> str:
        return self.text


def run_command(as_json: bool, fn: Callable[[], Any], render: Callable[[Any], None]) -> None:
    """Run ``fn`` under :func:`cli_errors`; print its result as JSON or with ``render``.

    An :class:`Output` result prints its ``data`` as JSON and its ``text`` for people."""
    with cli_errors(as_json):
        result = fn()
    if as_json:
        print_json(result.data if isinstance(result, Output) else result)
    else:
        render(str(result) if isinstance(result, Output) else result)
