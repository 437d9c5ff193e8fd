"""FIRST with a scripted log-probability backend: the paper form's prompt against the reference's template, the
prefill, the identifier-logit mapping against the reference's formula, windows and context fitting; the
``sleuth-best`` variant (calibration, letter spellings); and backends without log-probabilities or prefill."""

from __future__ import annotations

import re

import pytest

from sleuth.errors import ConfigError, ModelCapabilityError
from sleuth.llm.base import ChatResult, TokenLogprob
from sleuth.llm.fake import ScriptedModel
from sleuth.records import Hit, Usage
from sleuth.rerank import get_reranker
from sleuth.rerank.first import FirstReranker, identifier_scores, letter_scores
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
    """One generated token (the most likely one) with ``top`` as its alternatives, in the given order."""
    tok = max(top, key=top.get)
    return ChatResult(content=tok, logprobs=[TokenLogprob(token=tok, logprob=top[tok], top=top)],
                      usage=Usage.one_call(50, 1, None, "local_tokenizer"))


# --- the references, transcribed ---------------------------------------------------------------------------------

ALPH_START_IDX = ord("A") - 1


def gangiswag_prompt(query: str, contents: list[str]) -> list[dict[str, str]]:
    """gangiswag/llm-reranker rank_listwise_os_llm.py create_prompt (rerank_type="text", use_alpha=True,
    variable_passages=True, no few-shot examples, max_length 300 that fits), with llm_util.py's system message,
    transcribed: the messages handed to apply_chat_template(add_generation_prompt=True)."""
    system_message = ("You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to "
                      "the query")
    num = len(contents)
    max_length = 300
    messages = [{"role": "system", "content": system_message}]
    prefix = (f"I will provide you with {num} passages, each indicated by a alphabetical identifier []. Rank the "
              f"passages based on their relevance to the search query: {query}.\n")
    rank = 0
    input_context = f"{prefix}\n"
    for content in contents:
        rank += 1  # noqa: SIM113 (the reference's loop, as written)
        content = content.replace("Title: Content: ", "").strip()
        content = " ".join(content.split()[:max_length])
        identifier = chr(ALPH_START_IDX + rank)
        replaced = re.sub(r"\[([A-z]+)\]", r"(\1)", content)  # _replace_number(content, use_alpha=True)
        input_context += f"[{identifier}] {replaced}\n"
    example_ordering = "[B] > [A]"
    input_context += (f"Search Query: {query}.\nRank the {num} passages above based on their relevance to the search "
                      "query. All the passages should be included and listed using identifiers, in descending order "
                      f"of relevance. The output format should be [] > [], e.g., {example_ordering}, Only respond "
                      "with the ranking results, do not say any word or explain.")
    messages.append({"role": "user", "content": input_context})
    return messages


def rank_llm_order(top: dict[str, float], window_size: int, n: int) -> list[int]:
    """rank_llm RankListwiseOSLLM._evaluate_logits (use_alpha) then receive_permutation, transcribed: the window's
    new order (0-based input positions)."""
    evaluations: dict[int, float] = {}
    for token, logprob in top.items():
        if len(token) == 1 and token.isalpha() and ALPH_START_IDX + 1 <= ord(token) <= ALPH_START_IDX + window_size:
            idx = ord(token)
            if logprob > evaluations.get(idx, float("-inf")):
                evaluations[idx] = logprob
    sorted_evaluations = sorted(evaluations.items(), key=lambda x: -x[1])
    permutation = ">".join([f"[{chr(x)}]" for x, y in sorted_evaluations])
    response = "".join(" " if not c.isalpha() else str(ord(c) - ALPH_START_IDX) for c in permutation).strip()
    order = []
    for x in (int(x) - 1 for x in response.split()):
        if x not in order:
            order.append(x)
    original_rank = list(range(n))
    order = [ss for ss in order if ss in original_rank]
    return order + [tt for tt in original_rank if tt not in order]


# --- paper form ----------------------------------------------------------------------------------------------------


