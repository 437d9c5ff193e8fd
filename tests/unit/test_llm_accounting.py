"""Accounting: provider tokens, offline tiktoken fallback, litellm's price map, "unmeasured" for unpriced models."""

from __future__ import annotations

import os
import subprocess
import sys

from sleuth.llm import accounting
from sleuth.records import Usage


def test_provider_usage_is_used_and_priced_when_the_model_is_known():
    u = accounting.usage_from_response("gpt-4o-mini", {"prompt_tokens": 1000, "completion_tokens": 100},
                                       [{"role": "user", "content": "x"}], "y", priced_model="gpt-4o-mini")
    assert (u.prompt_tokens, u.completion_tokens, u.token_source, u.calls) == (1000, 100, "provider", 1)
    assert isinstance(u.cost, float) and u.cost > 0 and u.cost_complete


def test_unknown_model_is_unmeasured_not_zero():
    u = accounting.usage_from_response("openai/my-vllm-model", {"prompt_tokens": 5, "completion_tokens": 2}, [], "",
                                       priced_model="openai/my-vllm-model")
    assert u.cost == "unmeasured" and u.unpriced_calls == 1
    assert accounting.price("no-such-model-anywhere", 10, 10) is None
    mixed = u + accounting.usage_from_response("gpt-4o-mini", {"prompt_tokens": 5, "completion_tokens": 2}, [], "",
                                               priced_model="gpt-4o-mini")
    assert isinstance(mixed.cost, float) and not mixed.cost_complete and "unpriced" in mixed.cost_text()


def test_local_model_is_unpriced():
    u = accounting.usage_from_response("openai/local", {"prompt_tokens": 5, "completion_tokens": 2}, [], "")
    assert u.cost == "unmeasured"


def test_no_reported_usage_falls_back_to_tiktoken():
    msgs = [{"role": "user", "content": "Where is the Eiffel tower?"}]
    u = accounting.usage_from_response("openai/local", None, msgs, "In Paris.")
    assert u.token_source == "local_tokenizer" and u.completion_tokens == 3 and u.prompt_tokens > 5  # "In", " Paris", "."
    assert Usage.model_validate(u.model_dump()) == u


def test_count_tokens_matches_known_cl100k_and_o200k_counts():
    assert accounting.count_tokens("hello world") == 2
    assert accounting.count_tokens("hello world", "gpt-4o-mini") == 2
    assert accounting.encoding_for("openai/gpt-4o") == "o200k_base"
    assert accounting.count_tokens("") == 0


def test_tiktoken_dir_is_set_explicitly_without_importing_litellm():
    code = (
        "import os, sys\n"
        "from sleuth.llm import accounting\n"
        "n = accounting.count_tokens('hello world')\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
        "print(n, os.environ['TIKTOKEN_CACHE_DIR'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TIKTOKEN_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    n, path = out.stdout.split()
    assert n == "2" and path.endswith(os.path.join("litellm", "litellm_core_utils", "tokenizers"))


def test_usage_counter_is_the_one_counting_wrapper():
    from sleuth.llm.accounting import UsageCounter
    from sleuth.records import TraceEvent
    from sleuth.retrieval.sira import UsageTap
    from sleuth.tracing import MemoryTracer

    inner = MemoryTracer("run-7")
    counter = UsageCounter(inner)
    u = Usage.one_call(7, 3, None, "local_tokenizer")
    counter.record("llm", "agent", usage=u)
    counter.emit(TraceEvent(kind="tool", name="grep"))
    counter.record("note", "x")
    assert counter.run_id == "run-7" and [e.kind for e in inner.events] == ["llm", "tool", "note"]
    assert (counter.llm_calls, counter.tool_calls, counter.usage.total_tokens) == (1, 1, 10)
    dropped = UsageCounter(None)  # no inner tracer: events are counted, then dropped
    dropped.record("llm", "agent", usage=u)
    assert dropped.usage.prompt_tokens == 7 and dropped.run_id == ""
    assert UsageTap is UsageCounter  # SIRA's old name for it
