"""``iter_retgen``: one Iter-RetGen round as a tool of auto's explore step (retrieve with the question and a draft,
then draft again from the passages). The retrieval is the config's iter-retgen retriever; the draft is one model
call with the strategy's own draft prompt (``agent_iter_retgen_draft``), traced in the calling run (built per call, see
:class:`~sleuth.agents.runtrace.PerCallTool`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from sleuth.agents.context import passages_text
from sleuth.errors import ToolArgumentError
from sleuth.llm.base import ChatModel
from sleuth.prompts import load
from sleuth.retrieval.base import Retriever
from sleuth.tools.base import Tool, ToolArgs, ToolResult


class RoundArgs(ToolArgs):
    question: str = Field(..., description="The question.")
    draft: str = Field("", description="Your draft answer or what you know so far (joins the search query).")


def iter_retgen_tool(
    retriever: Retriever, model: ChatModel, *, k: int = 5, passage_chars: int = 700, draft_tokens: int = 96,
    tracer: Any = None,
) -> Tool[RoundArgs]:
    system, _, user = load("agent_iter_retgen_draft").partition("=== user ===")

    def run(args: RoundArgs) -> ToolResult:
        if not args.question.strip():
            raise ToolArgumentError("empty question", hint="pass the question you are answering")
        query = f"{args.question} {args.draft}".strip()
        hits = retriever.search(query, k, tracer=tracer)
        passages = [{"doc_id": h.doc_id, "text": h.text} for h in hits]
        block = passages_text(passages, passage_chars)
        result = model.chat(
            [{"role": "system", "content": system.strip()},
             {"role": "user", "content": user.strip().format(passages=block, question=args.question)}],
            max_tokens=draft_tokens, tracer=tracer, name="generate",
        )
        draft = " ".join((result.content or "").split())
        text = f"Documents: {', '.join(p['doc_id'] for p in passages) or '(none)'}\n{block}\nNew draft: {draft}"
        data = {"hits": [{"doc_id": p["doc_id"]} for p in passages], "draft": draft, "query": query}
        return ToolResult(text=text, data=data)

    return Tool(
        "iter_retgen",
        "One retrieve-then-draft round: searches with the question plus your draft, shows the documents and a new "
        "draft answer written from them.",
        RoundArgs,
        run,
        tags={"index"},
    )