def test_paper_prompt_is_the_references_and_the_reply_is_prefilled():
    texts = ["Paris is the capital of France.", "  see [B] and [1]\n here ", " ".join(f"w{i}" for i in range(350))]
    model = LogprobModel([first_token({"A": -0.1, "C": -1.0, "B": -2.0})])
    tracer = MemoryTracer()
    res = FirstReranker(model, tracer=tracer).run("capital of France", [Hit(doc_id=str(i), text=t)
                                                                        for i, t in enumerate(texts)])
    sent = model.calls[0]["messages"]
    assert sent[:-1] == gangiswag_prompt("capital of France", texts)
    assert sent[-1] == {"role": "assistant", "content": "["}  # the prefill: the reference's prompt + "["
    assert "[B] see (B) and [1] here\n" in sent[1]["content"]  # [X] inside a passage is no identifier
    assert [h.doc_id for h in res.hits] == ["0", "2", "1"]
    assert res.stats["variant"] == "paper" and res.stats["prefill"] == "[" and res.stats["calibrate"] is False
    ev = tracer.of_kind("rerank")[0]
    assert ev.data["variant"] == "paper" and ev.data["top_logprobs"] == 30
    assert len(tracer.of_kind("llm")) == 1  # one forward step per window, no calibration call


def test_paper_request_asks_for_one_token_and_its_top_logprobs():
    seen = {}

    class Spy(LogprobModel):
        def chat(self, messages, **kw):  # type: ignore[override]
            seen.update(kw)
            return super().chat(messages, **kw)

    FirstReranker(Spy([first_token({"B": -0.1, "A": -0.5})])).rerank("q", hits(2))
    assert seen["max_tokens"] == 1 and seen["logprobs"] is True and seen["top_logprobs"] == 30
    assert seen["temperature"] == 0.0


@pytest.mark.parametrize(
    "top",
    [
        {"C": -0.2, " A": -0.1, "[B": -0.3, "B": -1.0, "E": -0.05, "a": -0.01, "D": -2.0},  # spellings ignored
        {"D": -0.5, "D ": -0.1, "AB": -0.2, "B": -0.7, "C": -0.7},  # a tie keeps the backend's order
        {"Sure": -0.1, "1": -0.2},  # no identifier: the input order
        {"T": -0.3, "A": -0.4},  # T is the 20th letter, outside a 4-passage window
    ],
)
def test_paper_identifier_logits_map_as_the_reference(top):
    model = LogprobModel([first_token(top)])
    out = FirstReranker(model).rerank("q", hits(4))
    ref = rank_llm_order(top, window_size=20, n=4)
    assert [h.doc_id for h in out] == [f"d{i}" for i in ref]


def test_identifier_scores_reads_exact_letters_only():
    r = first_token({"C": -0.2, " A": -0.1, "[B": -0.3, "B": -1.0, "E": -0.05, "c": -0.01})
    assert identifier_scores(r, 4) == {2: -0.2, 1: -1.0}
    assert letter_scores(r, 4) == {2: -0.2, 0: -0.1, 1: -0.3}  # sleuth-best pools the spellings


def test_paper_no_identifier_keeps_the_window_and_counts_it():
    model = LogprobModel([first_token({"Sure": -0.1, "I": -0.5})])
    res = FirstReranker(model).run("q", hits(3))
    assert [h.doc_id for h in res.hits] == ["d0", "d1", "d2"]
    assert res.stats["unscored_windows"] == 1 and res.stats["unscored"] == 3 and res.stats["fallbacks"] == 0
    assert "no identifier" in res.stats["fallback_reasons"][0]


def test_paper_sliding_windows_use_letters_per_window():
    # 25 candidates: windows (5, 25) of 20 letters A..T, then (0, 15) of 15 letters A..O
    def reply(messages, tools):
        n = int(messages[1]["content"].split("provide you with ")[1].split()[0])
        return first_token({"A": -3.0, chr(64 + n): -0.1})  # the window's last passage first

    model = LogprobModel(default=reply)
    res = FirstReranker(model).run("q", hits(25))
    firsts = [m["messages"][1]["content"] for m in model.calls]
    assert len(firsts) == 2 and "[T] passage number 24" in firsts[0] and "[O] " in firsts[1] and "[P] " not in firsts[1]
    assert res.stats["windows"] == 2 and res.stats["scored"] == 4
    # window 1 moves d24 to position 5, then d5 (its A) to 6; window 2 (positions 0..14) moves its O (d13) first
    assert [h.doc_id for h in res.hits][:3] == ["d13", "d0", "d1"]


def test_paper_fits_the_context():
    model = LogprobModel([first_token({"B": -0.1})])
    long = [Hit(doc_id="a", text="alpha " * 1000), Hit(doc_id="b", text="beta " * 1000)]
    res = FirstReranker(model, context_size=500).run("q", long)
    assert res.stats["words"] < 300
    sent = model.calls[0]["messages"][:-1]
    assert len("\n".join(f"{m['role']}\n{m['content']}" for m in sent).split()) + 4 * len(sent) + 3 <= 500


