"""CPU per call of `sleuth grep/read/ls/search/df`, as a shell-driven agent pays it (one process per step).

Runs each command as its own process (the console script's exact code: ``from sleuth.cli.main import main``), with
peers in the same run, interleaved, best of R, and reads each child's user+sys CPU from ``getrusage``:

* raw ``rg``: ripgrep alone on the same literal (what `sleuth grep` wraps);
* ``python -c "import bm25s"``: the import alone that a bm25s-based CLI pays before its first query;
* ``python -c pass``: the interpreter's own start.

Prints one table: CPU and wall per call (best of R), and CPU as a ratio of each peer. Target: every command under
0.3 s of CPU on SciFact (5,183 documents, the BM25 index built).

    PYTHONPATH=src python benchmarks/cli_speed.py --corpus DIR [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from sleuth.rg import rg_binary

SLEUTH = [sys.executable, "-c", "from sleuth.cli.main import main; main()"]


def commands(corpus: str, doc: str) -> dict[str, list[str]]:
    return {
        "grep -F": [*SLEUTH, "grep", "-F", "diffusion tensor", "-c", corpus],
        "read": [*SLEUTH, "read", doc, "-c", corpus, "--lines", "1:5"],
        "ls": [*SLEUTH, "ls", "-c", corpus, "1000*"],
        "search (bm25)": [*SLEUTH, "search", "white matter in newborns", "-c", corpus, "--k", "10"],
        "search --json": [*SLEUTH, "search", "white matter in newborns", "-c", corpus, "--k", "10", "--json"],
        "df": [*SLEUTH, "df", "white matter", "tensor", "-c", corpus],
        "peer: rg -F": [rg_binary(), "-F", "diffusion tensor", corpus],
        "peer: import bm25s": [sys.executable, "-c", "import bm25s"],
        "peer: python -c pass": [sys.executable, "-c", "pass"],
    }


def run_once(cmd: list[str]) -> tuple[float, float]:
    """(CPU user+sys, wall) of one child process, its output read and dropped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # rg exits 1 on no match
        raise SystemExit(f"{cmd[:4]}... exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="a corpus folder with its BM25 index (sleuth index DIR)")
    ap.add_argument("--doc", default="10009203.txt", help="a document of it for `read`")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    corpus = str(Path(args.corpus).resolve())
    cmds = commands(corpus, args.doc)
    for cmd in cmds.values():  # warm the page cache, the index-check record and the manifest once
        run_once(cmd)
    best: dict[str, tuple[float, float]] = {}
    for _ in range(args.repeat):
        for name, cmd in cmds.items():  # interleaved: a burst of load hits every command alike
            cpu, wall = run_once(cmd)
            old = best.get(name)
            best[name] = (min(cpu, old[0]), min(wall, old[1])) if old else (cpu, wall)
    rg_cpu, bm25s_cpu, py_cpu = (best[k][0] for k in ("peer: rg -F", "peer: import bm25s", "peer: python -c pass"))
    print(f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; load average before/after: {LOAD0} / {os.getloadavg()}")
    print(f"corpus {corpus}; best of {args.repeat}, interleaved")
    print(f"{'command':<22} {'CPU s':>7} {'wall s':>7} {'/ rg':>7} {'/ import bm25s':>15} {'/ python':>9}")
    for name, (cpu, wall) in best.items():
        print(f"{name:<22} {cpu:7.3f} {wall:7.3f} {cpu / max(rg_cpu, 1e-3):7.1f} {cpu / bm25s_cpu:15.2f} "
              f"{cpu / max(py_cpu, 1e-3):9.1f}")


LOAD0 = os.getloadavg()

if __name__ == "__main__":
    main()
