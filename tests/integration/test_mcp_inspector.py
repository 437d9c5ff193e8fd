"""sleuth's MCP server driven by the MCP Inspector (npm ``@modelcontextprotocol/inspector``): its CLI, and the
TypeScript SDK client it is built on with the request options of the Inspector's web client.

The Inspector's clients all use the SDK's default request timeout, 60 s. The web client passes an ``onprogress``
callback and ``resetTimeoutOnProgress: true``, so its requests carry a ``progressToken`` and each progress
notification restarts the 60 s; that is the path tested for a long ``ask`` (tests/integration/ts_sdk_call.mjs,
with the SDK installed alongside the Inspector). The CLI (2.12.0) is built with ``progress: false``: it sends no
``progressToken``, so no server can reset its timeout, and a CLI call longer than 60 s fails whatever the server
does (the CLI tests below stay under it).

The only timeout changed is the connection timeout (``--connect-timeout 180000``, the Inspector's own remedy for a
slow start; 15 s by default): on a loaded test machine the server's imports alone can take longer than that.

The Inspector is installed at test time into ``.pytest_cache/mcp-inspector`` (ignored by git; node_modules is never
committed) when npm is on PATH and the registry answers; otherwise the tests skip and say why. Pin another version
with ``SLEUTH_INSPECTOR_VERSION``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp", reason="the MCP server needs the `mcp` extra")

from tests.integration.mcp_helpers import SCRIPTED_SERVER, SLEUTH, write_bridge_corpus

REPO = Path(__file__).resolve().parents[2]
INSPECTOR_VERSION = os.environ.get("SLEUTH_INSPECTOR_VERSION", "2.12.0")
INSTALL_DIR = REPO / ".pytest_cache" / "mcp-inspector"
TS_CALL = Path(__file__).with_name("ts_sdk_call.mjs")
QUESTION = "Who designed the Kestrel Bridge?"


@pytest.fixture(scope="module")
def inspector() -> Path:
    """The Inspector's launcher, installed once into .pytest_cache (skips when npm or the registry is missing)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("the MCP Inspector needs node and npm on PATH (not found)")
    exe = INSTALL_DIR / "node_modules" / ".bin" / "inspector"
    marker = INSTALL_DIR / f".installed-{INSPECTOR_VERSION}"
    if not (exe.exists() and marker.exists()):
        INSTALL_DIR.mkdir(parents=True, exist_ok=True)
        try:
            p = subprocess.run(
                # one retry, not npm's default backoff: where TLS to the registry fails (a proxy's CA missing, as
                # under `env -i`, which drops NODE_EXTRA_CA_CERTS) each package otherwise costs minutes of retries
                [npm, "install", "--fetch-retries=1", "--prefix", str(INSTALL_DIR), "--no-audit", "--no-fund",
                 "--no-save",
                 f"@modelcontextprotocol/inspector@{INSPECTOR_VERSION}"],
                capture_output=True, text=True, timeout=600, env={**os.environ, "INSPECTOR_SKIP_CLIENT_INSTALL": "1"},
            )
        except subprocess.TimeoutExpired:
            pytest.skip("npm install of the MCP Inspector did not finish in 600 s (registry unreachable?)")
        if p.returncode != 0 or not exe.exists():
            tls = " (TLS to the registry failed: is NODE_EXTRA_CA_CERTS set?)" if "CERT" in p.stderr else ""
            pytest.skip(f"npm could not install the MCP Inspector{tls}: {(p.stderr or p.stdout).strip()[-300:]}")
        marker.write_text(INSPECTOR_VERSION)
    return exe


@pytest.fixture()
def corpus_dir(tmp_path: Path) -> Path:
    return write_bridge_corpus(tmp_path)


def run_inspector(inspector: Path, server: list[str], *args: str, tmp_path: Path,
                  timeout: float = 300) -> tuple[int, Any, str, float]:
    """``inspector --cli SERVER... ARGS --format json`` -> (exit code, parsed stdout or its text, stderr, seconds).
    The Inspector gives a stdio server only the variables passed with -e, so the code under test is named there."""
    env_args = ["-e", f"SLEUTH_HOME={tmp_path / 'home'}"]
    if os.environ.get("PYTHONPATH"):  # the Inspector refuses an empty value ("Use key=value format")
        env_args += ["-e", f"PYTHONPATH={os.environ['PYTHONPATH']}"]
    t0 = time.monotonic()
    p = subprocess.run([str(inspector), "--cli", "--connect-timeout", "180000", *env_args, *server, *args,
                        "--format", "json"],
                       capture_output=True, text=True, timeout=timeout, cwd=tmp_path)
    seconds = time.monotonic() - t0
    try:
        out: Any = json.loads(p.stdout)
    except json.JSONDecodeError:
        out = p.stdout
    return p.returncode, out, p.stderr, seconds


