"""The one-shot commands' import discipline (#18): `sleuth grep/read/ls/search/df` answer without importing numba,
bm25s, scipy, torch, litellm or any framework. Checked from the modules a real CLI process holds at exit, never by
timing (the CPU figures are benchmarks/cli_speed.py's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from sleuth.cli import main as cli_main
from tests.conftest import MEDICAL_DOCS

HEAVY = ("numba", "bm25s", "scipy", "torch", "litellm", "transformers", "sentence_transformers", "langchain_core",
         "llama_index", "mcp", "opentelemetry", "usearch")

# the console script's call, then the modules it imported (stderr's last line)
SCRIPT = """
import json, sys
from sleuth.cli.main import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
sys.stderr.write("\\nMODULES " + json.dumps({"code": code, "modules": sorted(sys.modules)}) + "\\n")
"""


def run_cli(*args: str) -> tuple[int, str, set[str]]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=120)
    last = proc.stderr.rstrip().splitlines()[-1]
    assert last.startswith("MODULES "), proc.stderr[-2000:]
    info = json.loads(last[len("MODULES "):])
    return info["code"], proc.stdout, set(info["modules"])


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.fixture()
def indexed(make_corpus) -> Path:
    from sleuth.corpus import Corpus
    from sleuth.retrieval.bm25 import BM25Index

    root = make_corpus(MEDICAL_DOCS)
    BM25Index.open(Corpus(root))  # built (and checked) here, in the test process
    return root


def test_one_shot_commands_import_no_heavy_module(indexed: Path) -> None:
    c = str(indexed)
    code, out, mods = run_cli("search", "heart failure", "-c", c, "--k", "3", "--json")
    assert code == 0 and json.loads(out)["hits"][0]["doc_id"] == "b.txt"
    assert heavy_in(mods) == [] and "sleuth.retrieval._bm25_kernels" not in mods
    code, out, mods = run_cli("df", "heart", "blood pressure", "-c", c, "--json")
    terms = json.loads(out)["terms"]
    assert code == 0 and [t["df"] for t in terms] == [2, 2] and terms[1]["method"] == "token_ngram"
    assert heavy_in(mods) == []
    for args, expect in ((("grep", "-F", "insulin", "-c", c), "c.txt"), (("read", "a.txt", "-c", c), "arteries"),
                         (("ls", "-c", c), "sub/e.txt")):
        code, out, mods = run_cli(*args)
        assert code == 0 and expect in out, (args, out)
        assert heavy_in(mods) == [] and "numpy" not in mods, args
        # only the named command's module is registered
        assert "sleuth.cli.search_cmds" not in mods and "sleuth.cli.eval_cmds" not in mods


def test_fast_path_still_detects_a_stale_index(indexed: Path) -> None:
    (indexed / "a.txt").write_text("The heart was rewritten after the index was built.", encoding="utf-8")
    code, out, mods = run_cli("search", "heart", "-c", str(indexed), "--json")
    assert code == 2 and json.loads(out)["error"] == "StaleIndexError"
    assert heavy_in(mods) == []
    code, out, _ = run_cli("search", "heart", "-c", str(indexed), "--rebuild", "--json")  # updated in place
    assert code == 0 and "a.txt" in [h["doc_id"] for h in json.loads(out)["hits"]]


def test_errors_and_help_are_unchanged(indexed: Path) -> None:
    code, out, _ = run_cli("search", "  ", "-c", str(indexed), "--json")
    assert code == 2 and json.loads(out)["error"] == "ToolArgumentError"
    code, out, mods = run_cli("--help")  # the root help lists every command: all modules registered
    assert code == 0 and all(name in out for name in cli_main.COMMANDS)
    assert "sleuth.cli.eval_cmds" in mods
    code, out, _ = run_cli("nosuch")
    assert code == 2


def test_the_command_map_matches_what_each_module_registers() -> None:
    import importlib

    found: dict[str, str] = {}
    for name in cli_main.COMMAND_MODULES:
        app = typer.Typer()
        importlib.import_module(name).register(app)
        for cmd in app.registered_commands:
            found[str(cmd.name)] = name
        for group in app.registered_groups:
            found[str(group.name)] = name
    assert found == cli_main.COMMANDS
    assert set(found) >= cli_main.ONE_SHOT_COMMANDS
