"""Rerankers' control flow and parsing with the scripted model: permutation repair, the sliding-window schedule
against rank_llm's loop, listwise's prompt against RankGPT's, context fitting, bad input, the registry and the ICR
extra check. FIRST: tests/unit/test_rerank_first.py."""

from __future__ import annotations

import builtins
import sys

import pytest

from sleuth.errors import ConfigError, ContextOverflowError, MissingExtraError, ToolArgumentError
from sleuth.llm.fake import ScriptedModel
from sleuth.records import Hit
from sleuth.rerank import Reranker, get_reranker
from sleuth.rerank.common import fit_words, parse_permutation, sliding_rerank, truncate, windows
from sleuth.rerank.first import FirstReranker
from sleuth.rerank.listwise import ListwiseReranker
from sleuth.tracing.tracer import MemoryTracer


def hits(n: int) -> list[Hit]:
    return [Hit(doc_id=f"d{i}", text=f"passage number {i}", score=float(100 - i)) for i in range(n)]


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


def rank_llm_windows(rank_end: int, window_size: int, stride: int) -> list[tuple[int, int]]:
    """rank_llm's ``sliding_windows`` loop (listwise_rankllm.py), transcribed: rank_start=0,
    window_size=min(window_size, top_k_retrieve)."""
    window_size = min(window_size, rank_end)
    out = []
    end_pos, start_pos = rank_end, rank_end - window_size
    while end_pos > 0 and start_pos + stride != 0:
        start_pos = max(start_pos, 0)
        out.append((start_pos, end_pos))
        end_pos, start_pos = end_pos - stride, start_pos - stride
    return out


def test_windows_back_to_front():
    assert windows(0, 20, 10) == []
    assert windows(5, 20, 10) == [(0, 5)]
    assert windows(20, 20, 10) == [(0, 20)]
    assert windows(50, 20, 10) == [(30, 50), (20, 40), (10, 30), (0, 20)]
    assert windows(25, 20, 10) == [(5, 25), (0, 15)]  # the front window is shorter (rank_llm), not re-filled
    with pytest.raises(ToolArgumentError):
        windows(10, 0, 10)


@pytest.mark.parametrize("size", [1, 5, 10, 20])
@pytest.mark.parametrize("step", [1, 3, 10, 20, 30])
def test_windows_are_rank_llms_schedule(size, step):
    for n in range(0, 61):
        got = windows(n, size, step)
        assert got == rank_llm_windows(n, size, step), (n, size, step)
        assert all(0 <= a < b <= n and b - a <= size for a, b in got)


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
    assert res.stats["windows"] == 1 and res.stats["parse_failures"] == 0 and res.stats["prompt"] == "rankgpt"
    msgs = model.calls[0]["messages"]
    assert msgs[3] == {"role": "user", "content": "[1] passage number 0"}
    assert msgs[-1]["content"].startswith("Search Query: q. \nRank the 3 passages above")
    ev = tracer.of_kind("rerank")
    assert len(ev) == 1 and ev[0].data["parse_failures"] == 0 and ev[0].data["windows"] == 1
    assert tracer.of_kind("llm")  # the model call is traced too


def rankgpt_reference(query: str, passages: list[str], rank_start: int = 0, rank_end: int = 100) -> list[dict]:
    """sunnweiwei/RankGPT rank_gpt.py: get_prefix_prompt + create_permutation_instruction + get_post_prompt,
    transcribed (item['hits'][i]['content'] = passages[i])."""
    num = len(passages[rank_start:rank_end])
    max_length = 300
    messages = [{'role': 'system',
                 'content': "You are RankGPT, an intelligent assistant that can rank passages based on their "
                            "relevancy to the query."},
                {'role': 'user',
                 'content': f"I will provide you with {num} passages, each indicated by number identifier []. \n"
                            f"Rank the passages based on their relevance to query: {query}."},
                {'role': 'assistant', 'content': 'Okay, please provide the passages.'}]
    rank = 0
    for content in passages[rank_start:rank_end]:
        rank += 1  # noqa: SIM113 (the reference's loop, as written)
        content = content.replace('Title: Content: ', '')
        content = content.strip()
        content = ' '.join(content.split()[:int(max_length)])
        messages.append({'role': 'user', 'content': f"[{rank}] {content}"})
        messages.append({'role': 'assistant', 'content': f'Received passage [{rank}].'})
    messages.append({'role': 'user', 'content': f"Search Query: {query}. \nRank the {num} passages above based on "
                     "their relevance to the search query. The passages should be listed in descending order using "
                     "identifiers. The most relevant passages should be listed first. The output format should be "
                     "[] > [], e.g., [1] > [2]. Only response the ranking results, do not say any word or explain."})
    return messages


def test_listwise_prompt_is_rankgpts_reference():
    texts = ["Paris is the capital of France.", "  Bananas   are\nyellow. ", " ".join(f"w{i}" for i in range(400))]
    model = ScriptedModel(["[1] > [3] > [2]"])
    ListwiseReranker(model).rerank("capital of France", [Hit(doc_id=str(i), text=t) for i, t in enumerate(texts)])
    assert model.calls[0]["messages"] == rankgpt_reference("capital of France", texts)


def test_listwise_numbers_in_brackets_are_not_identifiers():
    model = ScriptedModel(["[2] > [1]"])
    ListwiseReranker(model).rerank("what does [3] say?", [Hit(doc_id="a", text="as shown in [3] and [12]"),
                                                           Hit(doc_id="b", text="plain")])
    msgs = model.calls[0]["messages"]
    assert msgs[3]["content"] == "[1] as shown in (3) and (12)"  # rank_llm's _replace_number
    assert "what does (3) say?" in msgs[-1]["content"]


