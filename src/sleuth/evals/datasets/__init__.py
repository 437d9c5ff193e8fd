"""Evaluation data loaders, one module per dataset family. They return :class:`EvalSet`."""

from __future__ import annotations

from sleuth.evals.datasets.base import BadRecord, EvalQuestion, EvalSet, Paragraph, ToolSpec
from sleuth.evals.datasets.beir import load_beir
from sleuth.evals.datasets.browsecomp_plus import load_browsecomp_plus
from sleuth.evals.datasets.hotpotqa import load_hotpotqa
from sleuth.evals.datasets.tools import load_tools

__all__ = [
    "BadRecord",
    "EvalQuestion",
    "EvalSet",
    "Paragraph",
    "ToolSpec",
    "load_beir",
    "load_browsecomp_plus",
    "load_hotpotqa",
    "load_tools",
]
