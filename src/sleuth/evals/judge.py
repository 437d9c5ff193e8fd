"""An LLM judge for BrowseComp-style answers: does the response give the reference answer?

The prompt is package data (``prompts/judge_browsecomp.md``); the verdict is validated into :class:`Verdict`
with ``ChatModel.structured``. A verdict the model cannot produce in shape (after the model's own repair and
retries) is recorded with status ``"unparsed"`` and counts as not correct; a model that fails outright is
recorded with status ``"error"``. The judge never raises for either, so one bad verdict cannot stop a run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from sleuth.errors import ModelError, ModelOutputError
from sleuth.records import Usage
from sleuth.tracing.tracer import MemoryTracer

PROMPT = "judge_browsecomp"


class Verdict(BaseModel):
    correct: bool
    reason: str
    extracted_answer: str


class JudgeResult(BaseModel):
    status: Literal["judged", "unparsed", "error", "skipped"]
    correct: bool | None = None
    reason: str = ""
    extracted_answer: str = ""
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)
    model: str = ""

    @property
    def score(self) -> float:
        """1.0 when judged correct; 0.0 otherwise (unparsed and failed verdicts count as wrong)."""
        return 1.0 if self.correct else 0.0


def _usage(local: MemoryTracer, tracer: Any) -> Usage:
    """Sum the judge's model-call usage and pass its events on to the caller's tracer."""
    total = Usage()
    for e in local.events:
        if tracer is not None:
            tracer.emit(e)
        if e.kind == "llm" and e.usage is not None:
            total = total + e.usage
    return total


def judge_messages(question: str, response: str, correct_answer: str) -> list[dict[str, Any]]:
    from sleuth.prompts import load

    text = load(PROMPT).format(question=question, response=response or "None", correct_answer=correct_answer)
    return [{"role": "user", "content": text}]


def judge_answer(
    model: Any,
    question: str,
    response: str | None,
    correct_answer: str,
    *,
    retries: int = 1,
    tracer: Any = None,
) -> JudgeResult:
    """Grade one response. ``model`` is a :class:`~sleuth.llm.base.ChatModel`."""
    name = getattr(model, "model", "")
    if not correct_answer:
        return JudgeResult(status="skipped", reason="no reference answer", model=name)
    if response is None or not response.strip():
        return JudgeResult(status="judged", correct=False, reason="no response", extracted_answer="None", model=name)
    messages = judge_messages(question, response, correct_answer)
    local = MemoryTracer()  # to count the usage of attempts that failed to parse
    try:
        verdict, result = model.structured(
            messages, Verdict, retries=retries, max_tokens=300, tracer=local, name="judge"
        )
    except ModelOutputError as e:
        return JudgeResult(
            status="unparsed",
            correct=False,
            error=str(e)[:500],
            reason="verdict could not be parsed",
            usage=_usage(local, tracer),
            model=name,
        )
    except ModelError as e:
        return JudgeResult(
            status="error",
            correct=None,
            error=f"{type(e).__name__}: {e}"[:500],
            usage=_usage(local, tracer),
            model=name,
        )
    _usage(local, tracer)
    return JudgeResult(
        status="judged",
        correct=verdict.correct,
        reason=verdict.reason,
        extracted_answer=verdict.extracted_answer,
        usage=result.usage,
        model=name,
    )