def test_get_reranker_options():
    f = get_reranker("first", LogprobModel([]), window=10, variant="sleuth-best")
    assert isinstance(f, FirstReranker) and f.window == 10 and f.variant == "sleuth-best" and f.calibrate
    assert f.word_budget == 100 and f.top_logprobs == 20
    with pytest.raises(ConfigError):
        FirstReranker(LogprobModel([]), variant="best")
    with pytest.raises(ConfigError):
        FirstReranker(LogprobModel([]), calibrate=True)  # calibration belongs to sleuth-best
    with pytest.raises(ConfigError):
        FirstReranker(LogprobModel([]), fallback="bm25")
    with pytest.raises(ConfigError):
        FirstReranker(LogprobModel([]), window=30)


# --- backends that cannot do it --------------------------------------------------------------------------------------


def no_logprobs() -> ScriptedModel:
    m = ScriptedModel(["[2] > [1]"])
    m.supports_logprobs = False
    return m


def test_backend_without_logprobs_is_refused_with_the_fallback_named():
    for variant in ("paper", "sleuth-best"):
        with pytest.raises(ModelCapabilityError) as e:
            FirstReranker(no_logprobs(), variant=variant)
        assert "log-probabilities" in e.value.message
        assert "fallback='listwise'" in e.value.hint and "--rerank-opt fallback=listwise" in e.value.hint


def test_backend_without_prefill_is_refused_for_the_paper_form_only():
    m = LogprobModel([first_token({"B": -0.1, "A": -2.0})])
    m.supports_prefill = False
    with pytest.raises(ModelCapabilityError) as e:
        FirstReranker(m)
    assert "prefill" in e.value.message and "variant='sleuth-best'" in e.value.hint
    out = FirstReranker(m, variant="sleuth-best", calibrate=False).rerank("q", hits(2))
    assert [h.doc_id for h in out] == ["d1", "d0"]
    assert m.calls[0]["messages"][-1]["role"] == "user"  # no prefill sent


def test_backend_without_logprobs_falls_back_only_when_asked():
    tracer = MemoryTracer()
    out = FirstReranker(no_logprobs(), fallback="listwise", tracer=tracer).rerank("q", hits(2))
    assert [h.doc_id for h in out] == ["d1", "d0"]
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 1 and "log-probabilities" in data["fallback_reasons"][0]
    assert [e.name for e in tracer.of_kind("llm")] == ["rerank.listwise"]


def test_backend_that_returns_no_logprobs_or_ignores_the_prefill():
    for item, words in ((ChatResult(content="B", logprobs=None), "no logprobs"),
                        (first_token({"[B": -0.1, "[": -1.0, "A": -3.0}), "did not continue the prefilled")):
        with pytest.raises(ModelCapabilityError) as e:
            FirstReranker(LogprobModel([item])).rerank("q", hits(3))
        assert words in e.value.message and "fallback='listwise'" in e.value.hint
        tracer = MemoryTracer()
        out = FirstReranker(LogprobModel([item, "[3] > [1]"]), fallback="listwise").rerank("q", hits(3),
                                                                                            tracer=tracer)
        assert [h.doc_id for h in out] == ["d2", "d0", "d1"]
        assert tracer.of_kind("rerank")[0].data["fallbacks"] == 1


# --- sleuth-best (the earlier default, kept as an option) --------------------------------------------------------


def test_sleuth_best_ranks_by_letter_logprobs():
    model = LogprobModel([first_token({"C": -0.2, "A": -1.5, "D": -0.9})])
    tracer = MemoryTracer()
    out = FirstReranker(model, variant="sleuth-best", calibrate=False, tracer=tracer).rerank("q", hits(5))
    assert [h.doc_id for h in out] == ["d2", "d3", "d0", "d1", "d4"]  # unscored B, E follow in input order
    call = model.calls[0]
    assert "[A] passage number 0" in call["messages"][-1]["content"] and call["messages"][-1]["role"] == "user"
    data = tracer.of_kind("rerank")[0].data
    assert data["variant"] == "sleuth-best" and data["prefill"] is None
    assert data["fallbacks"] == 0 and data["scored"] == 3 and data["unscored"] == 2


