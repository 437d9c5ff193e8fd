"""Index lifecycle with real processes: two builders of one index build it once, a killed builder's temp folder is
removed by the next build (a live one's is spared), the lock times out with a typed error, one sweeper rule, and
the same stale-index rule for BM25, df, the CLI and dense."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import IndexBusyError, IndexMissingError, StaleIndexError
from sleuth.fsutil import leftover_is_dead, owner_tag, sweep_stale_builds
from sleuth.retrieval.bm25 import BM25Index
from sleuth.retrieval.index_store import lock_path, sweep_leftovers

REPO = Path(__file__).resolve().parents[2]


def _corpus(root: Path, n: int = 60) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"d{i:03d}.txt").write_text(
            f"document {i} on heart failure, blood pressure and topic{i % 9} with insulin{i % 4}", encoding="utf-8"
        )
    return root


def _slow_reads(delay: str) -> None:
    """In a child process: every document the BM25 builder reads takes ``delay`` seconds."""
    from sleuth.retrieval import bm25_build

    real = bm25_build.iter_texts

    def slow(corpus, doc_ids):  # type: ignore[no-untyped-def]
        for t in real(corpus, doc_ids):
            time.sleep(float(delay))
            yield t

    bm25_build.iter_texts = slow  # type: ignore[assignment]


def child_open(root: str, go: str, delay: str) -> None:
    """Wait for ``go`` to exist, then open (building if needed) the corpus's BM25 index, each document read taking
    ``delay`` seconds (so two builders overlap); print what happened."""
    _slow_reads(delay)
    while not Path(go).exists():
        time.sleep(0.01)
    index = BM25Index.open(Corpus(root))
    print(json.dumps({"status": index.status, "built_at": index.meta["built_at"], "n": index.n_docs}), flush=True)


def child_build(root: str, delay: str) -> None:
    """Rebuild the corpus's BM25 index directly (``build_corpus``: no open), each document taking ``delay`` s."""
    from sleuth.retrieval import bm25_build

    _slow_reads(delay)
    bm25_build.build_corpus(Corpus(root))


def _spawn(func: str, *args: str, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "SLEUTH_HOME": str(home)}
    code = f"import sys; from tests.unit.test_index_lifecycle import {func}; {func}(*sys.argv[1:])"
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=REPO)


def _leftovers(state: Path) -> list[Path]:
    return [p for p in state.iterdir() if p.name.startswith((".bm25.building.", ".bm25.old."))]


def test_two_processes_opening_a_missing_index_build_it_once(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "c")
    go = tmp_path / "go"
    procs = [_spawn("child_open", str(root), str(go), "0.02", home=tmp_path / "h") for _ in range(2)]
    time.sleep(3)  # both children imported and waiting
    go.touch()
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-2000:]
        outs.append(json.loads(out.strip().splitlines()[-1]))
    statuses = sorted(o["status"] for o in outs)
    assert statuses == ["built", "up to date (built by another process)"], statuses
    assert outs[0]["built_at"] == outs[1]["built_at"]  # one build, used by both
    assert BM25Index.load(root / ".sleuth" / "bm25").n_docs == 60
    assert not _leftovers(root / ".sleuth")


def test_killed_builder_is_cleaned_at_once_and_a_live_one_spared(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "c", 200)
    go = tmp_path / "go"
    go.touch()
    proc = _spawn("child_open", str(root), str(go), "0.05", home=tmp_path / "h")  # a ~10 s build
    state = root / ".sleuth"
    deadline = time.time() + 120
    while time.time() < deadline and not (state.is_dir() and _leftovers(state)):
        time.sleep(0.05)
    try:
        (folder,) = _leftovers(state)
        assert f".p{proc.pid}h" in folder.name
        # a live build: its folder is spared by every sweep, and a second builder waits for it (here: gives up)
        assert not leftover_is_dead(folder)
        assert sweep_leftovers(state / "bm25") == 0 and folder.exists()
        with pytest.raises(IndexBusyError, match="another process"):
            BM25Index.open(Corpus(root), lock_timeout=0.5)
        with pytest.raises(IndexMissingError):  # a reader that may not build never waits
            BM25Index.open(Corpus(root), build_missing=False)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert folder.exists()  # the killed build's leftover (120 MB -> 395 MB over 10 kills, in the report)
    index = BM25Index.open(Corpus(root))
    assert index.status == "built" and index.n_docs == 200
    assert not folder.exists() and not _leftovers(state)


def test_killed_builder_leftover_is_swept_by_a_plain_open(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "c", 200)
    BM25Index.open(Corpus(root))
    (root / "d000.txt").write_text("changed", encoding="utf-8")
    os.utime(root / "d000.txt", (time.time() + 5, time.time() + 5))
    proc = _spawn("child_build", str(root), "0.05", home=tmp_path / "h")
    state = root / ".sleuth"
    deadline = time.time() + 120
    while time.time() < deadline and not _leftovers(state):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert len(_leftovers(state)) == 1
    with pytest.raises(StaleIndexError):  # the old index is intact, and stale; opening it swept the leftover
        BM25Index.open(Corpus(root))
    assert not _leftovers(state)


