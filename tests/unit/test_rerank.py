"""Rerankers' control flow and parsing with the scripted model: permutation repair, sliding windows, FIRST's
logprob ranking and fallback, bad input, the registry and the ICR extra check."""

from __future__ import annotations

import builtins
import sys

import pytest

from sleuth.errors import ConfigError, ContextOverflowError, MissingExtraError, ToolArgumentError
from sleuth.llm.base import ChatResult, TokenLogprob
from sleuth.llm.fake import ScriptedModel
from sleuth.records import Hit
from sleuth.rerank import Reranker, get_reranker
from sleuth.rerank.common import parse_permutation, sliding_rerank, truncate, windows
from sleuth.rerank.first import FirstReranker, letter_scores
from sleuth.rerank.listwise import ListwiseReranker
from sleuth.tracing.tracer import MemoryTracer


def hits(n: int) -> list[Hit]:
    return [Hit(doc_id=f"d{i}", text=f"passage number {i}", score=float(100 - i)) for i in range(n)]


class LogprobModel(ScriptedModel):
    """ScriptedModel that also passes ChatResult items through (to script log-probabilities)."""

    def _to_result(self, item, messages):  # type: ignore[override]
        if isinstance(item, ChatResult):
            return item
        return super()._to_result(item, messages)


def first_token(top: dict[str, float]) -> ChatResult:
    tok = max(top, key=top.get)
    return ChatResult(content=tok, logprobs=[TokenLogprob(token=tok, logprob=top[tok], top=top)])


# --- permutation parsing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "n", "order", "missing", "repeated", "invented"),
    [
        ("[3] > [1] > [2]", 3, [2, 0, 1], 0, 0, 0),
        ("[2] > [2] > [1] > [3]", 3, [1, 0, 2], 0, 1, 0),  # repeated
        ("[2]", 3, [1, 0, 2], 2, 0, 0),  # missing ones follow in input order
        ("[9] > [0] > [1] > [3] > [2]", 3, [0, 2, 1], 0, 0, 2),  # invented identifiers dropped
        ("3 > 1, 2", 3, [2, 0, 1], 0, 0, 0),  # no brackets
        ("I think passage [2] is best, then [1].", 3, [1, 0, 2], 1, 0, 0),
        ("123456789", 3, [0, 1, 2], 3, 0, 1),  # a long digit run is no identifier
    ],
)
def test_parse_permutation_repairs(text, n, order, missing, repeated, invented):
    got, rep = parse_permutation(text, n)
    assert got == order
    assert sorted(got) == list(range(n))
    assert (rep.missing, rep.repeated, rep.invented) == (missing, repeated, invented)


@pytest.mark.parametrize("garbage", ["", "   ", "no idea!", "\x00\x01 ☃ >>> [] []", "[-7] > [abc]", "[" * 500])
def test_parse_permutation_garbage_never_crashes(garbage):
    got, rep = parse_permutation(garbage, 5)
    assert got == [0, 1, 2, 3, 4]
    assert rep.failed and rep.empty


def test_windows_back_to_front():
    assert windows(0, 20, 10) == []
    assert windows(5, 20, 10) == [(0, 5)]
    assert windows(20, 20, 10) == [(0, 20)]
    assert windows(50, 20, 10) == [(30, 50), (20, 40), (10, 30), (0, 20)]
    assert windows(25, 20, 10) == [(5, 25), (0, 20)]
    with pytest.raises(ToolArgumentError):
        windows(10, 0, 10)


def test_sliding_rerank_bubbles_best_to_top():
    # a ranker that knows the truth: higher number = better. The best 10 of 50 must end on top.
    items = list(range(50))

    def rank(chunk):
        return sorted(range(len(chunk)), key=lambda i: -chunk[i])

    out = sliding_rerank(items, 20, 10, rank)
    assert out[:10] == list(range(49, 39, -1))
    assert sorted(out) == items


def test_truncate_words_and_chars():
    assert truncate("a b  c\n d", 2) == "a b"
    assert len(truncate("漢" * 10_000, 10)) == 80  # no spaces: the character budget applies


# --- listwise ------------------------------------------------------------------------------------------------


def test_listwise_reorders_and_traces():
    model = ScriptedModel(["[3] > [1] > [2]"])
    tracer = MemoryTracer()
    r = ListwiseReranker(model, tracer=tracer)
    assert isinstance(r, Reranker)
    res = r.run("q", hits(3))
    out = res.hits
    assert [h.doc_id for h in out] == ["d2", "d0", "d1"]
    assert out[0].metadata["first_stage_score"] == 98.0
    # rank only: no rank-derived number posing as a relevance score
    assert [h.score for h in out] == [None, None, None] and res.has_scores is False
    assert res.permutation == [2, 0, 1] and res.method == "listwise"
    assert res.usage.calls == 1 and res.usage.prompt_tokens > 0 and res.usage.cost == "unmeasured"
    assert res.stats["windows"] == 1 and res.stats["parse_failures"] == 0
    user = model.calls[0]["messages"][-1]["content"]
    assert "[1] passage number 0" in user and "Search Query: q" in user
    ev = tracer.of_kind("rerank")
    assert len(ev) == 1 and ev[0].data["parse_failures"] == 0 and ev[0].data["windows"] == 1
    assert tracer.of_kind("llm")  # the model call is traced too


