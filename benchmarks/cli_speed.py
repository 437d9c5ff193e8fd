"""CPU per call of `sleuth grep/read/ls/search/df`, as a shell-driven agent pays it (one process per step).

Runs each command as its own process (the console script's exact code: ``from sleuth.cli.entry import main``), with
peers in the same run, interleaved, best of R, and reads each child's user+sys CPU from ``getrusage``. Each command
runs twice: on its own (``SLEUTH_RESIDENT=0``) and answered by the resident process (``sleuth daemon start``, in a
temporary ``SLEUTH_HOME``), where the CPU is the client's (best of R) plus the resident process's own per call (its
user+sys from /proc over all R calls, divided by R). Peers:

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
import tempfile
import time
from pathlib import Path

from sleuth.rg import rg_binary

SLEUTH = [sys.executable, "-c", "from sleuth.cli.entry import main; main()"]


def sleuth_commands(corpus: str, doc: str) -> dict[str, list[str]]:
    return {
        "grep -F": [*SLEUTH, "grep", "-F", "diffusion tensor", "-c", corpus],
        "read": [*SLEUTH, "read", doc, "-c", corpus, "--lines", "1:5"],
        "ls": [*SLEUTH, "ls", "-c", corpus, "1000*"],
        "search (bm25)": [*SLEUTH, "search", "white matter in newborns", "-c", corpus, "--k", "10"],
        "search --json": [*SLEUTH, "search", "white matter in newborns", "-c", corpus, "--k", "10", "--json"],
        "df": [*SLEUTH, "df", "white matter", "tensor", "-c", corpus],
    }


def peers(corpus: str) -> dict[str, list[str]]:
    return {
        "peer: rg -F": [rg_binary(), "-F", "diffusion tensor", corpus],
        "peer: import bm25s": [sys.executable, "-c", "import bm25s"],
        "peer: python -c pass": [sys.executable, "-c", "pass"],
    }


def run_once(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(CPU user+sys, wall) of one child process, its output read and dropped."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, check=False, env=env)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):  # rg exits 1 on no match
        raise SystemExit(f"{cmd[:4]}... exited {proc.returncode}: {proc.stderr.decode()[-400:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall


def process_cpu(pid: int) -> float:
    """user+sys seconds of a running process and of its waited-for children (rg), from Linux /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True, help="a corpus folder with its BM25 index (sleuth index DIR)")
    ap.add_argument("--doc", default="10009203.txt", help="a document of it for `read`")
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    corpus = str(Path(args.corpus).resolve())
    from sleuth.cli import resident

    home = Path(tempfile.mkdtemp(prefix="sleuth-cli-speed-"))
    own_env = {**os.environ, "SLEUTH_RESIDENT": "0"}
    res_env = {**os.environ, "SLEUTH_HOME": str(home), "SLEUTH_RESIDENT": "1"}
    st = resident.start(idle_s=600, home=home)
    try:
        rows = sleuth_commands(corpus, args.doc)
        runs: dict[str, tuple[list[str], dict[str, str] | None]] = {}
        for name, cmd in rows.items():
            runs[name] = (cmd, own_env)
            runs[name + " (daemon)"] = (cmd, res_env)
        for name, cmd in peers(corpus).items():
            runs[name] = (cmd, None)
        for cmd, env in runs.values():  # warm the page cache, the index-check record, the manifest, the daemon
            run_once(cmd, env)
        best: dict[str, tuple[float, float]] = {}
        server_cpu = {name: 0.0 for name in runs}
        for _ in range(args.repeat):
            for name, (cmd, env) in runs.items():  # interleaved: a burst of load hits every command alike
                s0 = process_cpu(st["pid"])
                cpu, wall = run_once(cmd, env)
                server_cpu[name] += process_cpu(st["pid"]) - s0
                old = best.get(name)
                best[name] = (min(cpu, old[0]), min(wall, old[1])) if old else (cpu, wall)
    finally:
        resident.stop(home)
    rg_cpu, bm25s_cpu, py_cpu = (best[k][0] for k in ("peer: rg -F", "peer: import bm25s", "peer: python -c pass"))
    print(f"{platform.node()} {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"python {platform.python_version()}; load average before/after: {LOAD0} / {os.getloadavg()}")
    print(f"corpus {corpus}; best of {args.repeat}, interleaved; (daemon) = client + resident process per call")
    print(f"{'command':<25} {'CPU s':>7} {'client':>7} {'daemon':>7} {'wall s':>7} {'/ rg':>6} {'/ import bm25s':>15}")
    for name, (cpu, wall) in best.items():
        daemon = server_cpu[name] / args.repeat if name.endswith("(daemon)") else 0.0
        total = cpu + daemon
        print(f"{name:<25} {total:7.3f} {cpu:7.3f} {daemon:7.3f} {wall:7.3f} {total / max(rg_cpu, 1e-3):6.1f} "
              f"{total / bm25s_cpu:15.2f}")
    print(f"python -c pass: {py_cpu:.3f} s CPU")


LOAD0 = os.getloadavg()

if __name__ == "__main__":
    main()
