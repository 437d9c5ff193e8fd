"""Every script in examples/ is run here: the fast ones in CI, the ones that need the embedded model (or
../shared/data, or the attention extra) behind their markers."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO, private_model, shared_path

EXAMPLES = REPO / "examples"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(
    script: str, *args: str, timeout: int = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**(env or os.environ), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_every_example_is_exercised_here() -> None:
    tested = {"chat_assistant", "tool_retrieval_agent", "index_and_enrich", "hotpotqa_eval", "rerank_icr"}
    assert {p.stem for p in EXAMPLES.glob("*.py")} == tested


# --- fast (CI) ----------------------------------------------------------------------------------------------


def test_chat_assistant_loop_with_a_scripted_model(sample_corpus: Path) -> None:
    """The example's tool loop, driven by a scripted model (control flow only; the real model runs below)."""
    from sleuth.llm.fake import ScriptedModel
    from sleuth.tools import openai_tools

    chat = _load("chat_assistant")
    specs, dispatch = openai_tools(sample_corpus, include=["search", "grep", "read", "ls"])
    model = ScriptedModel([
        {"tool": "search", "arguments": {"query": "Kestrel Bridge designer", "k": 3}},
        {"tool": "read", "arguments": {"doc_id": "../outside.txt"}},  # a mistake: comes back as an observation
        {"tool": "final_answer", "arguments": {"answer": "Bram Okafor.", "doc_ids": ["projects/kestrel_bridge.txt"]}},
    ])
    messages = [{"role": "system", "content": chat.SYSTEM}, {"role": "user", "content": "Who designed it?"}]
    seen: list[str] = []
    answer = chat.answer_turn(model, messages, specs, dispatch, on_event=lambda n, a, c: seen.append(c))
    assert answer == "Bram Okafor. [projects/kestrel_bridge.txt]"
    assert "projects/kestrel_bridge.txt" in seen[0]
    assert "PathOutsideCorpusError" in seen[1]
    assert [m["role"] for m in messages] == [
        "system", "user", "assistant", "tool", "assistant", "tool", "assistant", "tool"
    ]
    # the model was shown sleuth's tools plus the answer tool
    assert {t["function"]["name"] for t in model.calls[0]["tools"]} == {"search", "grep", "read", "ls", "final_answer"}


def test_chat_assistant_stops_a_model_that_repeats_itself(sample_corpus: Path) -> None:
    from sleuth.llm.fake import ScriptedModel
    from sleuth.tools import openai_tools

    chat = _load("chat_assistant")
    specs, dispatch = openai_tools(sample_corpus, include=["search"])
    same = {"tool": "search", "arguments": {"query": "Kestrel Bridge", "k": 1}}
    model = ScriptedModel([same, same, {"tool": "final_answer", "arguments": {"answer": "Bram Okafor."}}])
    messages = [{"role": "user", "content": "Who designed the Kestrel Bridge?"}]
    assert chat.answer_turn(model, messages, specs, dispatch, max_steps=6) == "Bram Okafor."
    assert [t["function"]["name"] for t in model.calls[2]["tools"]] == ["final_answer"]  # only the answer is offered
    assert "already made this call" in messages[4]["content"]


def test_chat_assistant_bad_corpus_exits_2(tmp_path: Path) -> None:
    p = _run("chat_assistant.py", "--corpus", str(tmp_path / "missing"), "-q", "hi")
    assert p.returncode == 2 and "CorpusNotFoundError" in p.stderr


def test_index_and_enrich_without_a_model() -> None:
    p = _run("index_and_enrich.py", "--no-model")
    assert p.returncode == 0, p.stderr
    assert "BM25 index over 11 documents" in p.stdout
    assert "projects/kestrel_bridge.txt" in p.stdout and "reports/rv_gannet_log_2012.txt" in p.stdout
    assert "df: bridge=" in p.stdout


