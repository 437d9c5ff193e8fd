"""The embedded local model: a llama.cpp server (xllamacpp) on 127.0.0.1, shared by every sleuth process.

Lifecycle
* One server per GGUF file. Its files live in ``$SLEUTH_HOME/server/``: ``<key>.json`` (pid, port, url; written
  by the server once the model is loaded), ``<key>.lock`` (held while starting one), ``<key>.log`` (llama.cpp's
  output) and ``<key>.clients/<pid>`` (one lease per sleuth process using it).
* :meth:`LocalServer.ensure` reuses a healthy server or starts ``python -m sleuth.llm.serve`` detached, on a free
  port, and waits for readiness with a timeout (a server that dies while loading raises with its log's tail).
* A process that uses the server takes a lease; leases are dropped at exit (and a dead pid's lease counts as
  dropped), and a server started on demand exits a few seconds after its last client: no orphans.
  ``sleuth model serve`` starts a persistent one instead, stopped by ``sleuth model stop``.
* A crashed server (pid gone or not answering) is detected by the client, which restarts it once per call and
  says so in the call's trace (a ``note`` event ``local_server``), as it does when it finds a dead server's state.
* Only its owner can use it: each start gets a random token (the state file, owner-only, holds it; the folder is
  0700) that llama.cpp requires as the API key; CORS is off. :meth:`LocalServer.connect` gives clients the
  api_base and the token. See :mod:`sleuth.llm.serve` and docs/SECURITY.md ("Local servers' access rules").
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sleuth.config import sleuth_home
from sleuth.errors import ModelConnectionError, WeightsError
from sleuth.llm.serve import live_leases, pid_alive
from sleuth.llm.weights import DEFAULT_WEIGHTS, KNOWN_WEIGHTS, ensure_weights, verify_gguf
from sleuth.progress import status

ALIAS = "local"
DEFAULT_N_CTX = 4096

Note = Callable[[str, dict[str, Any]], None]
"""Told what the server handle did that a run's trace should show: ``note(message, data)``."""


def default_threads() -> int:
    """``$SLEUTH_THREADS``, else as many threads as the machine has cores (at least 1, at most 4).

    Measured on a quiet 2-core machine (docs/results/models.md): 2 threads gave 130 prompt / 21 generated tok/s
    against 68 / 11 for 1 thread, and with one core busy with other work 2 threads were still no slower (69-71 /
    6-21 against 68 / 11). Only under heavy oversubscription (load average 10+, shared machine) did 2 threads
    collapse (threads wait on each other at every barrier); set ``SLEUTH_THREADS=1`` there."""
    env = os.environ.get("SLEUTH_THREADS")
    if env:
        return max(1, int(env))
    return max(1, min(4, os.cpu_count() or 2))


def resolve_local_model(spec: str) -> tuple[Path, str]:
    """Map a model spec to a verified GGUF file and a server key.

    ``local`` -> the packaged default (Qwen2.5-Coder-0.5B); ``local:<name>`` -> another packaged model;
    ``gguf:/path/file.gguf`` -> any local GGUF file (checked for the GGUF magic, not for a digest).
    """
    if spec == "local":
        return ensure_weights(DEFAULT_WEIGHTS), "local"
    if spec.startswith("local:"):
        name = spec.split(":", 1)[1]
        if name not in KNOWN_WEIGHTS:
            raise WeightsError(f"unknown packaged model {name!r}", hint=f"use one of {sorted(KNOWN_WEIGHTS)}")
        return ensure_weights(name), server_key(spec)
    if spec.startswith("gguf:"):
        return verify_gguf(spec.split(":", 1)[1]).resolve(), server_key(spec)
    raise WeightsError(f"not a local model spec: {spec!r}", hint="use local, local:<name> or gguf:/path/file.gguf")


def server_key(spec: str) -> str:
    """The server key of a model spec, without assembling or checking weights (for status/stop)."""
    if spec == "local" or spec == f"local:{DEFAULT_WEIGHTS}":
        return "local"
    if spec.startswith("local:"):
        return spec.split(":", 1)[1]
    if spec.startswith("gguf:"):
        path = Path(spec.split(":", 1)[1]).expanduser().resolve()
        return "gguf-" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    raise WeightsError(f"not a local model spec: {spec!r}", hint="use local, local:<name> or gguf:/path/file.gguf")


def _http_ok(url: str, token: str | None = None, timeout: float = 2.0) -> bool:
    """Does the server at ``url`` answer? With its token, an authenticated request (``/v1/models``), which also
    proves it is the server the state file describes and not another process on a reused port."""
    if token:
        req = urllib.request.Request(url + "/v1/models", headers={"Authorization": f"Bearer {token}"})
    else:
        req = urllib.request.Request(url + "/health")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _state_ok(state: dict[str, Any]) -> bool:
    return _http_ok(state["url"], state.get("token"))