def test_one_sweeper_rule(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = owner_tag().split("h", 1)[1]
        names = {
            "dead": f".x.building.p{dead.pid}h{host}.abc",
            "live": f".x.building.p{live.pid}h{host}.abc",
            "mine": f".x.building.{owner_tag()}.abc",
            "other_host": f".x.building.p{dead.pid}h000000.abc",
            "legacy_young": ".x.building.abc123",
            "legacy_old": ".x.old.abc123",
            "other_index": f".y.building.p{dead.pid}h{host}.abc",
        }
        for n in names.values():
            (tmp_path / n).mkdir()
        old = time.time() - 7200
        os.utime(tmp_path / names["legacy_old"], (old, old))
        assert sweep_stale_builds(tmp_path, "x") == 2  # not holding the lock: dead pid, and the hour-old legacy one
        assert not (tmp_path / names["dead"]).exists() and not (tmp_path / names["legacy_old"]).exists()
        for k in ("live", "mine", "other_host", "legacy_young", "other_index"):
            assert (tmp_path / names[k]).exists(), k
        # holding the lock: every tagged leftover of this index is dead (its builder would hold the lock);
        # untagged ones (an older sleuth, which took no lock) still get the hour
        assert sweep_stale_builds(tmp_path, "x", locked=True) == 3
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".x.")] == [names["legacy_young"]]
        assert (tmp_path / names["other_index"]).exists()
    finally:
        live.kill()
        live.wait()


def test_stale_rule_is_the_same_for_open_df_search_and_index(tmp_path: Path) -> None:
    root = _corpus(tmp_path / "c", 10)
    BM25Index.open(Corpus(root))
    (root / "d001.txt").write_text("zebrafish regenerate hearts", encoding="utf-8")
    os.utime(root / "d001.txt", (time.time() + 5, time.time() + 5))
    with pytest.raises(StaleIndexError, match="corpus changed") as e:
        BM25Index.open(Corpus(root))
    assert f"update it with `sleuth index {root}` (only added and changed documents are read" in e.value.hint
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SLEUTH_HOME": str(tmp_path / "h")}
    cli = [sys.executable, "-m", "sleuth.cli.main"]
    for args in (["df", "zebrafish", "--corpus", str(root)], ["search", "zebrafish", "--corpus", str(root)]):
        proc = subprocess.run([*cli, *args, "--json"], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode != 0 and json.loads(proc.stdout)["error"] == "StaleIndexError", proc.stdout
    proc = subprocess.run([*cli, "index", str(root), "--json"], capture_output=True, text=True, env=env, timeout=300)
    status = json.loads(proc.stdout)["status"]  # only the changed document is read again
    assert status.startswith("updated (0 added, 1 changed, 0 removed; 9 unchanged"), proc.stdout + proc.stderr
    proc = subprocess.run([*cli, "df", "zebrafish", "--corpus", str(root), "--json"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert json.loads(proc.stdout)["terms"][0]["df"] == 1
    proc = subprocess.run([*cli, "index", str(root), "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert json.loads(proc.stdout)["status"] == "up to date"
    proc = subprocess.run([*cli, "index", str(root), "--rebuild", "--json"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert json.loads(proc.stdout)["status"] == "rebuilt (--rebuild)"
    assert lock_path(root / ".sleuth" / "bm25").parent == root / ".sleuth"


def test_dense_index_uses_the_same_lifecycle(tmp_path: Path) -> None:
    from sleuth.retrieval.dense import DenseIndex
    from tests.unit.test_index_corruption import HashEmbedder

    root = _corpus(tmp_path / "c", 10)
    emb = HashEmbedder()
    assert DenseIndex.open(Corpus(root), emb).status == "built"
    assert DenseIndex.open(Corpus(root), emb).status == "up to date"
    (root / "d001.txt").write_text("zebrafish regenerate hearts", encoding="utf-8")
    os.utime(root / "d001.txt", (time.time() + 5, time.time() + 5))
    with pytest.raises(StaleIndexError, match=r"dense index at .* is stale: the corpus changed") as e:
        DenseIndex.open(Corpus(root), emb)
    assert "--method dense --rebuild" in e.value.hint
    assert DenseIndex.open(Corpus(root), emb, rebuild=True).status == "rebuilt (the corpus changed)"
    other = HashEmbedder()
    other.name = "another-embedder"
    with pytest.raises(StaleIndexError, match="embedder"):
        DenseIndex.open(Corpus(root), other)
    # a dead dense builder's leftover goes at the next open, as for BM25
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = root / ".sleuth" / f".dense.building.p{dead.pid}h{owner_tag().split('h', 1)[1]}.zz"
    left.mkdir()
    DenseIndex.open(Corpus(root), emb)
    assert not left.exists()
