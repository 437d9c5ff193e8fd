"""Shared fixtures: the bundled sample corpus, temporary corpora, and ../shared/data (skipped when absent)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CORPUS = REPO / "examples" / "corpus"
SHARED_DATA = Path(os.environ.get("SLEUTH_SHARED_DATA", REPO.parent / "shared" / "data"))
FIXTURES = Path(__file__).resolve().parent / "fixtures"

# Six short medical (and one code) documents the BM25 tests and the index-corruption tests both index; each adds
# its own g.txt.
MEDICAL_DOCS = {
    "a.txt": "The heart pumps blood through arteries and veins. Cardiac output rises with exercise.",
    "b.txt": "Heart failure reduces cardiac output; patients with heart failure tire quickly.",
    "c.txt": "Insulin regulates blood glucose. Diabetes mellitus is a failure of insulin signalling.",
    "d.txt": "C++ templates (and regex like a|b*) are not biology at all.",
    "sub/e.txt": "Arteries harden with age: atherosclerosis narrows arteries and raises blood pressure.",
    "sub/f.txt": "Exercise improves insulin sensitivity and lowers blood pressure in older adults.",
}

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture()
def sample_corpus(tmp_path: Path) -> Path:
    """A private copy of examples/corpus (tests may build indexes in it)."""
    dest = tmp_path / "corpus"
    shutil.copytree(SAMPLE_CORPUS, dest, ignore=shutil.ignore_patterns(".sleuth"))
    return dest


@pytest.fixture()
def make_corpus(tmp_path: Path):
    """make_corpus({"a.txt": "text", "sub/b.md": "..."}) -> a corpus folder."""

    def make(files: dict[str, str | bytes], name: str = "c") -> Path:
        root = tmp_path / name
        for rel, content in files.items():
            p = root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content, encoding="utf-8")
        root.mkdir(exist_ok=True)
        return root

    return make


def shared_path(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"shared evaluation data not present: {p} (set SLEUTH_SHARED_DATA or place ../shared/data)")
    return p


@pytest.fixture()
def shared_data() -> Path:
    return shared_path()


TRACE_QUESTION = "Where was the designer of the Kestrel Bridge born?"
TRACE_OKAFOR = "people/bram_okafor.md"


@pytest.fixture()
def react_trace(sample_corpus: Path, tmp_path: Path):
    """``react_trace(answer)`` -> the JSONL trace of a scripted react run over the sample corpus: grep, an
    unknown tool, read, answer (run id ``run-1``)."""

    def make(answer: str = "Saltmarsh") -> Path:
        from sleuth.agents import Agent, AgentConfig
        from sleuth.corpus import Corpus
        from sleuth.llm.fake import ScriptedModel, tool
        from sleuth.tools import corpus_tools

        corpus = Corpus(sample_corpus)
        model = ScriptedModel([
            tool("grep", pattern="Kestrel"), tool("nope"), tool("read", doc_id=TRACE_OKAFOR),
            tool("answer", answer=answer, doc_ids=[TRACE_OKAFOR]),
        ])
        agent = Agent(AgentConfig(model=model, toolkit=corpus_tools(corpus), corpus=corpus), agent="react")
        path = tmp_path / "run.jsonl"
        agent.run(TRACE_QUESTION, trace=path, run_id="run-1")
        return path

    return make


@pytest.fixture(scope="module")
def app():
    """The ``sleuth`` typer app with every command group registered (for CliRunner)."""
    from sleuth.cli import main as cli_main

    cli_main.register_all()
    return cli_main.app


def private_model(tmp_path: Path) -> tuple[str, dict[str, str]]:
    """A model spec and environment that give the code under test its own embedded llama.cpp server (weights from
    the normal cache, server state in a private SLEUTH_HOME), so it does not queue behind the shared server.
    Skips without the `local` extra or the weights."""
    pytest.importorskip("xllamacpp", reason="needs the `local` extra")
    from sleuth.errors import WeightsError
    from sleuth.llm.weights import DEFAULT_WEIGHTS, ensure_weights

    try:
        weights = ensure_weights(DEFAULT_WEIGHTS)
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    env = {**os.environ, "SLEUTH_HOME": str(tmp_path / "sleuth_home"), "SLEUTH_SERVER_LINGER": "1"}
    return f"gguf:{weights}", env
