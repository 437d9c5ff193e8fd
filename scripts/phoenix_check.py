"""Check what a running Arize Phoenix holds of a sleuth trace (not run in CI: Phoenix is a separate install).

    phoenix serve &                                   # in its own venv (pip install arize-phoenix)
    OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=sleuth sleuth ask "..." --otel-endpoint http://localhost:6006
    python scripts/phoenix_check.py --url http://localhost:6006 --project sleuth

Asks Phoenix's GraphQL API for the project's spans and prints, per trace, each span with its kind, parent,
tokens and whether Phoenix shows an input and an output; exits 1 when a model span has no tokens, a span's parent
is missing, or (with --content) a model span has no input or output. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request

QUERY = """query($name: String!) { projects(filter: {col: name, value: $name}) { edges { node { name traceCount
  tokenCountTotal spans(first: 1000) { edges { node { name spanKind parentId context { traceId spanId }
  tokenCountPrompt tokenCountCompletion cumulativeTokenCountTotal input { value } output { value }
  costSummary { total { cost } } } } } } } } }"""


def spans(url: str, project: str) -> list[dict]:
    body = json.dumps({"query": QUERY, "variables": {"name": project}}).encode()
    req = urllib.request.Request(url.rstrip("/") + "/graphql", data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        data = json.load(r)
    if data.get("errors"):
        raise SystemExit(f"Phoenix answered: {data['errors']}")
    edges = data["data"]["projects"]["edges"]
    if not edges:
        raise SystemExit(f"no project {project!r} in Phoenix at {url}")
    node = edges[0]["node"]
    print(f"project {node['name']}: {node['traceCount']} traces, {node['tokenCountTotal']} tokens")
    return [e["node"] for e in node["spans"]["edges"]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://localhost:6006")
    ap.add_argument("--project", default="default")
    ap.add_argument("--content", action="store_true", help="model spans must show an input and an output")
    args = ap.parse_args()
    all_spans = spans(args.url, args.project)
    ids = {s["context"]["spanId"]: s for s in all_spans}
    problems = []
    for trace in sorted({s["context"]["traceId"] for s in all_spans}):
        members = [s for s in all_spans if s["context"]["traceId"] == trace]
        print(f"\ntrace {trace}: {len(members)} spans")

        def depth(s: dict) -> int:
            n = 0
            while s.get("parentId") and s["parentId"] in ids:
                s, n = ids[s["parentId"]], n + 1
            return n

        for s in sorted(members, key=depth):
            cost = (s.get("costSummary") or {}).get("total", {}).get("cost")
            print(f"{'  ' * depth(s)}{s['name']} [{s['spanKind']}] tokens {s['tokenCountPrompt']}+"
                  f"{s['tokenCountCompletion']} (cumulative {s['cumulativeTokenCountTotal']}) cost {cost} "
                  f"input {'yes' if s['input'] else 'no'} output {'yes' if s['output'] else 'no'}")
            if s.get("parentId") and s["parentId"] not in ids:
                problems.append(f"{s['name']}: parent {s['parentId']} missing")
            if s["spanKind"] == "llm":
                if not s["tokenCountPrompt"]:
                    problems.append(f"{s['name']}: no prompt tokens")
                if args.content and not (s["input"] and s["output"]):
                    problems.append(f"{s['name']}: no input or output")
    for p in problems:
        print("problem:", p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