@dataclass
class ServerStatus:
    running: bool
    healthy: bool
    pid: int | None = None
    url: str | None = None
    api_base: str | None = None
    model_path: str | None = None
    persistent: bool = False
    token_required: bool = False  # the server refuses requests without its token (the token itself is not here)
    clients: int = 0
    state_file: str = ""
    log_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class LocalServer:
    """Handle on the shared llama.cpp server for one GGUF file (see the module docstring)."""

    def __init__(
        self,
        model_path: str | Path,
        *,
        key: str = "local",
        n_ctx: int | None = None,
        threads: int | None = None,
        home: Path | None = None,
        ready_timeout_s: float = 180.0,
        linger_s: float | None = None,
        serve_cmd: list[str] | None = None,
    ) -> None:
        self.model_path = Path(model_path)
        self.key = key
        self.n_ctx = n_ctx or int(os.environ.get("SLEUTH_N_CTX", DEFAULT_N_CTX))
        self.threads = threads or default_threads()
        self.ready_timeout_s = ready_timeout_s
        self.linger_s = linger_s if linger_s is not None else float(os.environ.get("SLEUTH_SERVER_LINGER", "5"))
        self.dir = (home or sleuth_home()) / "server"
        self.state_file = self.dir / f"{key}.json"
        self.lock_file = self.dir / f"{key}.lock"
        self.log_file = self.dir / f"{key}.log"
        self.lease_dir = self.dir / f"{key}.clients"
        # the server program (default ``python -m sleuth.llm.serve``); tests pass another one with the same flags
        self.serve_cmd = list(serve_cmd) if serve_cmd else [sys.executable, "-m", "sleuth.llm.serve"]
        self.restarts = 0
        self._leased = False

    @classmethod
    def for_spec(cls, spec: str = "local", **kwargs: Any) -> LocalServer:
        path, key = resolve_local_model(spec)
        return cls(path, key=key, **kwargs)

    @classmethod
    def handle(cls, spec: str = "local", **kwargs: Any) -> LocalServer:
        """A handle for status/stop only: no weights are assembled or checked (it cannot start a server)."""
        return cls(Path("/nonexistent"), key=server_key(spec), **kwargs)

    # -- state ----------------------------------------------------------------------------------------------
    def read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def status(self) -> ServerStatus:
        state = self.read_state()
        base: dict[str, Any] = {"state_file": str(self.state_file), "log_file": str(self.log_file)}
        if not state:
            return ServerStatus(running=False, healthy=False, **base)
        alive = pid_alive(int(state.get("pid", 0)))
        return ServerStatus(
            running=alive,
            healthy=alive and _state_ok(state),
            pid=state.get("pid"),
            url=state.get("url"),
            api_base=state.get("api_base"),
            model_path=state.get("model_path"),
            persistent=bool(state.get("persistent")),
            token_required=bool(state.get("token")),
            clients=len(live_leases(self.lease_dir)),
            **base,
        )

    @property
    def api_base(self) -> str:
        state = self.read_state()
        if not state:
            raise ModelConnectionError("the local model server is not running")
        return str(state["api_base"])

    @property
    def token(self) -> str | None:
        """The running server's token (None when none runs, or for a server started by an older sleuth)."""
        state = self.read_state()
        return str(state["token"]) if state and state.get("token") else None

    def connect(self, *, note: Note | None = None) -> tuple[str, str | None]:
        """:meth:`ensure` a healthy server, then its api_base and token, read together from one state file."""
        self.ensure(note=note)
        state = self.read_state()
        if not state:
            raise ModelConnectionError("the local model server stopped right after it started",
                                       hint=f"see {self.log_file}")
        return str(state["api_base"]), (str(state["token"]) if state.get("token") else None)

    # -- lifecycle ------------------------------------------------------------------------------------------
    def _private_dir(self) -> None:
        """The server folder, owner-only (it holds the state files with the tokens, and the logs)."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            if self.dir.stat().st_uid == os.getuid():
                self.dir.chmod(0o700)
        except OSError:
            pass

    @contextmanager
    def _locked(self) -> Any:
        self._private_dir()
        with self.lock_file.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def lease(self) -> None:
        """Mark this process as a user of the server (dropped at exit; a dead pid's lease is ignored)."""
        if self._leased:
            return
        self.lease_dir.mkdir(parents=True, exist_ok=True)
        (self.lease_dir / str(os.getpid())).touch()
        self._leased = True
        atexit.register(self.release)

    def release(self) -> None:
        (self.lease_dir / str(os.getpid())).unlink(missing_ok=True)
        self._leased = False

    def ensure(self, *, persistent: bool = False, lease: bool = True, note: Note | None = None) -> str:
        """Return the api_base of a healthy server, starting one if needed (``note`` hears of a dead server
        replaced)."""
        if lease:
            self.lease()  # before starting, so an on-demand server never sees zero clients
        st = self.status()
        if st.healthy and st.api_base:
            return st.api_base
        with self._locked():
            st = self.status()  # another process may have started it while we waited for the lock
            if st.healthy and st.api_base:
                return st.api_base
            reason = None
            if st.running and st.pid:  # alive but not answering: hung or still loading under someone else
                if self._wait_healthy(st.pid, timeout=min(30.0, self.ready_timeout_s)):
                    return self.api_base
                self._kill(st.pid)
                reason = "was not answering"
            elif st.pid:
                reason = "had died"  # a state file without a live process: a crash
            self.state_file.unlink(missing_ok=True)
            with status(f"starting the local model server ({self.model_path.name})"):
                api_base = self._spawn(persistent=persistent)
            if reason and note is not None:
                new = self._pid()
                note(f"the local model server (pid {st.pid}) {reason}; started a new one (pid {new}) at {api_base}",
                     {"old_pid": st.pid, "new_pid": new, "reason": reason, "api_base": api_base, "key": self.key})
            return api_base

    def restart(self, *, note: Note | None = None, reason: str = "") -> str:
        """Kill a crashed/hung server and start a new one (the client calls this once per failing call);
        ``note`` hears what was done."""
        self.restarts += 1
        with self._locked():
            st = self.status()
            if st.healthy and st.api_base:  # someone else already restarted it
                if note is not None:
                    note(f"the local model server failed ({reason or 'no answer'}); another process had already "
                         f"restarted it (pid {st.pid})", {"new_pid": st.pid, "reason": reason, "by_other": True,
                                                         "api_base": st.api_base, "key": self.key})
                return st.api_base
            if st.pid:
                self._kill(st.pid)
            self.state_file.unlink(missing_ok=True)
            with status(f"restarting the local model server ({self.model_path.name})"):
                api_base = self._spawn(persistent=st.persistent)
            if note is not None:
                dead = "had died" if not st.running else "was not answering"
                new = self._pid()
                note(f"the local model server (pid {st.pid}) {dead} ({reason or 'no answer'}); restarted it (pid "
                     f"{new}) at {api_base}", {"old_pid": st.pid, "new_pid": new, "reason": reason,
                                               "api_base": api_base, "key": self.key})
            return api_base

    def _pid(self) -> int | None:
        state = self.read_state()
        return int(state["pid"]) if state and state.get("pid") else None

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the server (any process's). Returns whether one was running."""
        state = self.read_state()
        if not state:
            return False
        pid = int(state.get("pid", 0))
        self.state_file.unlink(missing_ok=True)  # the server watches its state file and exits
        if pid_alive(pid):
            self._kill(pid, timeout=timeout)
            return True
        return False

    def _kill(self, pid: int, timeout: float = 10.0) -> None:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not pid_alive(pid):
                return
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def _wait_healthy(self, pid: int, timeout: float) -> bool:
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.read_state()
            if state and state.get("pid") == pid and _state_ok(state):
                return True
            if not pid_alive(pid):
                return False
            time.sleep(0.2)
        return False

    def _spawn(self, *, persistent: bool) -> str:
        cmd = [
            *self.serve_cmd,
            "--model", str(self.model_path),
            "--state", str(self.state_file),
            "--alias", ALIAS,
            "--n-ctx", str(self.n_ctx),
            "--threads", str(self.threads),
            "--linger", str(self.linger_s),
        ]  # fmt: skip
        if persistent:
            cmd.append("--persistent")
        self._private_dir()
        log = os.fdopen(os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        log_start = log.tell()
        try:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # detached: a Ctrl-C in one client's terminal does not kill it
                close_fds=True,
            )
        finally:
            log.close()
        deadline = time.time() + self.ready_timeout_s
        while time.time() < deadline:
            state = self.read_state()
            if state and state.get("pid") == proc.pid and _state_ok(state):
                return str(state["api_base"])
            code = proc.poll()
            if code is not None:
                errors = self._log_errors(log_start)
                if any(p in e for e in errors for p in ("file bounds", "failed to load model", "gguf_init")):
                    raise WeightsError(
                        f"llama.cpp could not load {self.model_path}: {' | '.join(errors[:3])}",
                        hint="the GGUF file is truncated or corrupt: replace it with a complete copy",
                    )
                raise ModelConnectionError(
                    f"the local model server exited while starting (code {code}): {self.log_tail()}",
                    hint=f"see {self.log_file}",
                )
            time.sleep(0.2)
        self._kill(proc.pid)
        raise ModelConnectionError(
            f"the local model server was not ready after {self.ready_timeout_s:.0f} s",
            hint=f"the machine may be overloaded; see {self.log_file}",
        )

    def _log_errors(self, start: int) -> list[str]:
        """llama.cpp's error lines (`` E ``) written to the log since byte ``start``."""
        try:
            with self.log_file.open("rb") as fh:
                fh.seek(start)
                text = fh.read().decode("utf-8", errors="replace")
        except OSError:
            return []
        return [line.split(" E ", 1)[1].strip() for line in text.splitlines() if " E " in line]

    def log_tail(self, n: int = 5) -> str:
        try:
            lines = self.log_file.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in lines[-n:])
