"""Iter-RetGen through the real graph, real BM25 index over the sample corpus; the scripted model drives control flow.

The paper's form (the default) is FlashRAG's ``IterativePipeline``: T rounds of retrieve(question [+ previous
generation]) -> generate(FlashRAG's prompt), and the answer is the T-th generation. The ``separate-call`` option
is sleuth's earlier form: T retrievals, T-1 drafts, then a JSON answer call.
"""

from __future__ import annotations

import pytest

from sleuth.agents import Agent, AgentConfig, Budget
from sleuth.corpus import Corpus
from sleuth.errors import ConfigError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.tracing import MemoryTracer

QUESTION = "Where was the designer of the Kestrel Bridge born?"
OKAFOR = "people/bram_okafor.md"
BRIDGE = "projects/kestrel_bridge.txt"
G1 = "Bram Okafor"
G2 = "Okafor was born in Saltmarsh"
G3 = "Saltmarsh"

# FlashRAG's PromptTemplate.base_system_prompt / base_user_prompt (flashrag/prompt/base_prompt.py), verbatim
FLASHRAG_SYSTEM = (
    "Answer the question based on the given document."
    "Only give me the answer and do not output any other words."
    "\nThe following are given documents.\n\n{reference}"
)
FLASHRAG_USER = "Question: {question}"


def flashrag_format_reference(contents: list[str]) -> str:
    """FlashRAG's ``format_reference``: title = first line, text = the rest (sleuth strips the blank line after the
    title and a Markdown heading's ``#``)."""
    out = ""
    for idx, content in enumerate(contents):
        title, _, text = content.strip().partition("\n")
        out += f"Doc {idx + 1}(Title: {title.lstrip('#').strip()}) {text.strip()}\n"
    return out


@pytest.fixture()
def setup(sample_corpus):
    corpus = Corpus(sample_corpus)
    bm25 = BM25Retriever.open(corpus)

    def make(script, **kw):
        model = ScriptedModel(script)
        config = AgentConfig(model=model, retrievers={"bm25": bm25}, corpus=corpus, **kw)
        return Agent(config, agent="iter-retgen"), model, corpus

    return make


def test_paper_form_answer_is_the_third_generation(setup):
    agent, model, corpus = setup([G1, G2, G3])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    # T=3 generations, no separate answer call; the answer is the last generation, as it is
    assert [e.name for e in tracer.of_kind("llm")] == ["generate", "generate", "generate"]
    assert result.llm_calls == 3 and result.answer == G3 and result.answered_by == "model"
    assert result.stop_reason == "answered"
    # the model cites nothing in the paper's form: no doc ids are made up for it
    assert result.doc_ids == [] and OKAFOR in result.docs_seen
    # retrieval query t: the question, then the question + the previous generation (FlashRAG's f"{q} {r}")
    retrievals = tracer.of_kind("retrieval")
    assert [e.args["query"] for e in retrievals] == [QUESTION, f"{QUESTION} {G1}", f"{QUESTION} {G2}"]
    assert all(e.args["k"] == 5 and len(e.data["hits"]) == 5 for e in retrievals)
    assert [e.name for e in tracer.of_kind("node")] == [
        "retrieve", "generate", "retrieve", "generate", "retrieve", "generate", "answer_from_generation", "finish"
    ]
    # each generation sees FlashRAG's prompt over that round's passages only, and may write 32 tokens
    for call, ret in zip(model.calls, retrievals, strict=True):
        contents = [corpus.read_text(h["doc_id"]) for h in ret.data["hits"]]
        system, user = call["messages"]
        assert system == {"role": "system", "content": FLASHRAG_SYSTEM.format(
            reference=flashrag_format_reference(contents))}
        assert user == {"role": "user", "content": FLASHRAG_USER.format(question=QUESTION)}
        assert call["max_tokens"] == 32
    # a passage by hand: the title line, then the text
    assert ("(Title: Kestrel Bridge) The Kestrel Bridge is a cable-stayed bridge over the river Vell at Dunmore, "
            "opened in 2004.") in model.calls[0]["messages"][0]["content"]
    assert "(Title: Bram Okafor) Bram Okafor is a civil engineer" in model.calls[1]["messages"][0]["content"]
    # the form is recorded in the trace: the setting note and the answer event
    setting = next(e for e in tracer.of_kind("note") if e.name == "iter_retgen")
    assert setting.data == {"answer": "last-generation", "T": 3, "k": 5, "max_tokens": 32}
    assert tracer.of_kind("answer")[0].data["iter_retgen_answer"] == "last-generation"


