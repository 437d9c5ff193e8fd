"""llm-query tool retrieval with the real embedded model: the request is rewritten into tool-like lines."""

from __future__ import annotations

import pytest

from sleuth.retrieval.tool_catalog import ToolCatalog
from sleuth.tracing.tracer import MemoryTracer
from tests.unit.test_tool_catalog import SPECS

pytestmark = pytest.mark.model


def test_llm_query_with_local_model(local_model) -> None:
    model = local_model
    tracer = MemoryTracer()
    cat = ToolCatalog.from_openai(SPECS, model=model)
    # An unambiguous request: whatever the 0.5B model writes, the fused ranking must keep the obvious tool.
    # (How much llm-query helps is measured in docs/results/dense.md, not asserted here.)
    hits = cat.search("write an email to my sister to tell her I will be late for dinner", 3,
                      method="llm-query", llm_base="bm25", tracer=tracer)
    lines = hits[0].metadata["generated_queries"] if hits else []
    assert lines and all(len(line) < 300 for line in lines)
    assert cat.usage.calls == 1 and cat.usage.prompt_tokens > 0
    assert [e for e in tracer.events if e.kind == "llm"], "the rewrite is traced"
    assert "send_email" in [h.doc_id for h in hits]
