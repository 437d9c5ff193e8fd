"""A resident process that answers the one-shot commands (`grep`, `read`, `ls`, `search`, `df`) for the CLI.

A shell-driven agent runs one ``sleuth`` process per step, and most of such a call's CPU is Python importing typer,
pydantic and sleuth before a query that takes milliseconds. ``sleuth daemon start`` keeps one process with those
imports done; while it runs, ``sleuth grep ...`` (the console script, :func:`sleuth.cli.entry.main`) sends its
arguments, working folder and environment over a Unix socket, and prints what the resident process wrote, with its
exit code. The command runs there exactly as it would have run here (the same typer app, the same checks of index
freshness, the client's environment and folder); only the start-up is saved.

The client side imports nothing but the standard library. It falls back to running the command itself, silently,
whenever the resident process is absent, unreachable, from other code (sleuth upgraded or edited since it
started: it then exits), or ``SLEUTH_RESIDENT=0`` is set. Output is returned when the command ends (a progress bar
of a first index build is printed at the end, not live).

Only its owner can use it: the socket lives in a folder ``$TMPDIR/sleuth-<uid>/`` made owner-only (0700; a folder
there with other permissions or owner is not used), the socket is 0600, and each connection's peer uid is checked
where the platform tells it. Requests are read up to :data:`MAX_REQUEST` bytes; one request is served at a time.
It exits after ``--idle`` seconds without a request (default 30 minutes; 0 = never), on SIGTERM, or when its state
file (``$SLEUTH_HOME/daemon.json``) is removed (how ``sleuth daemon stop`` asks, as for the model server).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import socket
import struct
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sleuth.fsutil import sleuth_home

ONE_SHOT_COMMANDS = frozenset({"grep", "read", "ls", "search", "df"})
# Start-up costs larger than a one-shot command's whole query, switched off unless the caller set the variable:
# numpy's BLAS thread pool (they do no linear algebra) and pydantic's scan of every installed package's entry
# points for pydantic plugins (sleuth uses none).
ONE_SHOT_ENV = {"OPENBLAS_NUM_THREADS": "1", "PYDANTIC_DISABLE_PLUGINS": "__all__"}
MAX_REQUEST = 4 << 20
PROTOCOL = 1
DEFAULT_IDLE_S = 1800.0
CONNECT_TIMEOUT_S = 2.0


def command_name(argv: Sequence[str]) -> str | None:
    """The command a call names: its first argument that is not an option (the root has only flags)."""
    return next((a for a in argv if not a.startswith("-")), None)


def socket_path(home: Path | None = None) -> Path:
    """The socket of the resident process serving ``home`` (``$SLEUTH_HOME``): short enough for any home."""
    home = (home or sleuth_home()).absolute()
    digest = hashlib.sha256(str(home).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"sleuth-{os.getuid()}" / f"cli-{digest}.sock"


def state_path(home: Path | None = None) -> Path:
    return (home or sleuth_home()) / "daemon.json"


def code_stamp() -> str:
    """What the running code is: the newest modification time and count of sleuth's modules. A resident process
    started before an upgrade or an edit answers no request of newer code."""
    root = Path(__file__).resolve().parents[1]
    newest, count = 0, 0
    stack = [root]
    while stack:
        for entry in os.scandir(stack.pop()):
            if entry.is_dir(follow_symlinks=False):
                if entry.name != "__pycache__":
                    stack.append(Path(entry.path))
            elif entry.name.endswith(".py"):
                newest, count = max(newest, entry.stat().st_mtime_ns), count + 1
    return f"{PROTOCOL}:{count}:{newest}"


def _private_dir_ok(folder: Path) -> bool:
    try:
        st = folder.stat()
    except OSError:
        return False
    return st.st_uid == os.getuid() and not st.st_mode & 0o077


def _recv_all(conn: socket.socket, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = conn.recv(1 << 16)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise ValueError(f"message over {limit} bytes")


# ---------------------------------------------------------------------------------------------------- the client


def call(argv: Sequence[str]) -> int | None:
    """Run a one-shot command in the resident process and print its output; ``None`` when the caller should run
    it itself (no resident process, another version, not a one-shot command, ``SLEUTH_RESIDENT=0``)."""
    if os.environ.get("SLEUTH_RESIDENT", "1") == "0" or command_name(argv) not in ONE_SHOT_COMMANDS:
        return None
    path = socket_path()
    if not path.exists() or not _private_dir_ok(path.parent):
        return None
    request = {
        "protocol": PROTOCOL, "stamp": code_stamp(), "argv": list(argv), "cwd": os.getcwd(),
        "env": dict(os.environ), "tty": [sys.stdout.isatty(), sys.stderr.isatty()],
        "width": _terminal_width(),
    }  # fmt: skip
    data = json.dumps(request).encode()
    if len(data) > MAX_REQUEST:
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(CONNECT_TIMEOUT_S)
            s.connect(str(path))
            s.settimeout(None)  # the commands bound themselves (grep's timeout, read's caps)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            reply = json.loads(_recv_all(s, 1 << 30))
    except (OSError, ValueError):
        return None
    if not isinstance(reply, dict) or "code" not in reply:
        return None  # "fallback": another version, or a folder the resident process cannot enter
    sys.stdout.write(reply.get("stdout", ""))
    sys.stdout.flush()
    sys.stderr.write(reply.get("stderr", ""))
    sys.stderr.flush()
    return int(reply["code"])


def _terminal_width() -> int | None:
    try:
        return os.get_terminal_size(sys.stdout.fileno()).columns
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------- the server


class _Capture(io.StringIO):
    """stdout/stderr of one request: text, and a terminal when the client's stream is one (rich colours then)."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


