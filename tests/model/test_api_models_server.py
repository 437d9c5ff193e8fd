"""API models end to end against a real OpenAI-compatible server: the embedded llama.cpp server, started with
`sleuth model serve` in its own SLEUTH_HOME and then used exactly as a remote provider would be. The commands run
with another, empty SLEUTH_HOME (they know nothing of a local server), `--api-base http://127.0.0.1:PORT/v1
--model openai/local --api-key-env SRV_TOKEN`, the server's token in SRV_TOKEN: `ask`, `search --method sira`,
`search --rerank listwise`, `enrich` and `eval`, each one short call; then a wrong key, which the server refuses.
The fake-server version of the same calls (and of the failures) is tests/integration/test_cli_api_models.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import private_model

pytestmark = [pytest.mark.model, pytest.mark.slow]

SLEUTH = [sys.executable, "-m", "sleuth.cli.main"]
MODEL = "openai/local"  # the embedded server serves its model under the alias "local"


def run(
    *args: str, home: Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 900
) -> tuple[int, str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "SLEUTH_"))}
    full = {**base, "SLEUTH_HOME": str(home), "NO_COLOR": "1", **(env or {})}
    p = subprocess.run([*SLEUTH, *args], capture_output=True, text=True, env=full, timeout=timeout, cwd=cwd)
    return p.returncode, p.stdout, p.stderr


class Provider:
    def __init__(self, api_base: str, token: str, client_home: Path) -> None:
        self.api_base = api_base
        self.token = token
        self.client_home = client_home

    def flags(self) -> list[str]:
        return ["--model", MODEL, "--api-base", self.api_base, "--api-key-env", "SRV_TOKEN"]

    def env(self) -> dict[str, str]:
        return {"SRV_TOKEN": self.token}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """`sleuth model serve` in a private SLEUTH_HOME; yields its api_base and token, stops it after the module."""
    from sleuth.llm.local import LocalServer

    tmp = tmp_path_factory.mktemp("provider")
    spec, _ = private_model(tmp)
    server_home = tmp / "server_home"
    rc, out, err = run("model", "serve", "--model", spec, "--json", home=server_home, cwd=tmp, timeout=600)
    assert rc == 0, err
    status = json.loads(out)
    handle = LocalServer.handle(spec, home=server_home)
    token = handle.token
    assert status["running"] and status["healthy"] and token, status
    try:
        yield Provider(str(status["api_base"]), token, tmp / "client_home")
    finally:
        run("model", "stop", "--model", spec, home=server_home, cwd=tmp, timeout=60)


@pytest.fixture()
def corpus(sample_corpus: Path) -> Path:
    (sample_corpus / ".sleuth").mkdir(exist_ok=True)  # an indexed corpus: commands may build its indexes
    return sample_corpus


def test_ask(provider: Provider, corpus: Path, tmp_path: Path) -> None:
    rc, out, err = run("ask", "Who designed the Kestrel Bridge?", "-c", str(corpus), "--agent", "sira",
                       "--json", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env=provider.env())
    assert rc in (0, 3), err  # 3: the run ended without an answer (a 0.5B model may give none): the path worked
    data = json.loads(out)
    assert data["llm_calls"] >= 1 and data["usage"]["prompt_tokens"] > 0 and data["usage"]["completion_tokens"] > 0
    assert data["usage"]["token_source"] == "provider"  # counted by the server, as a remote provider counts them


def test_search_sira(provider: Provider, corpus: Path, tmp_path: Path) -> None:
    rc, out, err = run("search", "who designed the bridge over the river Vell", "-c", str(corpus), "--index",
                       "--method", "sira", "--k", "3", "--json", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env=provider.env())
    assert rc == 0, err
    data = json.loads(out)
    assert data["hits"] and data["sira"]["usage"]["calls"] >= 1 and data["sira"]["usage"]["prompt_tokens"] > 0


def test_rerank_listwise(provider: Provider, corpus: Path, tmp_path: Path) -> None:
    rc, out, err = run("search", "Kestrel Bridge designer", "-c", str(corpus), "--rerank", "listwise",
                       "--candidates", "3", "--k", "3", "--json", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env=provider.env())
    assert rc == 0, err
    data = json.loads(out)
    assert data["rerank"] == "listwise" and len(data["hits"]) == 3
    assert len({h["doc_id"] for h in data["hits"]}) == 3


def test_enrich(provider: Provider, corpus: Path, tmp_path: Path) -> None:
    rc, out, err = run("enrich", str(corpus), "--limit", "2", "--concurrency", "1", "--json", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env=provider.env())
    assert rc == 0, err
    rep = json.loads(out)
    assert rep["enriched_now"] == 2 and rep["errors"] == 0, rep


def test_eval(provider: Provider, tmp_path: Path) -> None:
    beir = tmp_path / "beir"
    (beir / "qrels").mkdir(parents=True)
    docs = [{"_id": "d1", "title": "Harbour", "text": "the harbour engineer built the sea wall in 1890"},
            {"_id": "d2", "title": "Bridge", "text": "the bridge over the river was designed by Okafor"}]
    (beir / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (beir / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "who built the sea wall"}) + "\n")
    (beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    rc, out, err = run("eval", "beir", "--data", str(beir), "--method", "sira", "--json", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env=provider.env())
    assert rc == 0, err
    data = json.loads(out)
    assert data["questions_ok"] == 1
    assert data["metrics"]["ndcg@10"] > 0


def test_a_wrong_key_is_the_servers_refusal_named(provider: Provider, corpus: Path, tmp_path: Path) -> None:
    rc, _, err = run("search", "who designed the bridge", "-c", str(corpus), "--method", "sira", *provider.flags(),
                       home=provider.client_home, cwd=tmp_path, env={"SRV_TOKEN": "not-the-token"})
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err, err
    assert lines[0].startswith("error (ModelAuthError") and provider.api_base in lines[0], err
    assert lines[-1].startswith("hint: ") and "--api-key-env" in lines[-1], err
    assert "not-the-token" not in err
