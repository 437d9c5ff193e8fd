"""Does the evidence support an answer? The check behind the ``sufficiency`` policy and auto's escalation.

``lexical``: the cheap signal (:func:`~sleuth.agents.policies.lexical_support`: some passage contains the answer's
words); ``model``: one structured yes/no call over the passages (``agent_check`` prompt). A yes/no answer cannot be
looked up lexically: the lexical check then reports "cannot judge" (None) and the answer stands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from sleuth.agents.policies import lexical_support
from sleuth.errors import CorpusError, ModelOutputError
from sleuth.prompts import load

if TYPE_CHECKING:
    from sleuth.agents.nodes import NodeContext

EVIDENCE_CHARS = 20_000  # of one document, for the lexical check
CHECK_PASSAGE_CHARS = 500  # of one passage shown to the model check


class SupportCheck(BaseModel):
    supported: bool = Field(description="true when the documents state the answer")
    missing: str = Field("", description="what the documents do not say, in a few words")


def check_support(
    cx: NodeContext, mode: str, question: str, answer: str, texts: list[tuple[str, str]]
) -> tuple[bool | None, str]:
    """``(supported, signal)``: True/False, or None when the check cannot judge; ``signal`` says why, for the
    trace. ``texts`` are ``(doc_id, text)`` pairs of the evidence the answer should rest on."""
    if mode == "off":
        return None, "no check (sufficiency off)"
    if mode == "lexical":
        return lexical_support(answer, texts)
    blocks = "\n\n".join(f"[{d}]\n{t[:CHECK_PASSAGE_CHARS]}" for d, t in texts[:6]) or "(no documents)"
    system, _, user = load("agent_check").partition("=== user ===")
    fields = {"question": question, "answer": answer, "passages": blocks}
    try:
        value, _ = cx.model.structured(
            [{"role": "system", "content": system.strip().format(**fields)},
             {"role": "user", "content": user.strip().format(**fields)}],
            SupportCheck,
            retries=1,
            max_tokens=64,
            tracer=cx.tracer,
            name="check",
        )
    except ModelOutputError as e:
        return None, f"the model check gave no verdict ({e.message[:120]})"
    if value.supported:
        return True, "the model check found the answer in the documents"
    missing = value.missing.strip()
    return False, "the model check did not find the answer in the documents" + (f": {missing}" if missing else "")


def document_texts(corpus: Any, doc_ids: list[str]) -> list[tuple[str, str]]:
    """``(doc_id, text)`` of documents read from the corpus (unreadable ones skipped)."""
    out = []
    for d in dict.fromkeys(doc_ids):
        try:
            out.append((d, str(corpus.read_text(d))[:EVIDENCE_CHARS]))
        except (CorpusError, OSError):
            continue
    return out