def _peer_uid(conn: socket.socket) -> int | None:
    if not hasattr(socket, "SO_PEERCRED"):
        return None
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class Resident:
    """The serving loop. ``run_cli(argv) -> exit code`` runs one command (the typer app, in this process)."""

    def __init__(self, sock: Path, state: Path, idle_s: float, run_cli: Any) -> None:
        self.sock, self.state, self.idle_s, self.run_cli = sock, state, idle_s, run_cli
        self.stamp = code_stamp()
        self.served = 0
        self._stop = False

    def handle(self, raw: bytes) -> dict[str, Any]:
        try:
            req = json.loads(raw)
            argv, cwd, env = list(req["argv"]), str(req["cwd"]), dict(req["env"])
            tty = [bool(t) for t in req.get("tty", [False, False])]
        except (ValueError, KeyError, TypeError):
            return {"fallback": "malformed request"}
        if req.get("stamp") != self.stamp:
            self._stop = True  # newer code asks: this process is out of date
            return {"fallback": "the resident process runs other code; it exits"}
        if command_name(argv) not in ONE_SHOT_COMMANDS or not all(isinstance(a, str) for a in argv):
            return {"fallback": "not a one-shot command"}
        saved_env, saved_out, saved_err = dict(os.environ), sys.stdout, sys.stderr
        try:
            saved_cwd = os.getcwd()
        except OSError:
            saved_cwd = "/"
        out, err = _Capture(tty[0]), _Capture(tty[1])
        cpu0, wall0 = time.process_time(), time.perf_counter()
        try:
            os.chdir(cwd)
        except OSError:
            return {"fallback": f"cannot enter {cwd}"}
        try:
            os.environ.clear()
            os.environ.update({k: str(v) for k, v in env.items()})
            for var, value in ONE_SHOT_ENV.items():
                os.environ.setdefault(var, value)
            if req.get("width"):
                os.environ["COLUMNS"] = str(int(req["width"]))
            sys.stdout, sys.stderr = out, err
            code = self.run_cli(argv)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # the client gets the failure; this process serves on
            import traceback

            traceback.print_exception(e, file=err)
            code = 1
        finally:
            sys.stdout, sys.stderr = saved_out, saved_err
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
        self.served += 1
        return {"code": int(code or 0), "stdout": out.getvalue(), "stderr": err.getvalue(),
                "cpu_s": round(time.process_time() - cpu0, 6), "wall_s": round(time.perf_counter() - wall0, 6)}

    def _asked_to_stop(self) -> bool:
        try:
            return json.loads(self.state.read_text(encoding="utf-8")).get("pid") != os.getpid()
        except (OSError, ValueError):
            return True

    def serve(self) -> None:
        self.sock.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private_dir_ok(self.sock.parent):
            raise SystemExit(f"sleuth daemon: {self.sock.parent} is not owner-only (0700); not serving")
        self.sock.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(self.sock))
        os.chmod(self.sock, 0o600)
        listener.listen(16)
        listener.settimeout(0.5)
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_stop", True))
        self._write_state()
        last = time.monotonic()
        try:
            while not self._stop:
                try:
                    conn, _ = listener.accept()
                except TimeoutError:
                    if self._asked_to_stop() or (self.idle_s and time.monotonic() - last > self.idle_s):
                        break
                    continue
                with conn:
                    conn.settimeout(30.0)
                    try:
                        uid = _peer_uid(conn)
                        if uid is not None and uid != os.getuid():
                            continue
                        reply = self.handle(_recv_all(conn, MAX_REQUEST))
                        conn.settimeout(None)
                        conn.sendall(json.dumps(reply).encode())
                    except (OSError, ValueError):
                        continue  # the client went away or sent too much: nothing to answer
                last = time.monotonic()
        finally:
            listener.close()
            self.sock.unlink(missing_ok=True)
            if not self._asked_to_stop():
                self.state.unlink(missing_ok=True)

    def _write_state(self) -> None:
        self.state.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state.with_name(f".{self.state.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "socket": str(self.sock), "stamp": self.stamp,
                                   "started": time.time(), "idle_s": self.idle_s}), encoding="utf-8")
        os.replace(tmp, self.state)