def test_listwise_single_turn_option():
    model = ScriptedModel(["[2] > [1]"])
    res = ListwiseReranker(model, prompt="single-turn").run("q", hits(2))
    assert [h.doc_id for h in res.hits] == ["d1", "d0"] and res.stats["prompt"] == "single-turn"
    system, user = model.calls[0]["messages"]
    assert system["role"] == "system" and "[1] passage number 0\n[2] passage number 1" in user["content"]
    with pytest.raises(ConfigError):
        ListwiseReranker(model, prompt="zephyr")


def test_fit_words_is_rank_llms_loop():
    # the prompt is 10 fixed tokens + 4 passages of `words` tokens; context 100, 12 reserved for the answer
    def build(words):
        return [{"role": "user", "content": " ".join(["x"] * (10 + 4 * words))}]

    def count(msgs):
        return len(msgs[0]["content"].split())

    msgs, words = fit_words(build, count, 4, 300, 100, 12)
    # rank_llm: max_length -= max(1, (tokens - context + reserve) // (n * 4)): 300 -> 227 -> 182 -> ... until fit
    ref, trace = 300, []
    while 10 + 4 * ref > 100 - 12:
        ref -= max(1, (10 + 4 * ref - 100 + 12) // 16)
        trace.append(ref)
    assert words == ref == trace[-1] and count(msgs) <= 88 and len(trace) > 3


def test_listwise_fits_the_models_context():
    model = ScriptedModel(["[2] > [1]"])  # whitespace token counts
    long = [Hit(doc_id="a", text="alpha " * 1000), Hit(doc_id="b", text="beta " * 1000)]
    res = ListwiseReranker(model, context_size=400).run("q", long)
    assert res.stats["words"] < 300  # shrunk from RankGPT's 300 words until the prompt fits 400 tokens
    msgs = model.calls[0]["messages"]
    text = "\n".join(f"{m['role']}\n{m['content']}" for m in msgs)
    assert len(text.split()) + 4 * len(msgs) + 3 <= 400 - 3  # 3 tokens reserved: "[1] > [2]"


def test_listwise_garbage_keeps_input_order_and_counts_failure():
    tracer = MemoryTracer()
    out = ListwiseReranker(ScriptedModel(["I cannot rank these."]), tracer=tracer).rerank("q", hits(4))
    assert [h.doc_id for h in out] == ["d0", "d1", "d2", "d3"]
    data = tracer.of_kind("rerank")[0].data
    assert data["parse_failures"] == 1 and data["empty"] == 1 and data["missing"] == 4


def test_listwise_sliding_windows_calls_and_k():
    # 25 candidates, window 20 step 10: two windows (5..25 then 0..15, rank_llm's schedule). Each answer reverses
    # its window.
    def reverse(messages, tools):
        n = int(messages[-1]["content"].split("Rank the ")[1].split()[0])
        return " > ".join(f"[{i}]" for i in range(n, 0, -1))

    model = ScriptedModel(default=reverse)
    out = ListwiseReranker(model).rerank("q", hits(25), k=5)
    assert len(model.calls) == 2
    assert len(out) == 5
    # first window reverses d5..d24 -> positions 5..24 hold d24..d5; second window reverses positions 0..14
    # (d0..d4, d24..d15) -> top is d15, d16, ...
    assert [h.doc_id for h in out] == ["d15", "d16", "d17", "d18", "d19"]


def test_listwise_bad_input():
    model = ScriptedModel([])
    r = ListwiseReranker(model)
    with pytest.raises(ConfigError):
        ListwiseReranker(model, word_budget=0)
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
    assert "[3]" not in str(model.calls[0]["messages"])


def test_listwise_long_and_non_english_candidates_are_truncated():
    model = ScriptedModel(["[2] > [1]"])
    long = [Hit(doc_id="en", text="word " * 5000), Hit(doc_id="zh", text="北京是中华人民共和国的首都" * 2000)]
    out = ListwiseReranker(model, word_budget=50).rerank("首都是哪里?", long)
    assert [h.doc_id for h in out] == ["zh", "en"]
    msgs = model.calls[0]["messages"]
    assert len(msgs[3]["content"]) <= 4 + 400 and len(msgs[5]["content"]) <= 4 + 400  # <= 50 words / 400 chars
    assert "首都是哪里?" in msgs[-1]["content"]


def test_listwise_context_overflow_retries_with_half_budget():
    model = ScriptedModel([ContextOverflowError("too long"), "[2] > [1]"])
    tracer = MemoryTracer()
    out = ListwiseReranker(model, word_budget=40, tracer=tracer).rerank("q", [Hit(doc_id="a", text="w " * 100),
                                                                           Hit(doc_id="b", text="v " * 100)])
    assert [h.doc_id for h in out] == ["b", "a"]
    assert tracer.of_kind("rerank")[0].data["shrunk"] == 1
    assert tracer.of_kind("rerank")[0].data["words"] == 20
    assert model.calls[1]["messages"][3]["content"].count("w") < model.calls[0]["messages"][3]["content"].count("w")


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
    letters = ScriptedModel(default="B")  # FIRST reads the continuation of "[": a letter
    for r in (ListwiseReranker(model, tracer=own), FirstReranker(letters, tracer=own)):
        assert isinstance(r, Reranker)
        r.rerank("q", hits(2), tracer=per_call)
    assert own.events == []
    assert [e.name for e in per_call.of_kind("rerank")] == ["listwise", "first"]


def test_reranker_error_is_raised_once_with_its_type():
    model = ScriptedModel([TypeError("bug in the backend"), "[2] > [1]"])
    with pytest.raises(TypeError, match="bug in the backend"):
        ListwiseReranker(model).rerank("q", hits(2), tracer=MemoryTracer())
    assert len(model.calls) == 1
