"""A stand-in for ``python -m sleuth.llm.serve`` without llama.cpp, for lifecycle tests of the real
:class:`sleuth.llm.local.LocalServer` and :class:`sleuth.llm.client.LLM`: same flags, same state file (written by
sleuth's own ``_write_state``, with a fresh token), the same rule as the configured llama.cpp server (every path
but ``/health`` answers 401 without ``Authorization: Bearer <token>``), and the same exit conditions (state file
removed or taken over, SIGTERM). Chat completions answer ``"pong from <pid>"``.

Run as ``python tests/unit/fake_llama_serve.py --model X --state FILE ...``."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sleuth.llm.serve import _read_state, _write_state, new_token


def main() -> int:
    ap = argparse.ArgumentParser()
    for flag in ("--model", "--state", "--alias", "--n-ctx", "--threads", "--linger"):
        ap.add_argument(flag)
    ap.add_argument("--persistent", action="store_true")
    args = ap.parse_args()
    token = new_token()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a: Any) -> None:
            return None

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {token}":
                return True
            self._send(401, {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}})
            return False

        def do_GET(self) -> None:
            if self.path == "/health":
                self._send(200, {"status": "ok"})
            elif self._authorized():
                self._send(200, {"object": "list", "data": [{"id": args.alias, "object": "model"}]})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if not self._authorized():
                return
            if self.path.endswith("/tokenize"):
                self._send(200, {"tokens": [1, 2]})
                return
            self._send(200, {
                "id": "x", "object": "chat.completion", "created": int(time.time()), "model": args.alias,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"pong from {os.getpid()}"}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
            })

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    state_path = Path(args.state)
    _write_state(state_path, {"pid": os.getpid(), "port": httpd.server_address[1], "url": url,
                              "api_base": url + "/v1", "model_path": args.model, "alias": args.alias,
                              "persistent": args.persistent, "token": token, "started": time.time()})
    try:
        while not stop.wait(0.2):
            current = _read_state(state_path)
            if current is None or current.get("pid") != os.getpid():
                break
    finally:
        current = _read_state(state_path)
        if current is not None and current.get("pid") == os.getpid():
            state_path.unlink(missing_ok=True)
        httpd.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
