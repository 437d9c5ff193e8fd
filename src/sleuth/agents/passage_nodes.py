"""The nodes of the retrieve-then-answer strategies (sira, iter-retgen): retrieval, generation, and the answer:
the T-th generation (iter-retgen in the paper's form) or one answer call over the last retrieval's passages (sira,
iter-retgen's ``separate-call`` form). Same contract as :mod:`sleuth.agents.nodes` (wrapped by its
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
    _parrots,
    _prompt_parts,
    cited_update,
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


def _iter_retgen_mode(state: AgentState, cx: NodeContext) -> tuple[str, int]:
    """The run's iter-retgen form and T: from the state once the first retrieval has set them (so a resumed run
    keeps the form it started with), else from the config."""
    return (
        state.get("iter_retgen_answer") or cx.config.iter_retgen_answer,
        state.get("iter_retgen_steps") or cx.config.iter_retgen_steps,
    )


def retrieve(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Iter-RetGen retrieval: the question, then the question plus the previous generation (FlashRAG's
    ``f"{q} {r}"``); an empty previous generation leaves the question alone."""
    mode, steps = _iter_retgen_mode(state, cx)
    gens = state.get("generations") or []
    query = state["question"] if not gens else f"{state['question']} {gens[-1]}".strip()
    update = _retrieve(state, cx, cx.config.iter_retgen_retriever, query)
    update["iteration"] = state.get("iteration", 0) + 1
    if "iter_retgen_answer" not in state:
        update.update(iter_retgen_answer=mode, iter_retgen_steps=steps)
        cx.tracer.record(
            "note",
            "iter_retgen",
            data={"answer": mode, "T": steps, "k": cx.config.k, "max_tokens": _generation_tokens(cx, mode)},
        )
    # separate-call: T retrievals, then the answer call; last-generation: every retrieval is followed by a generation
    update["last_retrieval"] = mode == "separate-call" and update["iteration"] >= steps
    return update


def _generation_tokens(cx: NodeContext, mode: str) -> int:
    return cx.config.iter_retgen_max_tokens if mode == "last-generation" else cx.config.context.max_step_tokens // 2


def flashrag_reference(passages: list[dict[str, Any]], max_chars: int) -> str:
    """The passages as FlashRAG's ``PromptTemplate.format_reference`` writes them: ``Doc {i}(Title: {title})
    {text}\n`` per passage, the title being the passage's first line (a Markdown heading's ``#`` marks dropped) and
    the text the rest (whitespace at its ends stripped, cut to ``max_chars`` characters on a word boundary)."""
    out = []
    for i, p in enumerate(passages):
        content = str(p.get("text") or "").strip()
        title, _, text = content.partition("\n")
        text = text.strip()
        if len(text) > max_chars:
            cut = text.rfind(" ", int(max_chars * 0.8), max_chars)
            text = text[: cut if cut > 0 else max_chars]
        out.append(f"Doc {i + 1}(Title: {title.lstrip('#').strip()}) {text}\n")
    return "".join(out)


def generate(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """Iter-RetGen generation from the last retrieval's passages; its text joins the next query. In the paper's
    form (FlashRAG's prompt, 32 tokens, greedy) the T-th generation is the answer; in the separate-call form it is
    a one- or two-sentence draft."""
    exhausted = _exhausted(state, cx)
    if exhausted:
        return {"exhausted": exhausted}
    mode, steps = _iter_retgen_mode(state, cx)
    passages = state.get("passages") or []
    max_chars = cx.config.context.max_passage_chars
    if mode == "last-generation":
        reference = flashrag_reference(passages, max_chars)
        system, user = _prompt_parts("agent_iter_retgen_paper", reference=reference, question=state["question"])
    else:
        text = passages_text(passages, max_chars)
        system, user = _prompt_parts("agent_iter_retgen_draft", passages=text, question=state["question"])
    result = cx.model.chat(
        [{"role": "system", "content": system}, {"role": "user", "content": user}],
        max_tokens=_generation_tokens(cx, mode),
        tracer=cx.tracer,
        name="generate",
    )
    draft = " ".join((result.content or "").split())
    gens = [*(state.get("generations") or []), draft]
    if not draft:
        cx.tracer.record("note", "empty_generation", data={"iteration": len(gens), "T": steps})
    update: dict[str, Any] = {"generations": gens, "steps": state.get("steps", 0) + 1}
    update["final_generation"] = mode == "last-generation" and len(gens) >= steps
    return update


def answer_from_generation(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The paper's iter-retgen answer: the T-th generation, as it is (whitespace collapsed; the HotpotQA/FlashRAG
    normalization does the rest when scored). The model cites nothing in this form: ``doc_ids`` is empty and the
    passages it read are in ``docs_seen``. An empty generation, or one that repeats the prompt, is no answer."""
    gens = state.get("generations") or []
    exhausted = state.get("exhausted")
    _, steps = _iter_retgen_mode(state, cx)
    update: dict[str, Any] = {"stop_reason": f"budget:{exhausted}" if exhausted else "answered", "doc_ids": []}
    last = gens[-1] if gens else ""
    if not gens:
        update.update(_fallback_answer(state, exhausted or "answer"))
        return update
    if not last:
        detail = f"generation {len(gens)} of {steps} was empty"
        update.update(_fallback_answer(state, "empty_generation", detail))
        if not exhausted:
            update["stop_reason"] = "no_answer"
        return update
    system, _ = _prompt_parts("agent_iter_retgen_paper", reference="", question="")
    if _parrots(last, system):
        update.update(_fallback_answer(state, "parroted", f"generation {len(gens)} of {steps} repeated the prompt"))
        if not exhausted:
            update["stop_reason"] = "no_answer"
        return update
    if exhausted:
        cx.tracer.record("note", "iter_retgen", data={"answer_from_generation": len(gens), "T": steps})
    update.update(answer=last, answered_by="forced" if exhausted else "model")
    return update


def answer_from_passages(state: AgentState, cx: NodeContext) -> dict[str, Any]:
    """The final answer of sira and of iter-retgen's separate-call form: one JSON answer call over the last
    retrieval's passages (and, for iter-retgen, the last draft), with the doc ids the model cites."""
    passages = state.get("passages") or []
    exhausted = state.get("exhausted") or _exhausted(state, cx)
    update: dict[str, Any] = {"stop_reason": f"budget:{exhausted}" if exhausted else "answered"}
    if exhausted:
        update["exhausted"] = exhausted
        if not cx.config.budget.final_answer_call:
            update.update(_fallback_answer(state, exhausted))
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
        update.update(stop_reason="model_output_error")
        return update
    update.update(cited_update(cx, value.doc_ids, [p["doc_id"] for p in passages]))
    update.update(answer=value.answer.strip(), answered_by="forced" if exhausted else "model")
    return update