def test_listwise_garbage_keeps_input_order_and_counts_failure():
    tracer = MemoryTracer()
    out = ListwiseReranker(ScriptedModel(["I cannot rank these."]), tracer=tracer).rerank("q", hits(4))
    assert [h.doc_id for h in out] == ["d0", "d1", "d2", "d3"]
    data = tracer.of_kind("rerank")[0].data
    assert data["parse_failures"] == 1 and data["empty"] == 1 and data["missing"] == 4


def test_listwise_sliding_windows_calls_and_k():
    # 25 candidates, window 20 step 10: two windows (5..25 then 0..20). Each answer reverses its window.
    def reverse(messages, tools):
        n = int(messages[-1]["content"].split(" passages")[0].split()[-1])
        return " > ".join(f"[{i}]" for i in range(n, 0, -1))

    model = ScriptedModel(default=reverse)
    out = ListwiseReranker(model).rerank("q", hits(25), k=5)
    assert len(model.calls) == 2
    assert len(out) == 5
    # first window reverses d5..d24 -> positions 5..24 hold d24..d5; second window reverses positions 0..19
    # (d0..d4, d24..d10) -> top is d10, d11, ...
    assert [h.doc_id for h in out] == ["d10", "d11", "d12", "d13", "d14"]


def test_listwise_bad_input():
    model = ScriptedModel([])
    r = ListwiseReranker(model)
    assert r.rerank("q", []) == []
    one = r.rerank("q", hits(1))
    assert [h.doc_id for h in one] == ["d0"]
    assert model.calls == []  # zero or one candidate: no model call
    with pytest.raises(ToolArgumentError):
        r.rerank("   ", hits(3))
    with pytest.raises(ToolArgumentError):
        r.rerank("q", hits(3), k=-1)
    assert r.rerank("q", hits(1), k=0) == []


def test_listwise_duplicates_collapse():
    model = ScriptedModel(["[2] > [1]"])
    dup = [Hit(doc_id="a", text="x"), Hit(doc_id="b", text="y"), Hit(doc_id="a", text="x again")]
    res = ListwiseReranker(model).run("q", dup)
    out = res.hits
    assert [h.doc_id for h in out] == ["b", "a"]
    assert res.permutation == [1, 0] and res.duplicates == 1  # positions in the input, first occurrence
    assert "[3]" not in model.calls[0]["messages"][-1]["content"]


def test_listwise_long_and_non_english_candidates_are_truncated():
    model = ScriptedModel(["[2] > [1]"])
    long = [Hit(doc_id="en", text="word " * 5000), Hit(doc_id="zh", text="北京是中华人民共和国的首都" * 2000)]
    out = ListwiseReranker(model, word_budget=50).rerank("首都是哪里?", long)
    assert [h.doc_id for h in out] == ["zh", "en"]
    user = model.calls[0]["messages"][-1]["content"]
    assert len(user) < 1500  # 2 passages of <= 50 words / 400 chars each plus the instructions
    assert "首都是哪里?" in user


def test_listwise_context_overflow_retries_with_half_budget():
    model = ScriptedModel([ContextOverflowError("too long"), "[2] > [1]"])
    tracer = MemoryTracer()
    out = ListwiseReranker(model, word_budget=40, tracer=tracer).rerank("q", [Hit(doc_id="a", text="w " * 100),
                                                                           Hit(doc_id="b", text="v " * 100)])
    assert [h.doc_id for h in out] == ["b", "a"]
    assert tracer.of_kind("rerank")[0].data["shrunk"] == 1
    assert model.calls[1]["messages"][-1]["content"].count("w") < model.calls[0]["messages"][-1]["content"].count("w")


# --- FIRST ---------------------------------------------------------------------------------------------------


def test_letter_scores_normalises_tokens():
    r = first_token({"C": -0.1, " A": -1.0, "[B": -2.0, "A": -3.0, "Z": -0.5, "the": -0.2})
    assert letter_scores(r, 3) == {2: -0.1, 0: -1.0, 1: -2.0}  # Z is outside the window; A's best variant wins


def test_first_ranks_by_first_token_logprobs():
    model = LogprobModel([first_token({"C": -0.2, "A": -1.5, "D": -0.9})])
    tracer = MemoryTracer()
    r = FirstReranker(model, calibrate=False, tracer=tracer)
    out = r.rerank("q", hits(5))
    assert [h.doc_id for h in out] == ["d2", "d3", "d0", "d1", "d4"]  # unscored B, E follow in input order
    call = model.calls[0]
    assert "[A] passage number 0" in call["messages"][-1]["content"]
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 0 and data["scored"] == 3 and data["unscored"] == 2


