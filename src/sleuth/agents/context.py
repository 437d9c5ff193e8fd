"""Context management: keep a conversation inside a model's window.

Two mechanisms, both recorded in the trace:

* every tool observation is capped at ``max_result_chars`` characters, with a note that says what was cut;
* once the estimated prompt (messages + tool schemas) passes ``prompt_budget`` tokens, the oldest tool outputs
  are replaced by :data:`CLEARED_MARKER`, oldest first, until it fits; if the cleared turns alone are still too
  long, the oldest turns (a call and its output) are removed, and one note says how many. The system prompt and
  the question are never touched (they are the stable prefix a server's prompt cache reuses); the newest
  observation goes last: it is shortened, never removed.

The default window is 4,096 tokens: the embedded Qwen2.5-Coder-0.5B server runs with ``n_ctx=4096``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from sleuth.llm.base import Message

CLEARED_MARKER = "[old output cleared to save context; call again if needed]"
DROPPED_NOTE = "[{n} earlier tool calls and their outputs were removed to save context]"
TRUNCATION_NOTE = "\n[... {cut} more characters cut; read a narrower part if you need them]"
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators per message in chat templates


class ContextPolicy(BaseModel):
    context_tokens: int = Field(4096, ge=256, description="the model's window")
    max_result_chars: int = Field(1500, ge=100, description="cap on one tool observation")
    max_step_tokens: int = Field(192, ge=16, description="generation limit of one agent turn")
    max_answer_tokens: int = Field(160, ge=16, description="generation limit of an answer call")
    safety_ratio: float = Field(
        0.12, ge=0, lt=1, description="share of the window kept free for template and fallback-prompt tokens"
    )
    max_passage_chars: int = Field(700, ge=100, description="cap on one retrieved passage shown to the model")

    def prompt_budget(self, generation_tokens: int) -> int:
        return int(self.context_tokens * (1 - self.safety_ratio)) - generation_tokens


# The arguments a small model is shown per tool: every other (optional) argument keeps its default. Fewer fields
# mean fewer prompt tokens and far fewer generated ones (a 0.5B model fills every field it is shown).
DEFAULT_TOOL_FIELDS: dict[str, tuple[str, ...]] = {
    "grep": ("pattern", "ignore_case"),
    "read": ("doc_id", "start_line"),
    "ls": ("prefix",),
    "search": ("query", "method"),
    "df": ("terms",),
    "rerank": ("query", "doc_ids", "method"),
    "iter_retgen": ("question", "draft"),
    "answer": ("answer", "doc_ids"),
}


def slim_schema(schema: dict[str, Any], fields: tuple[str, ...] | None) -> dict[str, Any]:
    """An OpenAI tool schema with only ``fields`` (and the required ones) in its parameters."""
    if not fields:
        return schema
    fn = dict(schema.get("function", schema))
    params = dict(fn.get("parameters") or {})
    props = params.get("properties") or {}
    required = list(params.get("required") or [])
    keep = [k for k in props if k in fields or k in required]
    params["properties"] = {k: props[k] for k in keep}
    fn["parameters"] = params
    return {**schema, "function": fn} if "function" in schema else fn


def cap_text(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut ``text`` to ``max_chars`` characters (on a line break when one is near), noting how much was cut."""
    if len(text) <= max_chars:
        return text, False
    cut_at = text.rfind("\n", int(max_chars * 0.8), max_chars)
    if cut_at <= 0:
        cut_at = max_chars
    return text[:cut_at] + TRUNCATION_NOTE.format(cut=len(text) - cut_at), True


def estimate_tokens(
    messages: list[Message], tools: list[dict[str, Any]] | None, count_tokens: Callable[[str], int]
) -> int:
    total = 0
    for m in messages:
        total += MESSAGE_OVERHEAD_TOKENS + count_tokens(str(m.get("content") or ""))
        for call in m.get("tool_calls") or ():
            fn = call.get("function", {})
            total += count_tokens(str(fn.get("name", ""))) + count_tokens(str(fn.get("arguments", "")))
    if tools:
        total += count_tokens(json.dumps(tools, separators=(",", ":")))
    return total


