"""HotpotQA through the real sleuth Agent (react graph, real corpus tools over the imported paragraphs); the
scripted model only drives control flow. Checks what the harness records: answer metrics, supporting paragraphs,
evidence read from the trace, tokens, calls, cost 'unmeasured'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.evals.build import Options, prepare
from sleuth.evals.results import read_rows
from sleuth.evals.runner import run_eval
from sleuth.llm.fake import ScriptedModel, tool

RECORD = {
    "_id": "q1",
    "question": "Which band had a drummer inducted into the Modern Drummer Hall of Fame?",
    "answer": "Rush",
    "supporting_facts": [["Rush (band)", 0], ["Neil Peart", 0]],
    "context": [
        ["Rush (band)", ["Rush was a Canadian rock band.", " Its drummer was Neil Peart."]],
        ["Neil Peart", ["Neil Peart was inducted into the Modern Drummer Hall of Fame in 1983."]],
        ["Toto", ["Toto is an American band."]],
    ],
}


@pytest.mark.slow
def test_agent_system_on_hotpotqa(tmp_path: Path):
    data = tmp_path / "hotpot.jsonl"
    data.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    model = ScriptedModel(
        [
            tool("grep", pattern="band"),  # shows Rush (band) and Toto
            tool("read", doc_id="Neil Peart.txt"),
            tool("answer", answer="Rush.", doc_ids=["Neil Peart.txt", "Toto.txt"]),
        ]
    )
    opts = Options(task="hotpotqa", data=str(data), agent="react", cache_dir=str(tmp_path / "cache"))
    p = prepare(opts, chat_model=model)
    assert p.primary == "f1" and p.config.system["agent"] == "react" and p.config.system["model"] == "scripted"
    assert p.corpus_info["documents"] == 3
    res = run_eval(p.eval_set, p.system, p.scorer, tmp_path / "run", p.config, primary=p.primary, progress=False)
    (row,) = read_rows(tmp_path / "run")
    assert row.status == "ok", row.error
    assert row.answer == "Rush." and row.metrics["em"] == 1.0 and row.metrics["f1"] == 1.0
    # cited titles (original ids) against the two supporting titles: 1 of 2 right, 1 of 2 found
    assert row.cited == ["Neil Peart", "Toto"]
    assert (row.metrics["sp_precision"], row.metrics["sp_recall"]) == (0.5, 0.5)
    # Rush (band) was in the grep result but not cited: apart, never in sp_recall
    assert row.metrics["sp_retrieved_not_cited"] == 0.5 and row.details["retrieved_not_cited"] == ["Rush (band)"]
    # the trace: it read Neil Peart (1 of 2 gold) and saw Rush (band) in the grep result
    assert row.metrics["evidence_read"] == 0.5 and row.metrics["evidence_seen"] == 1.0
    assert row.llm_calls == 3 and row.tool_calls == 3 and row.tokens > 0 and row.cost == "unmeasured"
    assert res.summary["metrics"]["em"] == 1.0


@pytest.mark.slow
def test_agent_evidence_seen_is_exact_through_the_real_graph(tmp_path: Path):
    # bug: "Rush (band).txt" counted as seen because grep showed "Tom Sawyer by Rush (band).txt" (substring match
    # over the result text); now the grep event's structured doc ids are compared exactly
    extra = ["Tom Sawyer by Rush (band)", ["The song's drummer joined the Modern Drummer Hall of Fame."]]
    record = {**RECORD, "context": [*RECORD["context"], extra]}
    data = tmp_path / "hotpot.jsonl"
    data.write_text(json.dumps(record) + "\n", encoding="utf-8")
    model = ScriptedModel([tool("grep", pattern="Modern Drummer"), tool("answer", answer="Rush", doc_ids=[])])
    opts = Options(task="hotpotqa", data=str(data), agent="react", cache_dir=str(tmp_path / "cache"))
    p = prepare(opts, chat_model=model)
    run_eval(p.eval_set, p.system, p.scorer, tmp_path / "run", p.config, primary=p.primary, progress=False)
    (row,) = read_rows(tmp_path / "run")
    assert row.status == "ok", row.error
    assert row.metrics["evidence_read"] == 0.0 and row.metrics["evidence_seen"] == 0.5  # Neil Peart only
    trace = [json.loads(line) for line in (tmp_path / "run" / row.details["trace"]).read_text().splitlines()]
    grep = next(e for e in trace if e["kind"] == "tool" and e["name"] == "grep")
    assert sorted(grep["data"]["doc_ids"]) == ["Neil Peart.txt", "Tom Sawyer by Rush (band).txt"]


@pytest.mark.slow
def test_react_citing_a_paragraph_it_never_saw_gets_no_credit(tmp_path: Path):
    data = tmp_path / "hotpot.jsonl"
    data.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    # it saw Neil Peart only (grep), and cites Rush (band) as well: an id it guessed, not evidence it was shown
    model = ScriptedModel([
        tool("grep", pattern="Modern Drummer"),
        tool("answer", answer="Rush", doc_ids=["Neil Peart.txt", "Rush (band).txt"]),
    ])
    opts = Options(task="hotpotqa", data=str(data), agent="react", cache_dir=str(tmp_path / "cache"))
    p = prepare(opts, chat_model=model)
    run_eval(p.eval_set, p.system, p.scorer, tmp_path / "run", p.config, primary=p.primary, progress=False)
    (row,) = read_rows(tmp_path / "run")
    assert row.cited == ["Neil Peart"] and (row.metrics["sp_precision"], row.metrics["sp_recall"]) == (1.0, 0.5)
    trace = [json.loads(line) for line in (tmp_path / "run" / row.details["trace"]).read_text().splitlines()]
    note = next(e for e in trace if e["kind"] == "note" and e["name"] == "doc_ids")
    assert note["data"]["dropped_unseen"] == ["Rush (band).txt"]
    assert next(e for e in trace if e["kind"] == "answer")["data"]["dropped_doc_ids"] == ["Rush (band).txt"]


@pytest.mark.slow
@pytest.mark.parametrize("form", [None, "separate-call"])
def test_iter_retgen_through_the_harness(tmp_path: Path, form):
    """The paper's form: the third generation is the answer, nothing is cited, so sp_recall is 0 and both supporting
    paragraphs (retrieved: 3 documents, k=5) are retrieved-not-cited. The option: the answer call cites one."""
    data = tmp_path / "hotpot.jsonl"
    data.write_text(json.dumps(RECORD) + "\n", encoding="utf-8")
    if form is None:
        script = ["Neil Peart", "Rush was a Canadian band", "Rush"]
    else:
        script = ["Neil Peart", "Rush was a Canadian band", {"answer": "Rush", "doc_ids": ["Neil Peart.txt"]}]
    opts = Options(task="hotpotqa", data=str(data), agent="iter-retgen", cache_dir=str(tmp_path / "cache"),
                   iter_retgen_answer=form)
    p = prepare(opts, chat_model=ScriptedModel(script))
    expected_form = form or "last-generation"
    assert p.config.system["iter_retgen_answer"] == expected_form and p.config.system["iter_retgen_steps"] == 3
    assert p.label == ("agent:iter-retgen@scripted" if form is None else "agent:iter-retgen[separate-call]@scripted")
    run_eval(p.eval_set, p.system, p.scorer, tmp_path / "run", p.config, primary=p.primary, progress=False)
    (row,) = read_rows(tmp_path / "run")
    assert row.status == "ok", row.error
    assert row.answer == "Rush" and row.metrics["em"] == 1.0 and row.llm_calls == 3
    if form is None:
        assert row.cited == [] and row.metrics["sp_recall"] == 0.0 and row.metrics["sp_retrieved_not_cited"] == 1.0
    else:
        assert row.cited == ["Neil Peart"] and row.metrics["sp_recall"] == 0.5
        assert row.metrics["sp_retrieved_not_cited"] == 0.5
    assert row.metrics["evidence_seen"] == 1.0
    # a run dir made in one form is refused for the other (the form decides the numbers)
    other = Options(task="hotpotqa", data=str(data), agent="iter-retgen", cache_dir=str(tmp_path / "cache"),
                    iter_retgen_answer="separate-call" if form is None else "last-generation")
    q = prepare(other, chat_model=ScriptedModel([]))
    from sleuth.errors import RunConfigMismatchError

    with pytest.raises(RunConfigMismatchError, match="iter_retgen_answer"):
        run_eval(q.eval_set, q.system, q.scorer, tmp_path / "run", q.config, resume=True, progress=False)
