"""pytest plugin for `make test` (scripts/test.sh): a header line when the suite moves to another part
(tests/unit, tests/integration, tests/model, ...) with how many tests it holds, so a long quiet stretch of dots
says which part is running. Load it with ``-p pytest_parts`` (scripts/ on the path)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import pytest


def _part(nodeid: str) -> str:
    parts = nodeid.split("::", 1)[0].split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


class Parts:
    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.counts: Counter[str] = Counter()
        self.current: str | None = None
        self.t0 = time.monotonic()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.counts = Counter(_part(i.nodeid) for i in items)

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        part = _part(nodeid)
        if part == self.current:
            return
        self.current = part
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is None:
            return
        tr.ensure_newline()
        elapsed = time.monotonic() - self.t0
        tr.write_line(f"== {part} ({self.counts[part]} tests; {elapsed:.0f} s into the run) ==", bold=True)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(Parts(config), "sleuth-parts")
