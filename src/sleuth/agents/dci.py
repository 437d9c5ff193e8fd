"""Direct corpus interaction (``--agent dci``): grep, read and ls over the raw files, no index, with the context
management of DCI-Agent-Lite (the DCI paper's reference agent, built on the Pi coding agent).

Pi's runtime context-management levels, as DCI-Agent-Lite documents them:

=====  ===============================================================================================
level  what
=====  ===============================================================================================
0      none
1      light truncation of long tool results
2      stronger truncation
3      truncation + micro-compaction: once the tool results held in the conversation pass a size, every
       result older than the last ``keep_turns`` assistant turns is replaced by a placeholder (no model call)
4      3 + summarization: when the window fills, older history is summarized by the model (one call)
=====  ===============================================================================================

DCI-Agent-Lite's benchmarks run level 3 with Pi's numbers for long-window models (tool results cut at 20,000
characters, micro-compaction past 240,000 characters keeping 12 turns: :meth:`DCIContext.pi`). sleuth's default is
level 4 scaled to the embedded model's 4,096-token window (results cut at 1,500 characters, compaction past 3,000
keeping 2 turns, a summary when the prompt passes 70% of its budget). One adaptation, recorded in the trace: Pi's
placeholder names the tool and the size it cleared; sleuth's keeps one line of what the output found (the tool, its
arguments, the documents, the sentence most related to the question), built from the result without a model call.
Compaction is persistent (the checkpointed conversation holds what the model saw).

A corpus larger than the scan budget (``AgentConfig.max_scan_bytes``, default 1 GiB: every grep reads all of it)
is refused with :class:`~sleuth.errors.CorpusTooLargeError`, pointing to the indexed strategies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sleuth.agents.context import estimate_tokens
from sleuth.agents.policies import terms
from sleuth.errors import CorpusTooLargeError, ModelError
from sleuth.llm.base import Message

DCI_TOOLS = ("grep", "read", "ls", "answer")
COMPACT_PREFIX = "[old output compacted] "
SUMMARY_PREFIX = "[Summary of earlier steps] "
DIGEST_CHARS = 240
DEFAULT_SCAN_BYTES = 1 << 30


class DCIContext(BaseModel):
    """Context management of the dci loop (see the module docstring for the levels)."""

    level: int = Field(4, ge=0, le=4, description="0 none, 1-2 truncation, 3 + micro-compaction, 4 + summary")
    max_tool_result_chars: int = Field(1500, ge=100, description="cap on one tool result (level 2 and up)")
    keep_turns: int = Field(2, ge=1, description="assistant turns whose tool results are kept whole")
    compact_min_chars: int = Field(3000, ge=0, description="micro-compact once tool results hold this many chars")
    summary_ratio: float = Field(0.7, gt=0, le=1, description="summarize when the prompt passes this share")
    summary_tokens: int = Field(160, ge=16, description="generation limit of the summary call")

    @classmethod
    def pi(cls, level: int = 3) -> DCIContext:
        """Pi's profile numbers (``settings-manager.ts``, as DCI-Agent-Lite runs them), for long-window models."""
        table = {
            0: {"max_tool_result_chars": 10**9},
            1: {"max_tool_result_chars": 50_000},
            2: {"max_tool_result_chars": 20_000},
            3: {"max_tool_result_chars": 20_000, "keep_turns": 12, "compact_min_chars": 240_000},
            4: {"max_tool_result_chars": 20_000, "keep_turns": 10, "compact_min_chars": 200_000},
        }
        return cls(level=level, **table[level])

    def result_cap(self) -> int | None:
        """The truncation cap of one tool result: none at level 0, twice the cap at level 1 ("light")."""
        if self.level == 0:
            return None
        return self.max_tool_result_chars * (2 if self.level == 1 else 1)


# -- the scan budget ------------------------------------------------------------------------------------------


def corpus_bytes(root: Path, limit: int) -> int:
    """Bytes of the corpus's documents (hidden files and folders skipped), counted until ``limit`` is passed."""
    total = 0
    stack = [root]
    while stack:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.startswith("."):
                        continue
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(Path(e.path))
                        elif e.is_file(follow_symlinks=False):
                            total += e.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
                    if total > limit:
                        return total
        except OSError:
            continue
    return total


def check_scan_budget(corpus: Any, max_bytes: int) -> None:
    """Raise :class:`CorpusTooLargeError` when ``corpus`` holds more than ``max_bytes`` (every grep reads all)."""
    size = corpus_bytes(Path(corpus.root), max_bytes)
    if size > max_bytes:
        raise CorpusTooLargeError(
            f"{corpus.root} holds more than {max_bytes / 2**20:,.0f} MB of documents, the scan budget of "
            "--agent dci (it has no index: every grep reads the whole corpus)"
        )


# -- one line of what a tool output found ---------------------------------------------------------------------


def _best_sentence(text: str, question: str) -> str:
    """The sentence of ``text`` sharing most words with the question (ties: the first)."""
    want = set(terms(question))
    best, best_score = "", -1
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("==", "[")):
            continue
        for sent in line.replace("; ", ". ").split(". "):
            score = len(want & set(terms(sent)))
            if score > best_score:
                best, best_score = sent.strip(), score
    return best