def test_sleuth_best_calibration_removes_position_prior():
    with_query = first_token({"A": -0.1, "B": -2.0, "C": -3.0})
    content_free = first_token({"A": -0.05, "B": -3.5, "C": -3.2, "D": -4.0})
    model = LogprobModel([with_query, content_free])
    out = FirstReranker(model, variant="sleuth-best").rerank("which one?", hits(4))
    # B: -2.0+3.5=1.5; C: -3.0+3.2=0.2; A: -0.1+0.05=-0.05; D (absent from the query call's top): -3.0+4.0=1.0
    assert [h.doc_id for h in out] == ["d1", "d3", "d2", "d0"]
    first, second = (c["messages"][-1]["content"] for c in model.calls)
    assert "Search Query: which one?" in first and "Search Query: N/A" in second
    assert first.split("Search Query:")[0] == second.split("Search Query:")[0]  # shared prefix (prompt cache)


def test_sleuth_best_garbage_token_falls_back_when_asked():
    model = LogprobModel([first_token({"Sure": -0.1, "I": -0.5}), "garbage!!"])
    tracer = MemoryTracer()
    out = FirstReranker(model, variant="sleuth-best", fallback="listwise", tracer=tracer).rerank("q", hits(3))
    assert [h.doc_id for h in out] == ["d0", "d1", "d2"]
    data = tracer.of_kind("rerank")[0].data
    assert data["fallbacks"] == 1 and data["parse_failures"] == 1


def test_first_stats_and_usage_in_the_result():
    model = LogprobModel([first_token({"B": -0.2, "A": -1.5})])
    res = FirstReranker(model).run("q", hits(2))
    assert [h.doc_id for h in res.hits] == ["d1", "d0"] and res.permutation == [1, 0]
    assert res.has_scores is False and all(h.score is None for h in res.hits)
    assert res.stats["scored"] == 2 and res.stats["fallbacks"] == 0
    assert res.usage.calls == 1 and res.usage.prompt_tokens == 50 and res.usage.cost == "unmeasured"


# --- the plumbing: CLI options, eval config, model capabilities -----------------------------------------------------


def test_rerank_opt_values_are_parsed():
    from sleuth.cli.common import parse_options

    assert parse_options(["variant=sleuth-best", "window=10", "calibrate=false", "fallback=listwise"]) == {
        "variant": "sleuth-best", "window": 10, "calibrate": False, "fallback": "listwise"}
    assert parse_options(["word-budget=50"]) == {"word_budget": 50} and parse_options(None) == {}
    with pytest.raises(ConfigError):
        parse_options(["variant"])


def test_eval_config_and_label_name_the_form():
    from sleuth.evals.build import Options, reranker_options, system_config, system_label

    cfg = system_config(Options(task="beir", data="/d/scifact", rerank="first"), None)
    assert cfg["rerank_options"] == {"variant": "paper"} and system_label(cfg) == "bm25+first(paper)"
    o = Options(task="beir", data="/d/scifact", rerank="first", extra={"reranker": {"variant": "sleuth-best"}})
    assert system_label(system_config(o, None)) == "bm25+first(sleuth-best)"
    assert "reranker" not in system_config(o, None)  # recorded once, as rerank_options
    assert reranker_options(Options(task="beir", data="/d/x", rerank="listwise")) == {"prompt": "rankgpt"}


def test_prefill_is_declared_per_model(monkeypatch, tmp_path):
    from sleuth.llm import get_model
    from sleuth.llm.client import LLM

    monkeypatch.delenv("SLEUTH_PREFILL", raising=False)
    monkeypatch.setenv("SLEUTH_HOME", "/nonexistent-sleuth-home")
    assert LLM("openai/served", api_base="http://127.0.0.1:9/v1").supports_prefill is False
    assert LLM("openai/served", prefill=True).supports_prefill is True
    assert get_model("openai/served", api_base="http://127.0.0.1:9/v1").supports_prefill is False
    monkeypatch.setenv("SLEUTH_PREFILL", "1")
    assert get_model("openai/served", api_base="http://127.0.0.1:9/v1").supports_prefill is True
    monkeypatch.setenv("SLEUTH_PREFILL", "maybe")
    with pytest.raises(ConfigError):
        get_model("openai/served")
    monkeypatch.delenv("SLEUTH_PREFILL")
    (tmp_path / "config.toml").write_text('[model]\nname = "openai/served"\nprefill = true\n')
    monkeypatch.setenv("SLEUTH_CONFIG", str(tmp_path / "config.toml"))
    assert get_model(None, api_base="http://127.0.0.1:9/v1").supports_prefill is True
    assert get_model("openai/other", api_base="http://127.0.0.1:9/v1").supports_prefill is False  # the file's model's
    assert LLM("openai/served", context_tokens=8192).context_tokens == 8192
    assert LLM("openai/served").context_tokens is None
