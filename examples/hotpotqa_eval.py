"""A HotpotQA evaluation run with `sleuth eval hotpotqa`, then a report comparing the runs.

Two systems on the same questions:

* retrieval only (no model): BM25 over the pooled paragraphs of every question; recall of the supporting
  paragraphs at 5/10 and ranking metrics. Seconds.
* with ``--agent react`` (or router, sira, iter-retgen) and a model: the agent answers; official HotpotQA EM/F1,
  supporting paragraphs found, evidence read, tokens and cost per question. Minutes per question on the embedded
  model on a 2-core CPU, so keep ``--limit`` small.

Runs are resumable (``--resume``) and each writes ``rows.jsonl`` + ``manifest.json`` under ``--out``; `sleuth eval
report` compares them in Markdown and a self-contained HTML page.

    python examples/hotpotqa_eval.py --limit 20                       # retrieval only
    python examples/hotpotqa_eval.py --limit 2 --agent react          # + the agent with the embedded model

Data: ../shared/data/hotpotqa/distractor_dev_reflexion100.jsonl by default (100 official dev questions, MIT);
any official distractor JSON/JSONL or IRCoT-style JSONL works with --data. Exits with status 3 when absent.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parent.parent / "shared" / "data" / "hotpotqa" / "distractor_dev_reflexion100.jsonl"


def sleuth(*args: str) -> dict[str, Any]:
    exe = shutil.which("sleuth", path=str(Path(sys.executable).parent)) or "sleuth"
    proc = subprocess.run([exe, *args, "--json"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"`sleuth {' '.join(args)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--out", default="eval-runs/example-hotpotqa", help="Folder for the runs and the report.")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--method", default="bm25", help="Retrieval method for the retrieval-only run.")
    parser.add_argument("--agent", default=None, help="Also run this agent (react, router, sira, iter-retgen).")
    parser.add_argument("--model", default="local")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        print(f"HotpotQA data not found at {args.data} (pass --data); nothing to run", file=sys.stderr)
        return 3
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = []
    common = ["--data", args.data, "--limit", str(args.limit)]

    retrieval_dir = out / f"retrieval-{args.method}"
    res = sleuth("eval", "hotpotqa", *common, "--method", args.method, "--out", str(retrieval_dir),
                 *(["--resume"] if (retrieval_dir / "manifest.json").exists() else []))
    runs.append(retrieval_dir)
    print(f"retrieval ({args.method}): {res['questions_ok']} questions, "
          + ", ".join(f"{k}={v:.3f}" for k, v in sorted(res["metrics"].items()) if isinstance(v, float)))

    if args.agent:
        agent_dir = out / f"agent-{args.agent}"
        res = sleuth("eval", "hotpotqa", *common, "--agent", args.agent, "--model", args.model, "--out",
                     str(agent_dir), *(["--resume"] if (agent_dir / "manifest.json").exists() else []))
        runs.append(agent_dir)
        print(f"agent ({args.agent}, {args.model}): {res['questions_ok']} questions, "
              + ", ".join(f"{k}={v:.3f}" for k, v in sorted(res["metrics"].items()) if isinstance(v, float)))

    report = sleuth("eval", "report", *map(str, runs), "--out", str(out / "report"))
    print(f"report: {report['paths']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