def test_inspector_lists_tools_resources_and_prompts(inspector: Path, corpus_dir: Path, tmp_path: Path) -> None:
    server = [SLEUTH, "mcp", "--corpus", str(corpus_dir)]
    rc, out, err, _ = run_inspector(inspector, server, "--method", "tools/list", "--strict", tmp_path=tmp_path)
    assert rc == 0, err  # --strict: exit 6 on any error-severity schema portability problem
    tools = {t["name"]: t for t in out["result"]["tools"]}
    assert set(tools) == {"ls", "grep", "read", "df", "search"}
    for name, tool in tools.items():
        assert tool["outputSchema"]["type"] == "object", name
        assert tool["annotations"]["readOnlyHint"] is True
    rc, out, err, _ = run_inspector(inspector, server, "--method", "tools/call", "--tool-name", "search",
                                    "--tool-arg", "query=budget review", "--tool-arg", "k=2", tmp_path=tmp_path)
    assert rc == 0 and out["result"]["isError"] is False, err  # the Inspector validates structuredContent
    assert out["result"]["structuredContent"]["result"][0]["doc_id"] == "notes/beta.txt"
    rc, out, err, _ = run_inspector(inspector, server, "--method", "resources/list", tmp_path=tmp_path)
    assert rc == 0, err
    uris = [r["uri"] for r in out["result"]["resources"]]
    assert "sleuth://doc/notes/alpha.md" in uris and not [u for u in uris if "hidden" in u]
    rc, out, err, _ = run_inspector(inspector, server, "--method", "resources/read", "--uri",
                                    "sleuth://doc/notes/beta.txt", tmp_path=tmp_path)
    assert rc == 0 and "42 units" in out["result"]["contents"][0]["text"], err
    rc, out, err, _ = run_inspector(inspector, server, "--method", "prompts/get", "--prompt-name", "answer",
                                    "--prompt-args", "question=What is the budget?", "strategy=sira",
                                    tmp_path=tmp_path)
    assert rc == 0, err
    assert "What is the budget?" in out["result"]["messages"][0]["content"]["text"]


def test_inspector_cli_calls_ask_with_its_default_timeouts(inspector: Path, corpus_dir: Path, tmp_path: Path) -> None:
    server = [sys.executable, SCRIPTED_SERVER, str(corpus_dir), "--delay", "1", "--steps", "2"]
    rc, out, err, _ = run_inspector(inspector, server, "--method", "tools/call", "--tool-name", "ask",
                                    "--tool-arg", f"question={QUESTION}", "--tool-arg", "agent=react",
                                    tmp_path=tmp_path)
    assert rc == 0, (out, err[-2000:])
    result = out["result"]
    assert result["isError"] is False and "Bram Okafor" in result["content"][0]["text"]
    assert result["structuredContent"]["answer"] == "Bram Okafor"  # validated by the Inspector against outputSchema


def ts_sdk_call(inspector: Path, server: list[str], tool: str, arguments: dict[str, Any], tmp_path: Path,
                timeout_ms: int = 0) -> Any:
    """One call through tests/integration/ts_sdk_call.mjs (the Inspector web client's request options)."""
    sdk = inspector.parents[1] / "@modelcontextprotocol" / "client"
    if not (sdk / "dist" / "index.mjs").exists():
        pytest.skip(f"the TypeScript SDK client is not where the Inspector's install puts it: {sdk}")
    env = {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "SLEUTH_HOME": str(tmp_path / "home"),
           "PATH": os.environ.get("PATH", "")}
    cmd = [shutil.which("node") or "node", str(TS_CALL), str(sdk), tool, json.dumps(arguments), *server]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=400, cwd=tmp_path,
                       env={**os.environ, "SERVER_ENV_JSON": json.dumps(env),
                            **({"TIMEOUT_MS": str(timeout_ms)} if timeout_ms else {})})
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.long  # over a minute by design (it outlives the SDK's 60 s); make test-long runs it
def test_ts_sdk_ask_outlives_the_default_timeout_thanks_to_progress(
    inspector: Path, corpus_dir: Path, tmp_path: Path
) -> None:
    """An `ask` of 8 scripted model calls of 9 s each (72 s) under the SDK's default 60 s timeout, reset on progress
    as the Inspector's web client does: each agent step's notification restarts it, so the call succeeds."""
    server = [sys.executable, SCRIPTED_SERVER, str(corpus_dir), "--delay", "9", "--steps", "7"]
    out = ts_sdk_call(inspector, server, "ask", {"question": QUESTION, "agent": "react"}, tmp_path)
    assert out["ok"] is True, out.get("error")
    assert out["timeout_ms"] == 60_000 and out["seconds"] > 72, out["seconds"]
    result = out["result"]
    assert result["isError"] is False and result["structuredContent"]["answer"] == "Bram Okafor"
    assert result["structuredContent"]["steps"] == 8
    times = [p["t"] for p in out["progress"]]
    assert len(times) >= 14 and max(b - a for a, b in zip([0.0, *times[:-1]], times, strict=True)) < 20, times
    assert any(p["message"].startswith("#1 call_model") for p in out["progress"])


@pytest.mark.slow
def test_ts_sdk_times_out_a_call_that_sends_no_progress(inspector: Path, corpus_dir: Path, tmp_path: Path) -> None:
    """The control: the same client and options, a call that sends no progress (the heartbeat set to 1000 s) and
    outlasts the timeout: the SDK gives up at the timeout, long before the call ends. This is what `ask` met before
    it sent progress. The timeout is 8 s here instead of the default 60 s (the mechanism is the same; CI saves 52 s)."""
    server = [sys.executable, SCRIPTED_SERVER, str(corpus_dir), "--progress-interval", "1000"]
    out = ts_sdk_call(inspector, server, "sleep", {"seconds": 40}, tmp_path, timeout_ms=8000)
    assert out["ok"] is False and "timed out" in out["error"].lower(), out
    assert out["timeout_ms"] == 8000
    assert out["progress"] == [] and 7.5 < out["seconds"] < 20, out["seconds"]