# ---------------------------------------------------------------------------------------------------- control


def status(home: Path | None = None) -> dict[str, Any]:
    """Whether a resident process serves ``home``: ``running``, ``pid``, ``socket``, ``current`` (runs this code),
    ``answering`` (its socket accepts), ``log``."""
    from sleuth.fsutil import pid_alive

    home = home or sleuth_home()
    out: dict[str, Any] = {"running": False, "socket": str(socket_path(home)), "log": str(home / "daemon.log")}
    try:
        st = json.loads(state_path(home).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    pid = int(st.get("pid") or 0)
    if not pid_alive(pid, zombie_alive=False):
        return out
    out.update(running=True, pid=pid, started=st.get("started"), idle_s=st.get("idle_s"),
               current=st.get("stamp") == code_stamp(), answering=_answers(socket_path(home)))
    return out


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(CONNECT_TIMEOUT_S)
            s.connect(str(path))
        return True
    except OSError:
        return False


def start(idle_s: float = DEFAULT_IDLE_S, home: Path | None = None, timeout_s: float = 60.0) -> dict[str, Any]:
    """Start a resident process for ``home`` (detached) unless a current one answers; its :func:`status`."""
    import subprocess

    from sleuth.errors import DaemonError

    home = home or sleuth_home()
    st = status(home)
    if st["running"] and st["current"] and st["answering"]:
        return st
    if st["running"]:
        stop(home)
    home.mkdir(parents=True, exist_ok=True)
    log_file = home / "daemon.log"
    with open(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab") as log:
        start_at = log.tell()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sleuth.cli.resident", "--idle", str(idle_s)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, close_fds=True,
            env={**os.environ, "SLEUTH_HOME": str(home)},
            start_new_session=True,  # detached: a Ctrl-C in the terminal that started it does not stop it
        )  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_file.read_bytes()[start_at:].decode("utf-8", "replace").strip().splitlines()[-3:]
            raise DaemonError(f"the resident process exited with code {proc.returncode}: {' '.join(tail)}")
        st = status(home)
        if st.get("pid") == proc.pid and st["answering"]:
            return st
        time.sleep(0.05)
    proc.terminate()
    raise DaemonError(f"the resident process did not answer within {timeout_s:g} s", log=str(log_file))


def stop(home: Path | None = None, timeout_s: float = 10.0) -> bool:
    """Ask the resident process of ``home`` to exit (its state file removed, then SIGTERM); whether one ran."""
    from sleuth.fsutil import pid_alive

    home = home or sleuth_home()
    st = status(home)
    state_path(home).unlink(missing_ok=True)
    if not st["running"]:
        return False
    with contextlib.suppress(OSError):
        os.kill(int(st["pid"]), signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and pid_alive(int(st["pid"]), zombie_alive=False):
        time.sleep(0.05)
    return True


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m sleuth.cli.resident")
    ap.add_argument("--idle", type=float, default=DEFAULT_IDLE_S, help="exit after this many idle seconds (0: never)")
    args = ap.parse_args(argv)
    for var, value in ONE_SHOT_ENV.items():
        os.environ.setdefault(var, value)
    import typer

    from sleuth.cli.main import app, register_all

    register_all()
    command = typer.main.get_command(app)  # built once: typer rebuilds it on every app() call

    def run_cli(cli_argv: list[str]) -> int:
        return int(command.main(args=cli_argv, prog_name="sleuth", standalone_mode=False) or 0)

    home = sleuth_home()
    Resident(socket_path(home), state_path(home), args.idle, run_cli).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
