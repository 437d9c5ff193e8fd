"""Opt-in on-disk cache of model responses, keyed by the full request (meant for evals and benchmarks)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

from sleuth.llm.base import ChatResult


class ResponseCache:
    """On-disk cache of ChatResults keyed by the SHA-256 of the full request (opt-in; meant for evals)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> ChatResult | None:
        p = self._path(key)
        try:
            return ChatResult.model_validate_json(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, result: ChatResult) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(result.model_dump_json(), encoding="utf-8")
        os.replace(tmp, p)
