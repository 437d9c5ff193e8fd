"""`sleuth ask` against a server that answers 200 with a web page: a model error naming the server, exit 2, one
line plus a hint (it used to be fed back to the model as its own mistake until "the steps budget ran out", exit 0).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.unit.llm_fake_server import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]


def test_ask_exits_nonzero_naming_the_server(tmp_path: Path) -> None:
    page = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
    with FakeOpenAIServer([(200, page)]) as srv:
        env = {**os.environ, "SLEUTH_HOME": str(tmp_path), "SLEUTH_MODEL": "openai/test-model",
               "SLEUTH_API_BASE": srv.url, "OPENAI_API_KEY": "sk-test"}
        p = subprocess.run(
            [sys.executable, "-m", "sleuth.cli.main", "ask", "Who designed the Kestrel Bridge?",
             "-c", str(ROOT / "examples" / "corpus"), "--agent", "react", "--no-trace", "-q"],
            capture_output=True, text=True, env=env, timeout=300,
        )
        requests = len(srv.requests)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "budget" not in p.stdout + p.stderr
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert lines[0].startswith("error (ModelProtocolError)") and f"the server at {srv.url}" in lines[0]
    assert lines[1].startswith("hint:") and len(lines) == 2
    assert requests == 1  # not retried, not fed back to the model
