"""Kept for imports: tool retrieval lives in :mod:`sleuth.retrieval.tools` (spec, rankers, catalog, evaluate)."""

from sleuth.retrieval.tools import (
    METHODS,
    Method,
    ToolCatalog,
    ToolCatalogError,
    ToolSpec,
    evaluate_tool_retrieval,
    parse_generated_queries,
    spec_from_callable,
    split_name,
)
from sleuth.retrieval.tools.spec import _check_parameters, _doc_parts, spec_from_function as _spec_from_function

__all__ = [
    "METHODS",
    "Method",
    "ToolCatalog",
    "ToolCatalogError",
    "ToolSpec",
    "_check_parameters",
    "_doc_parts",
    "_spec_from_function",
    "evaluate_tool_retrieval",
    "parse_generated_queries",
    "spec_from_callable",
    "split_name",
]