def test_paper_form_answer_comes_from_the_last_generation_not_an_earlier_one(setup):
    agent, _, _ = setup(["Saltmarsh", "Dunmore", "Harrowgate"])
    assert agent.run(QUESTION).answer == "Harrowgate"


def test_paper_form_t1_and_t5(setup):
    agent, model, _ = setup(["Saltmarsh"], iter_retgen_steps=1)
    tracer = MemoryTracer()
    assert agent.run(QUESTION, trace=tracer).answer == "Saltmarsh"
    assert len(model.calls) == 1 and len(tracer.of_kind("retrieval")) == 1
    gens = [f"g{i}" for i in range(1, 6)]
    agent, model, _ = setup(gens, iter_retgen_steps=5)
    tracer = MemoryTracer()
    assert agent.run(QUESTION, trace=tracer).answer == "g5"
    assert [e.args["query"] for e in tracer.of_kind("retrieval")] == [
        QUESTION, *(f"{QUESTION} {g}" for g in gens[:4])
    ]


def test_separate_call_option_keeps_sleuths_earlier_form(setup):
    agent, model, _ = setup(
        [
            "The Kestrel Bridge was designed by Bram Okafor.",
            "Bram Okafor was born in Saltmarsh in 1965.",
            {"answer": "Saltmarsh", "doc_ids": [OKAFOR, "never/shown.md"]},
        ],
        iter_retgen_answer="separate-call",
    )
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh" and result.doc_ids == [OKAFOR]
    assert result.dropped_doc_ids == ["never/shown.md"]
    queries = [e.args["query"] for e in tracer.of_kind("retrieval")]
    assert queries == [
        QUESTION,
        f"{QUESTION} The Kestrel Bridge was designed by Bram Okafor.",
        f"{QUESTION} Bram Okafor was born in Saltmarsh in 1965.",
    ]
    # T retrievals, T-1 drafts, then the JSON answer call that also sees the last draft
    assert [e.name for e in tracer.of_kind("llm")] == ["generate", "generate", "answer"]
    assert [e.name for e in tracer.of_kind("node")] == [
        "retrieve", "generate", "retrieve", "generate", "retrieve", "answer_from_passages", "finish"
    ]
    assert "Question: " + QUESTION in model.calls[0]["messages"][-1]["content"]
    assert "in one or two sentences" in model.calls[0]["messages"][0]["content"]
    assert "a draft answer): Bram Okafor was born in Saltmarsh in 1965." in model.calls[2]["messages"][-1]["content"]
    setting = next(e for e in tracer.of_kind("note") if e.name == "iter_retgen")
    assert setting.data["answer"] == "separate-call"


def test_separate_call_without_citations_cites_nothing(setup):
    agent, _, _ = setup(["d1", "d2", {"answer": "Saltmarsh", "doc_ids": []}], iter_retgen_answer="separate-call")
    result = agent.run(QUESTION)
    assert result.answer == "Saltmarsh" and result.doc_ids == []  # the top two passages used to be cited


def test_empty_intermediate_generation_leaves_the_question_alone(setup):
    agent, _, _ = setup(["", "   ", "Saltmarsh"])
    tracer = MemoryTracer()
    result = agent.run(QUESTION, trace=tracer)
    assert result.answer == "Saltmarsh"
    assert [e.args["query"] for e in tracer.of_kind("retrieval")] == [QUESTION] * 3
    empties = [e.data for e in tracer.of_kind("note") if e.name == "empty_generation"]
    assert empties == [{"iteration": 1, "T": 3}, {"iteration": 2, "T": 3}]