def test_first_calibration_removes_position_prior():
    with_query = first_token({"A": -0.1, "B": -2.0, "C": -3.0})
    content_free = first_token({"A": -0.05, "B": -3.5, "C": -3.2, "D": -4.0})
    model = LogprobModel([with_query, content_free])
    out = FirstReranker(model).rerank("which one?", hits(4))
    # B: -2.0+3.5=1.5; C: -3.0+3.2=0.2; A: -0.1+0.05=-0.05; D (absent from the query call's top): -3.0+4.0=1.0
    assert [h.doc_id for h in out] == ["d1", "d3", "d2", "d0"]
    first, second = (c["messages"][-1]["content"] for c in model.calls)
    assert "Search Query: which one?" in first and "Search Query: N/A" in second
    assert first.split("Search Query:")[0] == second.split("Search Query:")[0]  # shared prefix (prompt cache)


def test_first_falls_back_to_listwise_without_logprobs():
    model = LogprobModel([ChatResult(content="C", logprobs=None), "[2] > [3] > [1]"])
    tracer = MemoryTracer()
    out = FirstReranker(model, tracer=tracer).rerank("q", hits(3))
    assert [h.doc_id for h in out] == ["d1", "d2", "d0"]
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 1 and "no logprobs" in data["fallback_reasons"][0]


def test_first_falls_back_when_model_has_no_logprob_support():
    model = ScriptedModel(["[1] > [2]"])
    model.supports_logprobs = False
    tracer = MemoryTracer()
    out = FirstReranker(model, tracer=tracer).rerank("q", hits(2))
    assert [h.doc_id for h in out] == ["d0", "d1"]
    reasons = tracer.of_kind("rerank")[0].data["fallback_reasons"]
    assert len(model.calls) == 1 and "does not support logprobs" in reasons[0]


def test_first_garbage_token_falls_back_and_counts_listwise_failure():
    model = LogprobModel([first_token({"Sure": -0.1, "I": -0.5}), "garbage!!"])
    tracer = MemoryTracer()
    out = FirstReranker(model, tracer=tracer).rerank("q", hits(3))
    assert [h.doc_id for h in out] == ["d0", "d1", "d2"]
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 1 and data["parse_failures"] == 1


def test_first_window_limit():
    with pytest.raises(ConfigError):
        FirstReranker(ScriptedModel([]), window=30)


# --- registry and ICR extra ----------------------------------------------------------------------------------


def test_get_reranker():
    m = ScriptedModel([])
    assert isinstance(get_reranker("listwise", m), ListwiseReranker)
    assert isinstance(get_reranker("RankGPT", m), ListwiseReranker)
    f = get_reranker("first", m, window=10)
    assert isinstance(f, FirstReranker) and f.window == 10
    with pytest.raises(ConfigError) as e:
        get_reranker("bogus", m)
    assert "icr" in str(e.value)


def test_icr_missing_extra(monkeypatch):
    from sleuth.rerank.icr import ICRReranker

    real_import = builtins.__import__

    def no_transformers(name, *a, **kw):
        if name == "transformers" or name.startswith("transformers."):
            raise ImportError("No module named 'transformers'")
        return real_import(name, *a, **kw)

    monkeypatch.delitem(sys.modules, "transformers", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_transformers)
    r = get_reranker("icr")  # construction is cheap and lazy
    assert isinstance(r, ICRReranker)
    with pytest.raises(MissingExtraError) as e:
        r.rerank("q", hits(3))
    assert "sleuth-search[attention]" in str(e.value) and e.value.context["package"] == "transformers"
    assert r.rerank("q", hits(1))[0].doc_id == "d0"  # one candidate needs no model


# --- the protocol: one tracer argument, one result per call, errors raised once ----------------------------------


def test_every_reranker_takes_a_tracer_per_call_over_the_constructors():
    own, per_call = MemoryTracer(), MemoryTracer()
    model = ScriptedModel(default="[2] > [1]")
    for r in (ListwiseReranker(model, tracer=own), FirstReranker(model, tracer=own)):
        assert isinstance(r, Reranker)
        r.rerank("q", hits(2), tracer=per_call)
    assert own.events == []
    assert [e.name for e in per_call.of_kind("rerank")] == ["listwise", "first"]


def test_reranker_error_is_raised_once_with_its_type():
    model = ScriptedModel([TypeError("bug in the backend"), "[2] > [1]"])
    with pytest.raises(TypeError, match="bug in the backend"):
        ListwiseReranker(model).rerank("q", hits(2), tracer=MemoryTracer())
    assert len(model.calls) == 1


def test_first_stats_and_usage_in_the_result():
    model = LogprobModel([first_token({"B": -0.2, "A": -1.5})])
    res = FirstReranker(model, calibrate=False).run("q", hits(2))
    assert [h.doc_id for h in res.hits] == ["d1", "d0"] and res.permutation == [1, 0]
    assert res.has_scores is False and all(h.score is None for h in res.hits)
    assert res.stats["scored"] == 2 and res.stats["fallbacks"] == 0