def digest(name: str, arguments: dict[str, Any], result: Any, question: str) -> str:
    """One line of what a tool call found, from its structured result (no model call)."""
    args = ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in arguments.items())[:120]
    head = f"{name}({args})"
    if result.is_error:
        return f"{head} -> error: {result.text.splitlines()[0][:120]}"[:DIGEST_CHARS]
    data = result.data if isinstance(result.data, dict) else {}
    if name == "grep":
        docs = list(dict.fromkeys([m["doc_id"] for m in data.get("matches") or []] + list(data.get("files") or [])
                                  + list(data.get("counts") or {})))
        if not docs:
            return f"{head} -> no matches"
        lines = "\n".join(m.get("text", "") for m in data.get("matches") or [])
        found = _best_sentence(lines, question)
        more = f" (+{len(docs) - 3} more)" if len(docs) > 3 else ""
        out = f"{head} -> {data.get('total_matches', len(docs))} lines in {', '.join(docs[:3])}{more}"
        return (out + (f': "{found}"' if found else ""))[:DIGEST_CHARS]
    if name == "read":
        found = _best_sentence(str(data.get("text", "")), question)
        return f'{head} -> "{found}"'[:DIGEST_CHARS] if found else f"{head} -> (empty)"
    if name == "ls":
        ids = data.get("doc_ids") or []
        return f"{head} -> {data.get('total', len(ids))} documents: {', '.join(ids[:4])}"[:DIGEST_CHARS]
    first = result.text.strip().splitlines()[1:2] or result.text.strip().splitlines()[:1]
    return f"{head} -> {first[0] if first else ''}"[:DIGEST_CHARS]


# -- micro-compaction and the summary -------------------------------------------------------------------------


def micro_compact(
    messages: list[Message], digests: dict[str, str], keep_turns: int, min_chars: int
) -> tuple[list[Message], int]:
    """Replace tool results older than the last ``keep_turns`` assistant turns by their digest, once the tool
    results held pass ``min_chars`` characters. Returns ``(messages, compacted)``; the input is not modified."""
    live = [i for i, m in enumerate(messages) if m.get("role") == "tool" and not _compacted(m)]
    if sum(len(str(messages[i].get("content") or "")) for i in live) <= min_chars:
        return messages, 0
    assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if len(assistants) <= keep_turns:
        return messages, 0
    cutoff = assistants[-keep_turns]
    out = [dict(m) for m in messages]
    n = 0
    for i in live:
        if i >= cutoff:
            break
        m = out[i]
        line = digests.get(str(m.get("tool_call_id")), "") or f"{m.get('name', 'tool')} output"
        m["content"] = COMPACT_PREFIX + line
        n += 1
    return out, n


def _compacted(m: Message) -> bool:
    return str(m.get("content") or "").startswith(COMPACT_PREFIX)


def _render_turns(turns: list[Message]) -> str:
    lines = []
    for m in turns:
        role = m.get("role")
        if role == "assistant":
            for c in m.get("tool_calls") or ():
                fn = c.get("function", {})
                lines.append(f"call {fn.get('name')}({str(fn.get('arguments', ''))[:200]})")
            if m.get("content"):
                lines.append(f"note: {str(m['content'])[:200]}")
        elif role == "tool":
            lines.append(f"result: {str(m.get('content') or '')[:600]}")
        elif role == "user":
            lines.append(str(m.get("content") or "")[:600])
    return "\n".join(lines)


def summary_split(messages: list[Message], keep_turns: int) -> int | None:
    """Where the history to fold ends (the first kept assistant turn), or None when there is nothing to fold."""
    assistants = [i for i, m in enumerate(messages) if m.get("role") == "assistant"]
    if len(assistants) <= keep_turns:
        return None
    cut = assistants[-keep_turns]
    return cut if cut > 2 else None


def summarize(
    messages: list[Message], question: str, model: Any, policy: DCIContext, tracer: Any, prompt: tuple[str, str]
) -> tuple[list[Message], str | None]:
    """Fold the turns before the last ``keep_turns`` into one summary message (one model call).

    ``prompt`` is the (system, user) template; returns ``(messages, error)``: on a failed or empty call the
    conversation is unchanged and ``error`` says why (micro-compaction and the window guard still apply)."""
    cut = summary_split(messages, policy.keep_turns)
    if cut is None:
        return messages, "nothing old enough to summarize"
    old = messages[2:cut]
    system, user = prompt
    try:
        result = model.chat(
            [{"role": "system", "content": system},
             {"role": "user", "content": user.format(question=question, steps=_render_turns(old))}],
            max_tokens=policy.summary_tokens,
            tracer=tracer,
            name="summarize",
        )
    except ModelError as e:
        return messages, f"{type(e).__name__}: {e.message[:200]}"
    text = " ".join((result.content or "").split())
    if not text:
        return messages, "the summary call returned nothing"
    note: Message = {"role": "user", "content": SUMMARY_PREFIX + text}
    return [*messages[:2], note, *messages[cut:]], None


def prompt_tokens(messages: list[Message], tools: list[dict[str, Any]], count: Any) -> int:
    return estimate_tokens(messages, tools, count)
