"""Importing the model layer (and litellm itself, and pricing, and token counting) makes no network attempt."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

PROBE = r"""
import socket, sys
attempts = []
def refuse(*args, **kwargs):
    attempts.append(repr(args)[:200])
    raise OSError("network disabled by test")
socket.socket.connect = refuse
socket.socket.connect_ex = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
import time
t = time.time()
import sleuth, sleuth.llm, sleuth.llm.client
assert "litellm" not in sys.modules, "import sleuth.llm.client imported litellm"
from sleuth.llm import accounting
n = accounting.count_tokens("hello world")
import litellm  # the lazy import, with LITELLM_LOCAL_MODEL_COST_MAP set by sleuth
cost = accounting.price("gpt-4o-mini", 1000, 100)
assert cost and cost > 0, cost
assert n == 2
print("attempts:", len(attempts))
for a in attempts:
    print(a)
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LITELLM_LOCAL_MODEL_COST_MAP", "TIKTOKEN_CACHE_DIR")}
    return env


def test_import_makes_no_network_attempt():
    out = subprocess.run([sys.executable, "-c", PROBE], env=_env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "attempts: 0" in out.stdout, out.stdout


@pytest.mark.skipif(shutil.which("unshare") is None, reason="unshare is not available")
def test_import_works_without_a_network_namespace():
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (needs root or user namespaces)")
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", PROBE], env=_env(), capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "attempts: 0" in out.stdout, out.stdout
