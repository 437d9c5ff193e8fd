"""The GGUF file's own tokenizer (sleuth.llm.tokenizer) counts what the llama.cpp server counts."""

from __future__ import annotations

import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

from tests.conftest import shared_path

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["héllo wörld 日本語 \n\n  code_x = 1", "The quick brown fox", "<|im_start|>user", "  \t", "Ünïcödé — “quotes”",
         "def f(x):\n    return x ** 2  # square\n", "1234567890" * 20]


def test_gguf_tokenizer_counts_equal_the_servers_tokenize(local_model: Any) -> None:
    sys.path.insert(0, str(ROOT / "examples"))
    from tool_retrieval_agent import metatool_specs

    from sleuth.llm.tokenizer import counter_for

    counter = counter_for("local")
    assert counter.exact and "GGUF" in counter.how
    local_model.server.connect()
    state = local_model.server.read_state()
    texts = TEXTS + [json.dumps(s) for s in metatool_specs(shared_path("metatool"))]
    mismatched = []
    for text in texts:
        rq = urllib.request.Request(state["url"] + "/tokenize", data=json.dumps({"content": text}).encode(),
                                    headers={"Content-Type": "application/json",
                                             "Authorization": f"Bearer {state['token']}"})
        with urllib.request.urlopen(rq, timeout=30) as r:
            server = len(json.loads(r.read())["tokens"])
        if server != counter.count(text):
            mismatched.append((text[:40], server, counter.count(text)))
    assert not mismatched, mismatched
    assert len(texts) > 200
    # and the chat model counts with it, server or not
    assert local_model.count_tokens(texts[-1]) == counter.count(texts[-1])
