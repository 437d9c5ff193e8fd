"""The CLI's resident process (`sleuth daemon`, #18): a one-shot command it answers prints exactly what the command
prints on its own (stdout, stderr, exit code), in the client's folder and environment; the client imports no typer
or pydantic; other code, a stopped or absent daemon and ``SLEUTH_RESIDENT=0`` fall back to running locally.

Real processes throughout: a daemon started in a temporary ``SLEUTH_HOME``, the console script's code as the
client. CPU per call is benchmarks/cli_speed.py's, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sleuth.cli import resident
from tests.conftest import MEDICAL_DOCS

# the console script (sleuth.cli.entry), and at exit whether the full CLI (typer, pydantic) was imported
CLIENT = """
import atexit, json, sys
atexit.register(lambda: sys.stderr.write("\\nIMPORTED " + json.dumps(
    {"typer": "typer" in sys.modules, "pydantic": "pydantic" in sys.modules}) + "\\n"))
from sleuth.cli.entry import main
main()
"""


def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str, dict[str, bool]]:
    proc = subprocess.run([sys.executable, "-c", CLIENT, *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=120)
    err, _, last = proc.stderr.rstrip().rpartition("\n")
    if not last.startswith("IMPORTED "):
        err, last = proc.stderr, 'IMPORTED {"typer": null, "pydantic": null}'
    return proc.returncode, proc.stdout, err.rstrip(), json.loads(last[len("IMPORTED "):])


TIMINGS = {"seconds", "latency_s", "elapsed_s"}


def same_output(out: str) -> object:
    """stdout, with the JSON's timing fields (the only thing that differs between two runs) left out."""
    try:
        data = json.loads(out)
    except ValueError:
        return out

    def strip(o: object) -> object:
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in TIMINGS}
        return [strip(v) for v in o] if isinstance(o, list) else o

    return strip(data)


@pytest.fixture()
def daemon(tmp_path: Path) -> Iterator[dict[str, str]]:
    home = tmp_path / "home"
    env = {**os.environ, "SLEUTH_HOME": str(home)}
    env.pop("SLEUTH_RESIDENT", None)
    st = resident.start(idle_s=120, home=home)
    assert st["running"] and st["answering"] and st["current"]
    try:
        yield env
    finally:
        assert resident.stop(home)
        assert not resident.status(home)["running"] and not Path(st["socket"]).exists()


CALLS = [
    ["ls", "-c", "corpus"],
    ["grep", "heart", "-c", "corpus"],
    ["grep", "-F", "heart failure", "-c", "corpus", "--json"],
    ["read", "b.txt", "-c", "corpus", "--lines", "1:2"],
    ["search", "heart failure treatment", "-c", "corpus", "--k", "2"],
    ["search", "heart failure treatment", "-c", "corpus", "--k", "2", "--json"],
    ["df", "heart", "failure", "-c", "corpus"],
    ["read", "missing.txt", "-c", "corpus"],  # an error: one line + hint, exit 2
    ["read", "missing.txt", "-c", "corpus", "--json"],
    ["search", "x", "-c", "corpus", "--k", "0"],  # a usage error
    ["grep", "(", "-c", "corpus"],  # a bad regex
    ["grep", "--help"],
    ["ls"],  # no corpus: the client's SLEUTH_CORPUS (unset here) decides
]


def test_the_daemon_answers_exactly_what_the_command_prints(daemon: dict[str, str], make_corpus, tmp_path) -> None:
    root = make_corpus(MEDICAL_DOCS)
    work = tmp_path / "work"
    work.mkdir()
    (work / "corpus").symlink_to(root)  # relative paths resolve in the client's folder
    own = {**daemon, "SLEUTH_RESIDENT": "0"}
    daemon = {k: v for k, v in daemon.items() if k != "SLEUTH_CORPUS"}
    own.pop("SLEUTH_CORPUS", None)
    run(["search", "warm", "-c", "corpus"], own, work)  # the index built once, before the comparison
    for args in CALLS:
        local = run(args, own, work)
        served = run(args, daemon, work)
        assert local[3] == {"typer": True, "pydantic": True}
        assert served[3] == {"typer": False, "pydantic": False}, (args, served)  # answered by the daemon
        assert (served[0], same_output(served[1]), served[2]) == (local[0], same_output(local[1]), local[2]), args
    codes = {tuple(a): run(a, daemon, work)[0] for a in CALLS[7:11]}
    assert set(codes.values()) == {2}


def test_the_clients_environment_reaches_the_command(daemon: dict[str, str], make_corpus, tmp_path) -> None:
    root = make_corpus(MEDICAL_DOCS)
    code, out, err, imported = run(["ls", "--json"], {**daemon, "SLEUTH_CORPUS": str(root)}, tmp_path)
    assert code == 0 and not imported["typer"], err
    assert set(json.loads(out)["doc_ids"]) == set(MEDICAL_DOCS)


def test_other_code_and_opt_out_fall_back_to_running_locally(daemon: dict[str, str], make_corpus, tmp_path) -> None:
    root = make_corpus(MEDICAL_DOCS)
    code, out, _, imported = run(["ls", "-c", str(root)], {**daemon, "SLEUTH_RESIDENT": "0"}, tmp_path)
    assert code == 0 and imported["typer"] and "b.txt" in out
    # a daemon of other code (an upgrade or an edit since it started) answers nothing and exits
    home = Path(daemon["SLEUTH_HOME"])
    state = json.loads(resident.state_path(home).read_text())
    srv = resident.Resident(Path(state["socket"]), resident.state_path(home), 0, lambda argv: 0)
    reply = srv.handle(json.dumps({"stamp": "other", "argv": ["ls"], "cwd": "/", "env": {}}).encode())
    assert "fallback" in reply and srv._stop


def test_requests_it_does_not_serve() -> None:
    srv = resident.Resident(Path("/nonexistent.sock"), Path("/nonexistent.json"), 0, lambda argv: 0)
    assert "fallback" in srv.handle(b"not json")
    assert "fallback" in srv.handle(json.dumps({"stamp": srv.stamp}).encode())
    ask = {"stamp": srv.stamp, "argv": ["ask", "why?"], "cwd": "/", "env": {}}
    assert srv.handle(json.dumps(ask).encode()) == {"fallback": "not a one-shot command"}
    gone = {"stamp": srv.stamp, "argv": ["ls"], "cwd": "/nonexistent/folder", "env": {}}
    assert srv.handle(json.dumps(gone).encode())["fallback"].startswith("cannot enter")
    assert resident.call(["ask", "why?"]) is None  # never sent


def test_a_socket_folder_others_can_enter_is_not_used(tmp_path: Path, make_corpus) -> None:
    root = make_corpus(MEDICAL_DOCS)
    env = {**os.environ, "SLEUTH_HOME": str(tmp_path / "home"), "TMPDIR": str(tmp_path / "tmp")}
    folder = tmp_path / "tmp" / f"sleuth-{os.getuid()}"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    code = "from sleuth.cli import resident; import sys; sys.exit(3 if resident.call(sys.argv[1:]) is None else 0)"
    sock = subprocess.run([sys.executable, "-c", "from sleuth.cli import resident; print(resident.socket_path())"],
                          env=env, capture_output=True, text=True, check=True).stdout.strip()
    Path(sock).touch()  # something at the socket's path, in a folder others can write to
    proc = subprocess.run([sys.executable, "-c", code, "ls", "-c", str(root)], env=env, timeout=60)
    assert proc.returncode == 3
    proc = subprocess.run([sys.executable, "-m", "sleuth.cli.resident", "--idle", "1"], env=env, timeout=60,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "not owner-only" in proc.stderr
