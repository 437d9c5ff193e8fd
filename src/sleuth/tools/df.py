"""`df`: how many documents contain a word or a phrase (as the BM25 index analyzes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from sleuth.retrieval.df import DocFreq, DocFrequency
from sleuth.tools.base import Tool, ToolArgs, ToolResult


class DfArgs(ToolArgs):
    terms: list[str] = Field(
        ..., min_length=1, max_length=50,
        description="Words or multi-word phrases; each is counted separately. Case, inflection and stopwords are "
        "normalised as in the search index.",
    )


if TYPE_CHECKING:
    from sleuth.retrieval.fresh import FreshDocFrequency


class DfResult(BaseModel):
    n_docs: int
    terms: list[DocFreq]  # each with its ratio (df / n_docs)


def df_tool(docfreq: DocFrequency | FreshDocFrequency) -> Tool[DfArgs]:
    def run(args: DfArgs) -> ToolResult:
        rows = docfreq.many(args.terms)
        n = rows[0].n_docs if rows else docfreq.n_docs  # the rows' own count: one snapshot of a fresh index
        lines = [f"{n} documents in the corpus"]
        for r in rows:
            pct = f" ({100 * r.ratio:.2f}%)" if r.df else ""
            note = f"  [{r.note}]" if r.note else ""
            lines.append(f"{r.term!r}: {r.df}{pct}{note}")
        return ToolResult(text="\n".join(lines), data=DfResult(n_docs=n, terms=rows).model_dump(mode="json"))

    return Tool(
        "df",
        "Document frequency: how many documents contain each word or phrase (phrases: contiguous words after "
        "stemming and stopword removal). Use it to tell rare, discriminative search terms from common ones.",
        DfArgs,
        run,
        tags={"index"},
        output_type=DfResult,
    )