def compact(
    messages: list[Message],
    tools: list[dict[str, Any]] | None,
    count_tokens: Callable[[str], int],
    budget_tokens: int,
) -> tuple[list[Message], int, int]:
    """Clear old tool outputs until the prompt fits ``budget_tokens``.

    Returns ``(messages, cleared, estimated_tokens)``; the input list is not modified.
    """
    out = [dict(m) for m in messages]
    estimate = estimate_tokens(out, tools, count_tokens)
    if estimate <= budget_tokens:
        return out, 0, estimate
    cleared = 0
    tool_idx = [i for i, m in enumerate(out) if m.get("role") == "tool" and m.get("content") != CLEARED_MARKER]
    for i in tool_idx[:-1]:  # oldest first; the newest observation is handled below
        before = count_tokens(str(out[i].get("content") or ""))
        out[i]["content"] = CLEARED_MARKER
        cleared += 1
        estimate -= before - count_tokens(CLEARED_MARKER)
        if estimate <= budget_tokens:
            return out, cleared, estimate
    out, dropped = _drop_old_turns(out, tools, count_tokens, budget_tokens)
    cleared += dropped
    estimate = estimate_tokens(out, tools, count_tokens)
    if estimate <= budget_tokens:
        return out, cleared, estimate
    tool_idx = [i for i, m in enumerate(out) if m.get("role") == "tool" and m.get("content") != CLEARED_MARKER]
    if tool_idx:  # still too long: shorten the newest observation as far as needed
        i = tool_idx[-1]
        text = str(out[i].get("content") or "")
        over = estimate - budget_tokens
        tokens = max(count_tokens(text), 1)
        keep_chars = max(0, int(len(text) * (1 - (over + 16) / tokens)))
        if keep_chars < 80:
            out[i]["content"] = CLEARED_MARKER
        else:
            out[i]["content"], _ = cap_text(text, keep_chars)
        cleared += 1
        estimate = estimate_tokens(out, tools, count_tokens)
    if estimate > budget_tokens:  # long assistant texts (a rambling model): shorten them, oldest first
        for m in out:
            if m.get("role") == "assistant" and len(str(m.get("content") or "")) > 200:
                m["content"] = str(m["content"])[:200] + " [...]"
                estimate = estimate_tokens(out, tools, count_tokens)
                if estimate <= budget_tokens:
                    break
    return out, cleared, estimate


def _drop_old_turns(
    messages: list[Message], tools: list[dict[str, Any]] | None, count_tokens: Callable[[str], int], budget: int
) -> tuple[list[Message], int]:
    """Remove the oldest turns (assistant call + its outputs) but the last, until the prompt fits."""
    head = messages[:2]
    rest = messages[2:]
    previously = 0
    if rest and rest[0].get("role") == "user" and str(rest[0].get("content", "")).startswith("[") and "removed" in str(
        rest[0].get("content", "")
    ):
        previously = int(str(rest[0]["content"]).strip("[").split()[0])
        rest = rest[1:]
    dropped_calls = 0
    while True:
        starts = [i for i, m in enumerate(rest) if m.get("role") == "assistant"]
        if len(starts) < 2:
            break
        candidate = [*head, {"role": "user", "content": DROPPED_NOTE.format(n=previously + dropped_calls)}, *rest]
        if estimate_tokens(candidate, tools, count_tokens) <= budget:
            break
        turn = rest[starts[0] : starts[1]]
        dropped_calls += max(1, len(turn[0].get("tool_calls") or ()))
        rest = rest[starts[1] :]
    if not dropped_calls and not previously:
        return messages, 0
    note = {"role": "user", "content": DROPPED_NOTE.format(n=previously + dropped_calls)}
    return [*head, note, *rest], dropped_calls


def passages_text(passages: list[dict[str, Any]], max_chars: int) -> str:
    """Retrieved hits as a numbered block the model can cite by doc id."""
    blocks = []
    for p in passages:
        text, _ = cap_text(str(p.get("text") or "").strip(), max_chars)
        blocks.append(f"[{p['doc_id']}]\n{text}")
    return "\n\n".join(blocks) if blocks else "(no documents found)"
