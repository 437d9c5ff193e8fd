"""How much does sleuth's `grep` tool add over raw `rg --json`?

Generates (once, then reuses) a corpus of N files totalling about N × doc_bytes bytes (default 100k files,
~1.05 GB), then times, for the same literal and regex patterns, interleaved and best of R runs:

* raw:   `rg --json PATTERN` with its output read whole by the caller (what any consumer of rg must do);
* raw>null: `rg --json PATTERN > /dev/null` (ripgrep alone, its output thrown away);
* tool:  sleuth's grep tool (argument validation, the rg subprocess, streamed JSON parsing of the first
         `max_matches` lines, byte-counting the rest, rendering the observation).

Prints one table with ratios tool/raw and tool/raw>null. Target: tool/raw <= 1.10.

    python benchmarks/grep_overhead.py [--docs 100000] [--doc-bytes 10500] [--dir /tmp/sleuth-grep-bench]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from sleuth.corpus import Corpus
from sleuth.rg import base_args, rg_version
from sleuth.tools import corpus_tools

PATTERNS = [
    ("literal, rare", "zephyrine", {"fixed_strings": True}),
    ("literal, common", "harbour", {"fixed_strings": True}),
    ("regex", r"ERROR \w+=\d+s", {}),
    ("regex, words", r"\b[a-z]{9} [a-z]{9}\b", {}),
]


def generate(root: Path, docs: int, doc_bytes: int, seed: int = 7) -> None:
    marker = root / ".sleuth-bench-complete"
    if marker.exists() and marker.read_text() == f"{docs} {doc_bytes} {seed} v2":
        return
    rng = np.random.default_rng(seed)
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "po", "ha", "bu", "ri", "str", "ing", "a", "e"]
    words = ["".join(rng.choice(syll, size=rng.integers(1, 6))) for _ in range(30_000)]
    vocab = np.array(words[:50] + ["harbour"] + words[50:])  # 'harbour': ~2.5% of lines
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    words_per_doc = doc_bytes // 7
    print(f"generating {docs} files of ~{doc_bytes} bytes in {root} ...", file=sys.stderr)
    for i in range(docs):
        d = root / f"d{i // 1000:03d}"
        if i % 1000 == 0:
            d.mkdir(parents=True, exist_ok=True)
        words = vocab[rng.choice(len(vocab), size=words_per_doc, p=weights)]
        lines = [" ".join(words[j : j + 14]) for j in range(0, len(words), 14)]
        if i % 97 == 0:
            lines.insert(len(lines) // 2, f"ERROR timeout={i % 60}s while reading zephyrine block {i}")
        elif i % 13 == 0:
            lines.insert(1, f"ERROR retry={i % 9}s")
        (d / f"doc{i}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    marker.write_text(f"{docs} {doc_bytes} {seed} v2")


def time_raw(root: Path, pattern: str, opts: dict, to_null: bool) -> float:
    cmd = base_args() + ["--json", "--case-sensitive"] + (["--fixed-strings"] if opts.get("fixed_strings") else [])
    cmd.append(f"--regexp={pattern}")
    t0 = time.perf_counter()
    if to_null:
        subprocess.run(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    else:  # a consumer that reads all of rg's output (and keeps none of it)
        proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        while proc.stdout.read(1 << 20):
            pass
        proc.wait()
    return time.perf_counter() - t0


def time_tool(tools, pattern: str, opts: dict) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = tools.invoke("grep", {"pattern": pattern, **opts})
    return time.perf_counter() - t0, out.text.splitlines()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=100_000)
    ap.add_argument("--doc-bytes", type=int, default=10_500)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/sleuth-grep-bench"))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    generate(a.dir, a.docs, a.doc_bytes)
    size = sum(f.stat().st_size for f in a.dir.rglob("*.txt"))
    tools = corpus_tools(Corpus(a.dir), grep_timeout=600)
    print(f"corpus: {a.docs} files, {size / 1e9:.2f} GB; ripgrep {'.'.join(map(str, rg_version()))}; "
          f"{os.cpu_count()} cores; best of {a.repeats}, interleaved, warm cache")
    for name, pattern, opts in PATTERNS:  # warm the page cache
        time_raw(a.dir, pattern, opts, True)
    print(f"{'pattern':<18} {'raw s':>8} {'raw>null s':>10} {'tool s':>8} {'tool/raw':>9} {'tool/null':>9}  result")
    worst = 0.0
    for name, pattern, opts in PATTERNS:
        raw, null, tool, head = [], [], [], ""
        for _ in range(a.repeats):
            raw.append(time_raw(a.dir, pattern, opts, False))
            null.append(time_raw(a.dir, pattern, opts, True))
            t, head = time_tool(tools, pattern, opts)
            tool.append(t)
        r, n, t = min(raw), min(null), min(tool)
        worst = max(worst, t / r)
        print(f"{name:<18} {r:8.3f} {n:10.3f} {t:8.3f} {t / r:9.3f} {t / n:9.3f}  {head}")
    print(f"worst tool/raw ratio: {worst:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
