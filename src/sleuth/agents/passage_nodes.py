"""The nodes of the retrieve-then-answer strategies (sira, iter-retgen): retrieval, draft generation, and the
answer from the last retrieval's passages. Same contract as :mod:`sleuth.agents.nodes` (wrapped by its
:func:`~sleuth.agents.nodes.node`)."""

from __future__ import annotations

import time
from typing import Any

from sleuth.agents.context import passages_text
from sleuth.agents.nodes import (
    NodeContext,
    _exhausted,
    _fallback_answer,
    _merge_seen,
    _prompt_parts,
)
from sleuth.agents.state import AgentState
from sleuth.errors import ModelOutputError
from sleuth.records import Hit, TraceEvent
from sleuth.tools.answer import AnswerArgs
from sleuth.tracing.tracer import ForwardingTracer


def _retrieve(state: AgentState, cx: NodeContext, key: str, query: str) -> dict[str, Any]:
    retriever = cx.config.retrievers[key]
    t0 = time.perf_counter()
    # the node's tracer for this call: a model-based retriever's calls (SIRA's) join this run's trace and usage
    span = ForwardingTracer(cx.tracer, span=True)  # the retrieval step's span: SIRA's model call nests under it
    hits: list[Hit] = retriever.search(query, cx.config.k, tracer=span)
    corpus = cx.config.corpus
    passages: list[dict[str, Any]] = []
    for h in hits[: cx.config.k]:
        text = h.text
        if not text and corpus is not None:
            text = corpus.read_text(h.doc_id)
        passages.append({"doc_id": h.doc_id, "score": h.score, "text": text[: cx.config.context.max_passage_chars * 2]})
    span.emit(span.own(TraceEvent(
        kind="retrieval",
        name=retriever.name or key,
        args={"query": query[:500], "k": cx.config.k},
        result_chars=sum(len(p["text"]) for p in passages),
        preview=", ".join(p["doc_id"] for p in passages)[:300],
        latency_s=time.perf_counter() - t0,
        data={"hits": [{"doc_id": p["doc_id"], "score": p["score"]} for p in passages]},
    )))
    return {
        "passages": passages,
        "docs_seen": _merge_seen(state.get("docs_seen") or [], [p["doc_id"] for p in passages]),
    }


def sira_search(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """SIRA: one corpus-discriminative search call with the question (the retriever expands it)."""
    return _retrieve(state, cx, cx.config.sira_retriever, state["question"])


def retrieve(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Iter-RetGen retrieval: the question, then the question plus the previous generation."""
    gens = state.get("generations") or []
    query = state["question"] if not gens else f"{state['question']} {gens[-1]}"
    update = _retrieve(state, cx, cx.config.iter_retgen_retriever, query)
    update["iteration"] = state.get("iteration", 0) + 1
    update["last_retrieval"] = update["iteration"] >= cx.config.iter_retgen_steps
    return update


def generate(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Iter-RetGen generation: a short draft answer from the passages; it joins the next query."""
    exhausted = _exhausted(state, cx)
    if exhausted:
        return {"exhausted": exhausted}
    passages = passages_text(state.get("passages") or [], cx.config.context.max_passage_chars)
    system, user = _prompt_parts("agent_iter_retgen", passages=passages, question=state["question"])
    result = cx.model.chat(
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=cx.config.context.max_step_tokens // 2,
        tracer=cx.tracer,
        name="generate",
    )
    draft = " ".join(result.content.split())
    return {"generations": [*(state.get("generations") or []), draft], "steps": state.get("steps", 0) + 1}


def answer_from_passages(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The final answer of sira and iter-retgen: answer + doc ids from the last retrieval."""
    passages = state.get("passages") or []
    exhausted = state.get("exhausted") or _exhausted(state, cx)
    update: dict[str, Any] = {"stop_reason": f"budget:{exhausted}" if exhausted else "answered"}
    if exhausted:
        update["exhausted"] = exhausted
        if not cx.config.budget.final_answer_call:
            update.update(_fallback_answer(state, exhausted))
            update["doc_ids"] = [p["doc_id"] for p in passages[:2]]
            return update
    gens = state.get("generations") or []
    # iter-retgen: the last draft (written from the previous retrieval); a small model extracts a short answer from it
    # far more reliably than from the raw passages (it tends to answer with a document's title instead)
    notes = f"\nNotes from an earlier step (a draft answer): {gens[-1]}\n" if gens else ""
    system, user = _prompt_parts(
        "agent_answer",
        passages=passages_text(passages, cx.config.context.max_passage_chars),
        notes=notes,
        question=state["question"],
    )
    try:
        value, _ = cx.model.structured(
            [{"role": "system", "content": system}, {"role": "user", "content": user}],
            AnswerArgs,
            retries=1,
            max_tokens=cx.config.context.max_answer_tokens,
            tracer=cx.tracer,
            name="answer",
        )
    except ModelOutputError as e:
        cx.tracer.record("error", "answer", error=e.message[:500])
        update.update(_fallback_answer(state, exhausted or "answer"))
        update.update(stop_reason="model_output_error", doc_ids=[p["doc_id"] for p in passages[:2]])
        return update
    ids = [p["doc_id"] for p in passages]
    cited = [d for d in dict.fromkeys(value.doc_ids) if d in ids]  # only documents the model was shown
    if not cited and ids:
        cited = ids[:2]
        cx.tracer.record("note", "doc_ids", data={"defaulted_to_top": cited, "model_cited": value.doc_ids})
    update.update(answer=value.answer.strip(), doc_ids=cited, answered_by="forced" if exhausted else "model")
    return update
