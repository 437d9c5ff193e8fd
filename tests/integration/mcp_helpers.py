"""Shared by the MCP tests: the small test corpus, servers run as subprocesses (stdio parameters, an HTTP server on
a free port), and reading a tool result's text."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp.client.stdio import StdioServerParameters

SLEUTH = shutil.which("sleuth", path=str(Path(sys.executable).parent)) or "sleuth"
SECRET = "TOPSECRET-7f3a"
SCRIPTED_SERVER = str(Path(__file__).with_name("mcp_scripted_server.py"))

# A server with the corpus tools plus a slow tool, to interrupt calls mid-flight.
SLOW_SERVER = """
import sys, time
from sleuth.integrations import mcp_server
from sleuth.integrations.toolset import build_toolkit
from sleuth.tools.base import Tool, ToolArgs, ToolResult

class SleepArgs(ToolArgs):
    seconds: float = 1.0

def sleep(a):
    time.sleep(a.seconds)
    return ToolResult(text=f"slept {a.seconds}")

toolset = build_toolkit(sys.argv[1], extra_tools=[Tool("sleep", "Sleep a while.", SleepArgs, sleep)])
port = int(sys.argv[3]) if len(sys.argv) > 3 else 0
mcp_server.run(toolset.toolkit, transport=sys.argv[2], port=port)
"""


def write_corpus(tmp_path: Path) -> Path:
    """notes/alpha.md, notes/beta.txt, readme.txt; a hidden folder and a file next to the corpus hold SECRET."""
    root = tmp_path / "corpus"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "alpha.md").write_text(
        "# Alpha\nThe quick brown fox met the project lead on Monday.\nSleuth kickoff notes.\n"
    )
    (root / "notes" / "beta.txt").write_text("Budget review\nThe budget is 42 units.\nThe fox returns in May.\n")
    (root / "readme.txt").write_text("A small corpus for the MCP tests. Nothing secret here.\n")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text(f"{SECRET}\n")
    (tmp_path / "secret.txt").write_text(f"{SECRET}\n")  # next to the corpus, outside it
    return root


def write_bridge_corpus(tmp_path: Path) -> Path:
    """:func:`write_corpus` plus projects/kestrel_bridge.txt, the document the scripted ask questions find."""
    root = write_corpus(tmp_path)
    (root / "projects").mkdir()
    (root / "projects" / "kestrel_bridge.txt").write_text(
        "Kestrel Bridge\n\nThe Kestrel Bridge was designed by the engineer Bram Okafor.\n"
    )
    return root


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)


def sleuth_stdio(corpus: Path, *extra: str) -> StdioServerParameters:
    # the whole environment (the SDK passes only a few variables by default): PYTHONPATH selects the code under test
    return StdioServerParameters(command=SLEUTH, args=["mcp", "--corpus", str(corpus), *extra], env=dict(os.environ))


def scripted_stdio(corpus: Path, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[SCRIPTED_SERVER, str(corpus), *extra],
                                 env=dict(os.environ))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise AssertionError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("HTTP server did not start")


class HttpServer:
    """A server subprocess on ``port``; ``stop()`` ends it and returns its stderr."""

    def __init__(self, cmd: list[str], port: int, env: dict[str, str] | None = None) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/mcp"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        wait_port(port, self.proc)

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err.decode(errors="replace")