@pytest.mark.data
def test_tool_retrieval_agent_retrieval_only() -> None:
    data = shared_path("metatool")
    p = _run("tool_retrieval_agent.py", "--metatool", str(data), "--no-model", "--limit", "100", "--json")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)["summary"]
    assert summary["tools_in_catalog"] == 201 and summary["requests"] == 102
    assert 0.3 < summary["retrieval_recall@5"] <= 1.0
    assert summary["spec_tokens_sent_mean"] * 5 < summary["spec_tokens_all_tools"]


def test_tool_retrieval_agent_without_data_says_so(tmp_path: Path) -> None:
    p = _run("tool_retrieval_agent.py", "--metatool", str(tmp_path), "--no-model")
    assert p.returncode == 3 and "MetaTool data not found" in p.stderr


@pytest.mark.data
def test_hotpotqa_eval_retrieval_run(tmp_path: Path) -> None:
    data = shared_path("hotpotqa", "distractor_dev_reflexion100.jsonl")
    env_home = tmp_path / "home"
    p = subprocess.run(
        [sys.executable, str(EXAMPLES / "hotpotqa_eval.py"), "--data", str(data), "--limit", "3", "--out",
         str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=900, env={**os.environ, "SLEUTH_HOME": str(env_home)},
    )
    assert p.returncode == 0, p.stderr
    assert "retrieval (bm25): 3 questions" in p.stdout and "recall@10=" in p.stdout
    assert (tmp_path / "runs" / "report" / "report.md").is_file()
    rows = (tmp_path / "runs" / "retrieval-bm25" / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 3


# --- with the embedded model ---------------------------------------------------------------------------------


@pytest.mark.model
@pytest.mark.slow
def test_chat_assistant_with_the_local_model(sample_corpus: Path, tmp_path: Path) -> None:
    spec, env = private_model(tmp_path)
    p = _run("chat_assistant.py", "--corpus", str(sample_corpus), "--model", spec, "--max-steps", "4",
             "-q", "Who designed the Kestrel Bridge?", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "assistant> " in p.stdout
    assert "[search" in p.stderr or "[grep" in p.stderr or "[read" in p.stderr or "[ls" in p.stderr  # it used tools


@pytest.mark.model
@pytest.mark.data
@pytest.mark.slow
def test_tool_retrieval_agent_with_the_local_model(tmp_path: Path) -> None:
    spec, env = private_model(tmp_path)
    data = shared_path("metatool")
    p = _run("tool_retrieval_agent.py", "--metatool", str(data), "--model", spec, "--limit", "3", "--json", "--quiet",
             env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout)
    assert out["summary"]["requests"] == 5
    for row in out["rows"]:
        assert row["chosen"] in row["offered"]  # constrained to the specs that were sent


@pytest.mark.model
@pytest.mark.slow
def test_index_and_enrich_with_the_local_model(tmp_path: Path) -> None:
    spec, env = private_model(tmp_path)
    p = _run("index_and_enrich.py", "--model", spec, "--limit", "1", env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "SIRA enrichment: 1 documents enriched now" in p.stdout
    assert "sira 'who designed the longest bridge in Norvand'" in p.stdout


@pytest.mark.model
@pytest.mark.attention
@pytest.mark.slow
@pytest.mark.long  # ~40 s; ICR on the real model stays in CI through tests/model (test_rerank_local, test_icr_reference)
def test_rerank_icr() -> None:
    pytest.importorskip("transformers", reason="needs the `attention` extra")
    pytest.importorskip("xllamacpp", reason="needs the `local` extra (the GGUF weights)")
    p = _run("rerank_icr.py", "--depth", "4", timeout=1500)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "icr order" in p.stdout
    order = [line.split()[1] for line in p.stdout.split("icr order")[1].splitlines()[1:] if line.strip()[:1].isdigit()]
    assert len(order) == 4 and order[0] in ("people/bram_okafor.md", "projects/kestrel_bridge.txt")
