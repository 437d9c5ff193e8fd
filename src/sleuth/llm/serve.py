"""The embedded llama.cpp server as its own process: ``python -m sleuth.llm.serve --model FILE --state FILE``.

Started (detached) by :class:`sleuth.llm.local.LocalServer`. It loads the GGUF file into xllamacpp's in-process
llama.cpp server bound to 127.0.0.1 on a free port, writes a state file (pid, port, url, model, token) once the
model is loaded, then watches:

* the state file: removed or taken over by another pid -> exit (this is how ``sleuth model stop`` asks);
* client leases (``<state>.clients/<pid>`` files, one per sleuth process using the server): when no leased
  process is alive for ``--linger`` seconds, exit. A ``--persistent`` server (``sleuth model serve``) ignores
  leases and runs until stopped.

SIGTERM/SIGINT exit cleanly. The state file is removed on exit, so a stale one always means a crash.

Only its owner can use it (docs/SECURITY.md): llama.cpp is given a random per-start API key (the
``token`` in the state file, which is written owner-only, 0600), so every endpoint but ``/health`` answers 401
without ``Authorization: Bearer <token>``; CORS is switched off (no ``Origin`` is echoed, credentials are not
allowed), the web UI and the ``/slots`` endpoint are off. The token never appears on a command line (``ps``).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sleuth import fsutil


def pid_alive(pid: int) -> bool:
    """Whether the process runs; a zombie (exited child not yet reaped) is not alive (one check: fsutil's)."""
    return fsutil.pid_alive(pid, zombie_alive=False)


def live_leases(lease_dir: Path) -> list[int]:
    """Pids holding a lease that are still alive; stale lease files are removed."""
    alive: list[int] = []
    if not lease_dir.is_dir():
        return alive
    for f in lease_dir.iterdir():
        try:
            pid = int(f.name)
        except ValueError:
            continue
        if pid_alive(pid):
            alive.append(pid)
        else:
            f.unlink(missing_ok=True)
    return alive


def _write_state(path: Path, state: dict) -> None:
    """Atomically, readable and writable by the owner only (it holds the server's token)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(json.dumps(state))
    os.replace(tmp, path)


def new_token() -> str:
    """A fresh API key for one server start (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def owner_only(p: Any, token: str) -> None:
    """Configure xllamacpp ``CommonParams`` so that only a holder of ``token`` can use the server: loopback only,
    an API key, no CORS (no reflected ``Origin``, no credentials), no web UI, no ``/slots``."""
    p.hostnames = ["127.0.0.1"]
    p.api_keys = [token]
    p.cors_origins = ""
    p.cors_origins_explicit = True  # an empty list, not llama.cpp's default "*"
    p.cors_credentials = False
    p.ui = False
    p.endpoint_slots = False


def _read_state(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sleuth.llm.serve")
    ap.add_argument("--model", required=True, help="verified GGUF file")
    ap.add_argument("--state", required=True, help="state file to write once ready")
    ap.add_argument("--alias", default="local")
    ap.add_argument("--n-ctx", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--port", type=int, default=0, help="0 = a free port")
    ap.add_argument("--persistent", action="store_true", help="ignore client leases; run until stopped")
    ap.add_argument("--linger", type=float, default=5.0, help="seconds to wait after the last client exits")
    args = ap.parse_args(argv)

    import xllamacpp  # the server process is the only place that loads llama.cpp

    state_path = Path(args.state)
    lease_dir = state_path.with_name(state_path.stem + ".clients")
    stop = threading.Event()

    def _on_signal(signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)

    p = xllamacpp.CommonParams()
    p.model.path = args.model
    p.n_ctx = args.n_ctx
    p.n_parallel = args.parallel
    p.cpuparams.n_threads = args.threads
    p.cpuparams_batch.n_threads = args.threads
    token = new_token()
    owner_only(p, token)
    p.port = args.port
    p.model_alias = {args.alias}
    p.cache_prompt = True  # reuse the KV cache of a shared prompt prefix across calls
    t0 = time.time()
    server = xllamacpp.Server(p)  # returns once the model is loaded and the socket listens
    url = server.listening_address.rstrip("/")
    port = int(url.rsplit(":", 1)[1])
    state = {
        "pid": os.getpid(),
        "port": port,
        "url": url,
        "api_base": url + "/v1",
        "model_path": args.model,
        "alias": args.alias,
        "n_ctx": args.n_ctx,
        "threads": args.threads,
        "persistent": args.persistent,
        "token": token,
        "started": time.time(),
        "load_s": round(time.time() - t0, 3),
    }
    _write_state(state_path, state)
    sys.stderr.write(f"sleuth: serving {args.model} at {url} (pid {os.getpid()})\n")
    sys.stderr.flush()

    idle_since: float | None = None
    try:
        while not stop.wait(0.5):
            current = _read_state(state_path)
            if current is None or current.get("pid") != os.getpid():
                break  # stop requested (state removed) or replaced
            if args.persistent:
                continue
            if live_leases(lease_dir):
                idle_since = None
            elif idle_since is None:
                idle_since = time.time()
            elif time.time() - idle_since >= args.linger:
                break
    finally:
        current = _read_state(state_path)
        if current is not None and current.get("pid") == os.getpid():
            state_path.unlink(missing_ok=True)
        del server  # stops llama.cpp's loop
    return 0


if __name__ == "__main__":
    sys.exit(main())
