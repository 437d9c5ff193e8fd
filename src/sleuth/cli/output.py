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


def print_error(e: SleuthError, as_json: bool = False) -> None:
    if as_json:
        print_json({"ok": False, **e.to_dict()})
        return
    from rich.console import Console

    console = Console(stderr=True, soft_wrap=True)  # never break a message inside words or paths
    console.print(f"[bold red]error[/] ({type(e).__name__}): {e.message}", highlight=False, markup=True)
    if e.hint:
        console.print(f"[yellow]hint[/]: {e.hint}", highlight=False)


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
