"""Tool retrieval: pick the k tools a request needs from a large catalog (see :mod:`.catalog`).

``spec`` (tool specs and their checks), ``rankers`` (in-memory BM25 and dense retrievers over tool texts),
``catalog`` (:class:`ToolCatalog`), ``evaluate`` (:func:`evaluate_tool_retrieval`), ``usage`` (tool2vec's usage
index), ``usage_gen`` (generated usage requests).
"""

from sleuth.retrieval.tools.catalog import METHODS, Method, ToolCatalog, parse_generated_queries
from sleuth.retrieval.tools.evaluate import evaluate_tool_retrieval
from sleuth.retrieval.tools.rankers import ToolBM25, ToolDense, interleave
from sleuth.retrieval.tools.spec import ToolCatalogError, ToolSpec, spec_from_callable, spec_from_function, split_name
from sleuth.retrieval.tools.usage import UsageIndex, UsageRecord, UsageReport, read_usage_file

__all__ = [
    "METHODS",
    "Method",
    "ToolBM25",
    "ToolCatalog",
    "ToolCatalogError",
    "ToolDense",
    "ToolSpec",
    "UsageIndex",
    "UsageRecord",
    "UsageReport",
    "evaluate_tool_retrieval",
    "interleave",
    "parse_generated_queries",
    "read_usage_file",
    "spec_from_callable",
    "spec_from_function",
    "split_name",
]
