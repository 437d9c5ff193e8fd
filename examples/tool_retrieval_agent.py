"""A function-calling agent choosing among 200+ tools, with tool retrieval: only the top k specs are sent.

The catalog is MetaTool's 199 tools (ChatGPT plugins, described in one sentence each; MIT licence) plus sleuth's
own ``search`` and ``read`` over a folder of documents: 201 tools. For each request, ``sleuth.tools.openai_tools``
retrieves the k best MetaTool specs with a :class:`~sleuth.retrieval.tool_catalog.ToolCatalog` and always adds
sleuth's two tools; the model picks one; the dispatcher runs it. sleuth's tools run for real; MetaTool's tools
are descriptions only (the dataset ships no implementations), so their handler just reports the call.

Reported: retrieval recall@k (is the gold tool among the specs sent?), selection accuracy (did the model call
it?), and the size of the tool specs sent (all 201 vs 2 + k), in tokens.

With ``--budget-tokens N`` the retrieved schemas are held to N tokens of the model's own tokenizer
(``sleuth.retrieval.tools.budget``): the best that fit are sent whole, the rest of the top k are named in a
``more_tools`` tool. Then recall counts a gold tool sent whole or named, and the summary gives the largest
schema cost sent against the budget.

    python examples/tool_retrieval_agent.py --limit 20               # with the embedded local model
    python examples/tool_retrieval_agent.py --no-model --limit 500   # retrieval only, no model
    python examples/tool_retrieval_agent.py --no-model -k 10 --budget-tokens 300

Needs MetaTool in ../shared/data/metatool (or --metatool DIR); exits with status 3 and a message when absent.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_METATOOL = HERE.parent.parent / "shared" / "data" / "metatool"
SYSTEM = "Call the one tool that best serves the user's request. Put the request in the tool's arguments."
# Requests about the documents in examples/corpus, answered by sleuth's own tools.
DOC_REQUESTS = [
    ("Find the document about the Kestrel Bridge in my notes.", "search"),
    ("Search my documents for the research vessel Gannet's 2012 log.", "search"),
]


def metatool_specs(root: Path) -> list[dict[str, Any]]:
    desc = json.loads((root / "plugin_des.json").read_text(encoding="utf-8"))
    return [
        {
            "type": "function",
            "function": {
                "name": name,
                "description": text,
                "parameters": {
                    "type": "object",
                    "properties": {"request": {"type": "string", "description": "What the user wants, in words."}},
                    "required": ["request"],
                },
            },
        }
        for name, text in desc.items()
    ]


def metatool_requests(root: Path, limit: int, seed: int) -> list[tuple[str, str]]:
    with (root / "all_clean_data.csv").open(encoding="utf-8") as f:
        rows = [(r["Query"], r["Tool"]) for r in csv.DictReader(f)]
    random.Random(seed).shuffle(rows)
    return rows[:limit]


def count_tokens(specs: list[dict[str, Any]]) -> int:
    """cl100k tokens of the specs as JSON (an estimate of what they cost in a prompt)."""
    from sleuth.llm.accounting import count_tokens as tokens

    return tokens(json.dumps(specs))


def schema_tokens(specs: list[dict[str, Any]], counter: Any) -> int:
    """The model's own tokens of each spec as JSON, summed: what the schema budget counts."""
    from sleuth.retrieval.tools.budget import spec_tokens

    return sum(spec_tokens(s, counter) for s in specs)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from sleuth.retrieval.tool_catalog import ToolCatalog
    from sleuth.tools import openai_tools

    root = Path(args.metatool)
    specs_all = metatool_specs(root)
    catalog = ToolCatalog.from_openai(specs_all)
    requests = DOC_REQUESTS + metatool_requests(root, args.limit, args.seed)
    counter = None
    if args.budget_tokens:
        from sleuth.llm.tokenizer import counter_for

        counter = counter_for(args.model)

    def plugin(name: str) -> Any:
        return lambda arguments: {"tool": name, "executed": False,
                                  "note": "MetaTool describes this plugin; it has no implementation", **arguments}

    handlers = {s["function"]["name"]: plugin(s["function"]["name"]) for s in specs_all}
    model = None
    if not args.no_model:
        from sleuth.llm import get_model

        model = get_model(args.model)
    rows = []
    try:
        for request, gold in requests:
            specs, dispatch = openai_tools(args.corpus, include=["search", "read"], catalog=catalog, query=request,
                                           k=args.k, method=args.method, handlers=handlers,
                                           budget_tokens=args.budget_tokens, tokenizer=counter)
            offered = [s["function"]["name"] for s in specs]
            named = dispatch.offer.listed if dispatch.offer is not None else []
            row: dict[str, Any] = {"request": request, "gold": gold, "offered": offered, "named": named,
                                   "retrieved": gold in offered or gold in named}
            if dispatch.offer is not None:
                catalog_sent = [s for s in specs if s["function"]["name"] not in ("search", "read")]
                row["schema_tokens"] = schema_tokens(catalog_sent, counter)
            if model is not None:
                t0 = time.perf_counter()
                result = model.chat([{"role": "system", "content": SYSTEM}, {"role": "user", "content": request}],
                                    tools=specs, max_tokens=80)
                chosen = result.tool_calls[0].name if result.tool_calls else None
                observation = dispatch(result.tool_calls[:1])[0]["content"] if result.tool_calls else result.content
                row.update(chosen=chosen, correct=chosen == gold, seconds=round(time.perf_counter() - t0, 2),
                           observation=observation[:160])
                if not args.quiet:
                    mark = "ok " if row["correct"] else "MISS"
                    print(f"{mark} {request[:60]!r}: gold {gold}, chose {chosen}", file=sys.stderr)
            rows.append(row)
    finally:
        close = getattr(model, "close", None)
        if close:
            close()
    n = len(rows)
    sleuth_specs, _ = openai_tools(args.corpus, include=["search", "read"])
    summary: dict[str, Any] = {
        "tools_in_catalog": len(specs_all) + 2,
        "requests": n,
        "k": args.k,
        "method": args.method,
        f"retrieval_recall@{args.k}": round(sum(r["retrieved"] for r in rows) / n, 3),
        "spec_tokens_all_tools": count_tokens(specs_all + sleuth_specs),
        "spec_tokens_sent_mean": round(sum(count_tokens([s for s in specs_all + sleuth_specs
                                                          if s["function"]["name"] in r["offered"]]) for r in rows) / n),
    }
    if args.budget_tokens:
        summary["budget_tokens"] = args.budget_tokens
        summary["schema_tokens_max"] = max(r["schema_tokens"] for r in rows)
        summary["schema_tokens_mean"] = round(sum(r["schema_tokens"] for r in rows) / n)
        summary["schema_tokens_all_tools"] = schema_tokens(specs_all, counter)
        summary["sent_whole_mean"] = round(sum(len(r["offered"]) - 2 - bool(r["named"]) for r in rows) / n, 2)
        summary["tokenizer"] = counter.how if counter is not None else None
    if model is not None:
        summary["selection_accuracy"] = round(sum(r["correct"] for r in rows) / n, 3)
        summary["selection_accuracy_when_retrieved"] = round(
            sum(r["correct"] for r in rows if r["retrieved"]) / max(1, sum(r["retrieved"] for r in rows)), 3)
        summary["seconds_per_request"] = round(sum(r["seconds"] for r in rows) / n, 2)
        summary["model"] = args.model
    return {"summary": summary, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metatool", default=str(DEFAULT_METATOOL), help="MetaTool data folder.")
    parser.add_argument("--corpus", default=str(HERE / "corpus"), help="Documents for sleuth's search/read tools.")
    parser.add_argument("--model", default="local")
    parser.add_argument("--no-model", action="store_true", help="Measure tool retrieval only.")
    parser.add_argument("--limit", type=int, default=20, help="MetaTool requests to try (after 2 document requests).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-k", type=int, default=5, help="Catalog tools sent per request.")
    parser.add_argument("--method", default="bm25", help="Tool retrieval: bm25, dense, hybrid, llm-query.")
    parser.add_argument("--budget-tokens", type=int, default=None,
                        help="Hold the retrieved schemas to this many of the model's tokens.")
    parser.add_argument("--json", action="store_true", help="Print the summary and rows as JSON.")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not (Path(args.metatool) / "plugin_des.json").is_file():
        print(f"MetaTool data not found at {args.metatool} (pass --metatool DIR); nothing to run", file=sys.stderr)
        return 3
    out = run(args)
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out["summary"].items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
