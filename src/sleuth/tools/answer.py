"""The ``answer`` tool: how an agent ends a run, with its answer and the doc ids it rests on.

The tool itself only validates and records; the agent graph sees a call to it and stops. Doc ids the corpus
does not know are dropped from the answer (and listed in the result), never a reason to reject the answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field, field_validator

from sleuth.tools.base import Tool, ToolArgs, ToolResult

ANSWER_TOOL = "answer"


class AnswerArgs(ToolArgs):
    answer: str = Field(description="the final answer: short, a few words when possible")
    doc_ids: list[str] = Field(default_factory=list, description="ids of the documents the answer rests on")

    @field_validator("doc_ids", mode="before")
    @classmethod
    def _one_string(cls, v: Any) -> Any:  # small models write "a.txt, b.txt" or a bare id
        if isinstance(v, str):
            return [p.strip() for p in v.split(",") if p.strip()]
        return v

    @field_validator("answer", mode="before")
    @classmethod
    def _scalar(cls, v: Any) -> Any:
        if isinstance(v, int | float | bool):
            return str(v)
        return v


def answer_tool(known_doc: Callable[[str], bool] | None = None) -> Tool[AnswerArgs]:
    """The answer tool. ``known_doc(doc_id)`` (optional) filters out ids the corpus does not have."""

    def _answer(args: AnswerArgs) -> ToolResult:
        kept: list[str] = []
        unknown: list[str] = []
        for d in dict.fromkeys(args.doc_ids):
            (kept if known_doc is None or known_doc(d) else unknown).append(d)
        note = f" Unknown doc ids dropped: {', '.join(unknown)}." if unknown else ""
        return ToolResult(
            text=f"Answer recorded.{note}",
            data={"answer": args.answer.strip(), "doc_ids": kept, "unknown_doc_ids": unknown},
        )

    return Tool(
        ANSWER_TOOL,
        "Give the final answer and the ids of the documents it rests on. Call this once, last.",
        AnswerArgs,
        _answer,
        tags={"answer"},
    )
