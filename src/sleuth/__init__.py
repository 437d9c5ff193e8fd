"""sleuth: an agentic search toolkit for LLM agents.

The public surface is imported lazily, so that ``import sleuth`` (and ``sleuth grep``) stays instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what a type checker sees; at run time ``__getattr__`` imports each name on first use
    from sleuth.agents import Agent as Agent, ask as ask
    from sleuth.corpus import Corpus as Corpus
    from sleuth.errors import SleuthError as SleuthError
    from sleuth.records import Document as Document, Hit as Hit, TraceEvent as TraceEvent, Usage as Usage
    from sleuth.tools import corpus_tools as corpus_tools
    from sleuth.tools.base import Tool as Tool, Toolkit as Toolkit

__version__ = "0.1.0"

_EXPORTS = {
    "Agent": "sleuth.agents",
    "ask": "sleuth.agents",
    "Corpus": "sleuth.corpus",
    "Document": "sleuth.records",
    "Hit": "sleuth.records",
    "Usage": "sleuth.records",
    "TraceEvent": "sleuth.records",
    "SleuthError": "sleuth.errors",
    "Tool": "sleuth.tools.base",
    "Toolkit": "sleuth.tools.base",
    "corpus_tools": "sleuth.tools",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sleuth' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
