"""`search`: ranked retrieval over the corpus with an injected set of retrievers (bm25, sira, dense, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, field_validator

from sleuth.errors import ToolArgumentError
from sleuth.filters import resolve
from sleuth.retrieval.base import Retriever, run_filtered
from sleuth.retrieval.fresh import FreshRetrievers, bm25_index_of
from sleuth.tools.base import Tool, ToolArgs, ToolResult

if TYPE_CHECKING:
    from sleuth.corpus import Corpus

SNIPPET_CHARS = 300


class SearchArgs(ToolArgs):
    query: str = Field(..., description="What to look for: keywords or a natural-language question.")
    k: int = Field(10, ge=1, le=50, description="How many documents to return.")
    method: str | None = Field(None, description="Retrieval method; default: the first available.")
    where: list[str] | None = Field(
        None,
        description="Metadata filters, all of which must hold: FIELD OP VALUE with OP = != < <= > >= ~ (glob), "
        "e.g. [\"year>=2020\", \"author=Smith\", \"title~*cancer*\", \"path=notes/*.md\"]. Fields every document "
        "has: path, mtime, size, format; others come from the documents (title, author, front matter, ...).",
    )

    @field_validator("where", mode="before")
    @classmethod
    def _one_filter(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class SearchHitData(BaseModel):
    """One hit of the search tool's structured result (a list of these, best first). A method that searches
    passages names the hit's best passage: its id (``doc_id#p3``, for ``read``), its characters ``[start, end)``
    in the document's text and its lines."""

    doc_id: str
    score: float | None  # None: a rank-only method
    source: str
    passage: str | None = None
    start: int | None = None
    end: int | None = None
    start_line: int | None = None
    end_line: int | None = None


def _hit_data(h: Any) -> dict[str, Any]:
    data = {"doc_id": h.doc_id, "score": h.score, "source": h.source}
    p = h.metadata.get("passage")
    if isinstance(p, dict):
        data.update(passage=p.get("id"), start=p.get("start"), end=p.get("end"), start_line=p.get("start_line"),
                    end_line=p.get("end_line"))
    return data


def _hit_name(h: Any) -> str:
    """``doc_id`` or, for a passage hit, ``doc_id#p3 [lines 40-52]``."""
    p = h.metadata.get("passage")
    if not isinstance(p, dict):
        return str(h.doc_id)
    lines = (f"line {p['start_line']}" if p["start_line"] == p["end_line"]
             else f"lines {p['start_line']}-{p['end_line']}")
    return f"{p['id']} [{lines}]"


def _snippet(text: str, n: int = SNIPPET_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


def search_tool(retrievers: Mapping[str, Retriever], *, snippet_chars: int = SNIPPET_CHARS,
                corpus: Corpus | None = None) -> Tool[SearchArgs]:
    """``corpus``: whose metadata ``where`` filters read (default: the fresh retrievers' or the BM25 index's)."""
    if not retrievers:
        raise ValueError("search_tool needs at least one retriever")
    names = list(retrievers)
    if corpus is None:
        corpus = retrievers.corpus if isinstance(retrievers, FreshRetrievers) else next(
            (i.corpus for i in map(bm25_index_of, retrievers.values()) if i is not None and i.corpus is not None),
            None)

    def run(args: SearchArgs) -> ToolResult:
        if not args.query.strip():
            raise ToolArgumentError("empty query", hint="pass the words to search for")
        method = args.method or names[0]
        refreshed = None
        if isinstance(retrievers, FreshRetrievers):  # the corpus is checked first: a change reopens the indexes
            retriever, refreshed = retrievers.lookup(method)
        else:
            retriever = retrievers.get(method)
        if retriever is None:
            raise ToolArgumentError(f"unknown method {method!r}; available: {', '.join(names)}")
        flt = None
        if args.where:
            if corpus is None:
                raise ToolArgumentError("this search tool has no corpus to filter by metadata")
            flt = resolve(args.where, corpus)  # after the refresh: the metadata of the corpus as it is now
        # this call's own record: safe under concurrent calls
        result = run_filtered(retriever, args.query, args.k, where=flt)
        hits = result.hits
        meta: dict[str, Any] = {"method": method}
        among = ""
        if flt is not None:
            meta["where"] = {"filter": str(flt.where), "matching": len(flt.matching), "documents": flt.n_docs}
            among = f", among the {len(flt.matching)} of {flt.n_docs} documents where {flt.where}"
        if refreshed:
            meta["index"] = refreshed  # e.g. "updated (1 added, 0 changed, 1 removed; ...)"
        if decided := result.decided():
            meta[result.method] = decided  # e.g. meta["sira"] = {"kept": [...], "rejected": [...], "fallback": ...}
        if not hits:
            text = (f"no documents match {args.query!r} (method {method}{among}); the query may consist only of "
                    "stopwords or words absent from the corpus: try other words or grep")
            if flt is not None and not flt.matching:
                text = f"no document has metadata where {flt.where} (of {flt.n_docs} documents): loosen the filter"
            return ToolResult(text=text, data=[], meta=meta)
        lines = [f"{len(hits)} results for {args.query!r} (method {method}{among}):"]
        if note := result.note():
            lines.append(f"({note})")
        for rank, h in enumerate(hits, 1):
            score = f"{h.score:.3f}" if h.score is not None else "-"
            lines.append(f"{rank}. {_hit_name(h)} (score {score}): {_snippet(h.text, snippet_chars)}")
        data = [_hit_data(h) for h in hits]
        return ToolResult(text="\n".join(lines), data=data, meta=meta)

    desc = (
        "Ranked search over the corpus; returns doc ids with scores and snippets (read a doc id for its full "
        "text; a hit that names a passage, doc_id#p3, shows that passage: read doc_id#p3 for all of it); `where` "
        f"filters by metadata. Methods: {', '.join(names)}."
    )
    tool = Tool("search", desc, SearchArgs, run, tags={"index"}, output_type=list[SearchHitData])
    return tool


def search_tools(corpus: Corpus, retrievers: Mapping[str, Retriever] | None = None) -> list[Tool[Any]]:
    """The `search` tool over ``retrievers`` (default: BM25 over ``corpus``) and the `df` tool over the corpus's
    BM25 index (reused from a bm25/sira retriever when one is given)."""
    from sleuth.retrieval.bm25 import BM25Index, BM25Retriever
    from sleuth.retrieval.df import DocFrequency
    from sleuth.retrieval.fresh import FreshDocFrequency
    from sleuth.tools.df import df_tool

    if isinstance(retrievers, FreshRetrievers):
        return [search_tool(retrievers, corpus=corpus), df_tool(FreshDocFrequency(retrievers))]
    if not retrievers:
        retrievers = {"bm25": BM25Retriever.open(corpus)}
    index = None
    for r in retrievers.values():
        cand = getattr(r, "index", None) or getattr(getattr(r, "bm25", None), "index", None)
        if isinstance(cand, BM25Index):
            index = cand
            break
    if index is None:
        index = BM25Index.open(corpus)
    return [search_tool(retrievers, corpus=corpus), df_tool(DocFrequency(index))]