def test_empty_last_generation_is_no_answer(setup):
    agent, _, _ = setup(["Bram Okafor", "Saltmarsh", "  \n "])
    result = agent.run(QUESTION)
    # not an earlier generation passed off as the answer: the paper's answer is the T-th, and it is empty
    assert result.answer is None and result.stop_reason == "no_answer" and result.answered_by == "none"
    assert "last generation was empty" in result.note and "generation 3 of 3" in result.note


def test_last_generation_that_repeats_the_prompt_is_no_answer(setup):
    parrot = "Answer the question based on the given document. Only give me the answer"
    agent, _, _ = setup(["x", "y", parrot])
    result = agent.run(QUESTION)
    assert result.answer is None and "repeated the instructions" in result.note


def test_budget_stops_the_rounds_and_the_last_generation_answers(setup):
    agent, model, _ = setup(["Bram Okafor", "Saltmarsh"], budget=Budget(max_steps=2))
    result = agent.run(QUESTION)
    assert len(model.calls) == 2 and result.budget_exhausted == "steps"
    assert result.answer == "Saltmarsh" and result.answered_by == "forced" and result.stop_reason == "budget:steps"


def test_separate_call_budget_forces_the_answer_call(setup):
    agent, model, _ = setup(
        ["draft one", {"answer": "forced", "doc_ids": []}], budget=Budget(max_steps=1),
        iter_retgen_answer="separate-call",
    )
    result = agent.run(QUESTION)
    assert result.budget_exhausted == "steps" and result.answer == "forced" and result.answered_by == "forced"
    assert len(model.calls) == 2


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "3"])
def test_t_must_be_a_whole_number_of_at_least_one(setup, bad):
    with pytest.raises(ConfigError, match="iter_retgen_steps"):
        setup([], iter_retgen_steps=bad)


def test_unknown_answer_form_is_a_config_error(setup):
    with pytest.raises(ConfigError, match="iter_retgen_answer") as e:
        setup([], iter_retgen_answer="final-call")
    assert "last-generation" in e.value.hint
    with pytest.raises(ConfigError, match="iter_retgen_max_tokens"):
        setup([], iter_retgen_max_tokens=0)


@pytest.mark.parametrize("command", [["ask", "Q?", "--agent", "iter-retgen"], ["eval", "hotpotqa", "--data", "x.jsonl",
                                                                            "--agent", "iter-retgen"]])
def test_cli_refuses_t0_and_an_unknown_form(app, tmp_path, monkeypatch, sample_corpus, command):
    """``--iter-retgen-steps 0`` is a usage error (exit 2), an unknown ``--iter-retgen-answer`` a config error; both
    before any model is built or any data read."""
    import json

    from typer.testing import CliRunner

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "home"))
    args = [*command, *(["--corpus", str(sample_corpus)] if command[0] == "ask" else [])]
    for extra, error, flag in [(["--iter-retgen-steps", "0"], "UsageError", "--iter-retgen-steps"),
                               (["--iter-retgen-steps", "-2"], "UsageError", "--iter-retgen-steps"),
                               (["--iter-retgen-answer", "final-call"], "ConfigError", "--iter-retgen-answer")]:
        if command[0] == "eval" and error == "ConfigError":
            data = tmp_path / "x.jsonl"  # the loader runs first: give it one valid record
            data.write_text(json.dumps({"_id": "q", "question": "?", "answer": "a", "supporting_facts": [],
                                        "context": [["T", ["t."]]]}) + "\n")
            args = [a if a != "x.jsonl" else str(data) for a in args]
        r = CliRunner().invoke(app, [*args, *extra, "--json"])
        assert r.exit_code == 2, r.output
        out = json.loads(r.stdout)
        assert out["error"] == error and flag in out["message"], out
