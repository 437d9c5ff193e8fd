"""A chat assistant over a folder of documents: a function-calling loop with sleuth's tools.

The assistant gets sleuth's tools as OpenAI function specs (``sleuth.tools.openai_tools``), the model picks a
tool, the dispatcher runs it, and the loop repeats until the model answers in text. It works with any model
sleuth can talk to: the embedded local model (default; it has no native tool calls, so sleuth's model layer
constrains its output to one JSON tool call), or any litellm model string (``--model openai/gpt-4o-mini``).

    python examples/chat_assistant.py                                  # chat over examples/corpus
    python examples/chat_assistant.py --corpus ~/notes -q "Who designed the Kestrel Bridge?"

Type a question at the ``you>`` prompt; an empty line or Ctrl-D ends the chat.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SYSTEM = (
    "You answer questions about a folder of documents. Use the tools to find and read the documents; do not "
    "guess. When you know the answer, reply in plain text (no tool call) with the answer and the doc ids you "
    "used in [brackets]."
)
ANSWER_TOOL = {
    "type": "function",
    "function": {
        "name": "final_answer",
        "description": "Give the final answer to the user, with the doc ids it comes from.",
        "parameters": {
            "type": "object",
            "properties": {
                "answer": {"type": "string", "description": "The answer, one or two sentences."},
                "doc_ids": {"type": "array", "items": {"type": "string"}, "description": "Doc ids used."},
            },
            "required": ["answer"],
        },
    },
}


def answer_turn(model: Any, messages: list[dict[str, Any]], specs: list[dict[str, Any]], dispatch: Any, *,
                max_steps: int = 6, on_event: Any = None) -> str:
    """Run the tool loop for the last user message; append everything to ``messages``; return the answer.

    Small local models cannot both call tools and write prose in one constrained reply, so the assistant also
    gets a ``final_answer`` tool; a plain-text reply (what capable models do) ends the turn too. A model that
    repeats a call it already made, or reaches the last step, is offered only ``final_answer``.
    """
    tools = [*specs, ANSWER_TOOL]
    done: set[str] = set()
    force = False
    for step in range(max_steps):
        offered = [ANSWER_TOOL] if force or step == max_steps - 1 else tools
        result = model.chat(messages, tools=offered, max_tokens=200)
        messages.append(result.assistant_message())
        if not result.tool_calls:
            return result.content.strip()
        final = next((c for c in result.tool_calls if c.name == "final_answer"), None)
        if final is not None:
            answer = str(final.arguments.get("answer", "")).strip()
            ids = list(dict.fromkeys(map(str, final.arguments.get("doc_ids") or [])))  # small models repeat them
            for c in result.tool_calls:  # every call needs its tool message
                messages.append({"role": "tool", "tool_call_id": c.id, "content": "delivered"})
            return answer + (f" [{', '.join(ids)}]" if ids else "")
        fresh = []
        for c in result.tool_calls:
            key = json.dumps([c.name, c.arguments], sort_keys=True)
            if key in done:
                force = True
                messages.append({"role": "tool", "tool_call_id": c.id, "content":
                                 "You already made this call; its result is above. Answer now with final_answer."})
            else:
                done.add(key)
                fresh.append(c)
        for msg in dispatch(fresh):
            messages.append(msg)
            if on_event:
                call = next(c for c in fresh if c.id == msg["tool_call_id"])
                on_event(call.name, call.arguments, msg["content"])
    return "(no answer within the step limit; ask a narrower question)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(HERE / "corpus"), help="Folder of documents (default: examples/corpus).")
    parser.add_argument("--model", default="local", help="'local' (embedded) or a litellm model string.")
    parser.add_argument("-q", "--question", action="append", help="Ask this and exit (repeatable).")
    parser.add_argument("--tools", default="search,grep,read,ls", help="Comma-separated sleuth tools to offer.")
    parser.add_argument("--max-steps", type=int, default=6)
    parser.add_argument("--quiet", action="store_true", help="Do not print the tool calls.")
    args = parser.parse_args(argv)

    from sleuth.errors import SleuthError
    from sleuth.llm import get_model
    from sleuth.tools import openai_tools

    try:
        specs, dispatch = openai_tools(args.corpus, include=[t.strip() for t in args.tools.split(",") if t.strip()])
        model = get_model(args.model)
    except SleuthError as e:
        print(f"error ({type(e).__name__}): {e}", file=sys.stderr)
        return 2

    def show(name: str, arguments: dict[str, Any], content: str) -> None:
        if not args.quiet:
            first = content.splitlines()[0] if content else ""
            print(f"  [{name} {arguments}] -> {first[:120]}", file=sys.stderr)

    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
    questions = iter(args.question) if args.question else None
    try:
        while True:
            if questions is not None:
                question = next(questions, None)
                if question is None:
                    break
                print(f"you> {question}")
            else:
                try:
                    question = input("you> ")
                except EOFError:
                    break
            if not question.strip():
                break
            messages.append({"role": "user", "content": question})
            try:
                answer = answer_turn(model, messages, specs, dispatch, max_steps=args.max_steps, on_event=show)
            except SleuthError as e:
                print(f"error ({type(e).__name__}): {e}", file=sys.stderr)
                return 2
            print(f"assistant> {answer}")
    finally:
        close = getattr(model, "close", None)
        if close:
            close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
