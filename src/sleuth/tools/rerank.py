"""`rerank`: reorder documents the agent already found (by doc id) with an injected reranker.

The tool reads each document's text from the corpus (cut to the reranker's word budget inside the reranker) and
returns the doc ids best first. A passage id from search (``doc_id#p3``) is ranked by that passage's text (ICR then
attends to the passage that matched, not to the head of a long document) and returned as given. Unknown doc ids, an
empty query and an empty list are errors the model can fix; duplicates are collapsed (each document is returned once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sleuth.errors import ToolArgumentError
from sleuth.records import Hit
from sleuth.rerank.base import Reranker
from sleuth.tools.base import Tool, ToolArgs, ToolResult

if TYPE_CHECKING:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.chunking import Chunker

MAX_DOCS = 50


class RerankArgs(ToolArgs):
    query: str = Field(..., description="The question or search query to rank the documents by.")
    doc_ids: list[str] = Field(..., description=f"Doc ids (or passage ids, doc_id#p3) to reorder (at most {MAX_DOCS}), "
                                                "e.g. from search or grep.")
    k: int | None = Field(None, ge=1, le=MAX_DOCS, description="Return only the best k. Default: all, reordered.")


class RankedDoc(BaseModel):
    """One entry of the rerank tool's structured result (a list of these, best first)."""

    doc_id: str
    score: float | None  # None: a rank-only reranker (listwise, FIRST)


class MethodRerankArgs(RerankArgs):
    method: str | None = Field(None, description="Reranker; default: the first available.")


def _text(corpus: Corpus, doc_id: str, chunker: Chunker | None) -> str:
    """The document's text, or the passage's for a passage id (``doc_id#p3``)."""
    from sleuth.retrieval.chunking import split_passage_id

    if split_passage_id(doc_id) is not None:
        from sleuth.retrieval.passages import find_passage

        found = find_passage(corpus, doc_id, chunker)
        if found is not None:
            p, text = found
            return text[p.start:p.end]
    return corpus.read_text(doc_id)


def rerank_tool(corpus: Corpus, reranker: Reranker | Mapping[str, Reranker], chunker: Chunker | None = None
                ) -> Tool[RerankArgs]:
    """The tool over one reranker, or over several by name (then the arguments take a ``method``); ``chunker``
    cuts passage ids (the search indexes' chunker; default: the default)."""
    rerankers = dict(reranker) if isinstance(reranker, Mapping) else None
    if rerankers is not None and not rerankers:
        raise ValueError("rerank_tool needs at least one reranker")

    def pick(args: RerankArgs) -> Reranker:
        if rerankers is None:
            return reranker  # type: ignore[return-value]
        method = getattr(args, "method", None) or next(iter(rerankers))
        if method not in rerankers:
            raise ToolArgumentError(f"unknown method {method!r}; available: {', '.join(rerankers)}")
        return rerankers[method]

    def run(args: RerankArgs) -> ToolResult:
        chosen = pick(args)
        if not args.query.strip():
            raise ToolArgumentError("empty query", hint="pass the question to rank the documents by")
        if not args.doc_ids:
            raise ToolArgumentError("doc_ids is empty", hint="pass the doc ids returned by search or grep")
        if len(args.doc_ids) > MAX_DOCS:
            raise ToolArgumentError(
                f"{len(args.doc_ids)} doc ids; at most {MAX_DOCS}", hint="rerank the top results of a search only"
            )
        seen: set[str] = set()
        hits = []
        for doc_id in args.doc_ids:
            if doc_id in seen:
                continue
            seen.add(doc_id)
            hits.append(Hit(doc_id=doc_id, text=_text(corpus, doc_id, chunker), source="rerank"))
        result = chosen.run(args.query, hits, args.k)
        ranked = result.hits
        lines = [f"{len(ranked)} documents, best first (reranker {chosen.name}):"]
        lines += [f"{i}. {h.doc_id}" for i, h in enumerate(ranked, 1)]
        data = [{"doc_id": h.doc_id, "score": h.score} for h in ranked]  # score None: a rank-only reranker
        dropped = len(args.doc_ids) - len(hits)
        meta = {
            "reranker": chosen.name,
            "duplicates": dropped,
            "has_scores": result.has_scores,
            "usage": result.usage.model_dump(mode="json"),
        }
        return ToolResult(text="\n".join(lines), data=data, meta=meta)

    desc = "Reorder documents you already found by how well they answer the query; returns the doc ids best first."
    if rerankers is not None:
        desc += f" Methods: {', '.join(rerankers)}."
    model: type[RerankArgs] = MethodRerankArgs if rerankers is not None else RerankArgs
    return Tool("rerank", desc, model, run, tags={"rerank"}, output_type=list[RankedDoc])
