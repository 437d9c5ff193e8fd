"""`sleuth model status | stop | serve` without starting a model: status of nothing, stale state, bad model specs."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def run(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLEUTH_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "sleuth.cli.main", "model", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def test_status_and_stop_when_nothing_runs(tmp_path):
    out = run("status", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    st = json.loads(out.stdout)
    assert st["running"] is False and st["state_file"].endswith("server/local.json")
    assert not (tmp_path / "models").exists()  # status never assembles weights
    out = run("stop", "--json", home=tmp_path)
    assert json.loads(out.stdout) == {"stopped": False}


def test_stale_state_from_a_crashed_server_reads_as_not_running(tmp_path):
    (tmp_path / "server").mkdir()
    (tmp_path / "server" / "local.json").write_text(json.dumps(
        {"pid": 999999999, "url": "http://127.0.0.1:9", "api_base": "http://127.0.0.1:9/v1"}))
    out = run("status", home=tmp_path)
    assert out.returncode == 0 and out.stdout.strip() == "not running"


def test_serve_with_a_bad_model_is_a_typed_error(tmp_path):
    out = run("serve", "--model", f"gguf:{tmp_path / 'missing.gguf'}", "--json", home=tmp_path)
    assert out.returncode == 2
    err = json.loads(out.stdout)
    assert err["error"] == "WeightsError" and err["hint"]
    out = run("serve", "--model", "local:no-such-model", home=tmp_path)
    assert out.returncode == 2 and "unknown packaged model" in out.stderr
    out = run("status", "--model", "openai/gpt-4o", home=tmp_path)
    assert out.returncode == 2 and "not a local model spec" in out.stderr
