"""ICR in the reference's form (documents reversed, attending rows after the separator, QA or IE instruction) on
the real embedded weights: three hand-written passages, one obviously relevant."""

from __future__ import annotations

import pytest

from sleuth.errors import WeightsError
from sleuth.records import Hit
from sleuth.rerank import get_reranker
from sleuth.tracing.tracer import MemoryTracer

pytestmark = [pytest.mark.model, pytest.mark.attention]

PASSAGES = [
    Hit(doc_id="weather", text="Light rain is expected on Tuesday, with temperatures around twelve degrees."),
    Hit(doc_id="insulin", text="Insulin is a hormone made by the pancreas that lets cells take up glucose from blood."),
    Hit(doc_id="chess", text="In chess, castling moves the king two squares towards a rook, which jumps over it."),
]


@pytest.mark.parametrize("instruction", ["qa", "ie"])
def test_icr_reference_form_ranks_the_obvious_passage_first(instruction: str) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    try:
        r = get_reranker("icr", instruction=instruction).load()
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    tracer = MemoryTracer()
    res = r.run("Which organ produces insulin?", PASSAGES, tracer=tracer)
    assert res.hits[0].doc_id == "insulin", [(h.doc_id, h.score) for h in res.hits]
    assert res.hits[0].score > res.hits[1].score
    assert res.stats["instruction"] == instruction
    assert res.stats["reverse_order"] is True and res.stats["separator_in_rows"] is False
