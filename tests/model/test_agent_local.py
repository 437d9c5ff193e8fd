"""`sleuth ask` with the real embedded model on the bundled sample corpus: a two-hop question (the Kestrel Bridge
-> its designer Bram Okafor -> born in Saltmarsh), answered, with a trace whose token counts are the server's.
Iter-RetGen's separate-call form, whose answer call cites doc ids (the paper's form: test_iter_retgen_local.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.tracing.show import load_events, summarize

pytestmark = pytest.mark.model

QUESTION = "Where was the designer of the Kestrel Bridge born?"


def test_ask_two_hop_with_local_model(sample_corpus: Path, tmp_path: Path) -> None:
    from sleuth.errors import WeightsError
    from sleuth.llm.weights import DEFAULT_WEIGHTS, ensure_weights

    try:
        ensure_weights(DEFAULT_WEIGHTS)
    except WeightsError as e:
        pytest.skip(f"embedded model weights not installed: {e}")
    trace = tmp_path / "ask.jsonl"
    cmd = [
        sys.executable, "-m", "sleuth.cli.main", "ask", QUESTION, "--corpus", str(sample_corpus),
        "--agent", "iter-retgen", "--iter-retgen-answer", "separate-call", "--k", "3", "--model", "local", "--index",
        "--trace", str(trace),
        "--checkpoint", str(tmp_path / "runs.sqlite"), "--json",
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=840)  # ~1 min on a quiet machine
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert "saltmarsh" in out["answer"].lower(), out
    assert "people/bram_okafor.md" in out["doc_ids"]
    assert out["trace"] == str(trace)
    events = load_events(trace)
    llm = [e for e in events if e.kind == "llm"]
    assert len(llm) == out["llm_calls"] == 3  # T=3: two drafts and the answer
    # every LLM event carries the server's own usage numbers, and the run's totals are their sum
    assert all(e.usage is not None and e.usage.token_source == "provider" for e in llm)
    assert all(e.usage.prompt_tokens > 0 and e.usage.completion_tokens > 0 for e in llm)
    totals = summarize(events)["usage"]
    assert out["usage"]["prompt_tokens"] == totals["prompt_tokens"] == sum(e.usage.prompt_tokens for e in llm)
    assert out["usage"]["completion_tokens"] == totals["completion_tokens"]
    assert out["usage"]["cost"] == "unmeasured"  # a local model has no price, never a silent 0
