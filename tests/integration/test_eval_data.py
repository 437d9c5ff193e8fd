"""Every loader on the real files in ../shared/data, as they are there (skipped when absent)."""

from __future__ import annotations

import pytest

from sleuth.errors import DataError
from sleuth.evals.datasets import load_beir, load_browsecomp_plus, load_hotpotqa, load_tools
from tests.conftest import shared_path

pytestmark = pytest.mark.data


@pytest.mark.parametrize(
    ("name", "count", "schema"),
    [
        ("distractor_dev_reflexion100.jsonl", 100, "official"),
        ("distractor_dev_migres200.jsonl", 200, "official"),
        ("distractor_dev_ircot500.jsonl", 500, "ircot"),
        ("hipporag_train100/hotpotqa_train.json", 100, "official"),
    ],
)
def test_hotpotqa_files(name: str, count: int, schema: str) -> None:
    es = load_hotpotqa(shared_path("hotpotqa", *name.split("/")))
    assert len(es) == count and not es.bad
    for q in es.questions:
        assert q.answers and q.metadata["schema"] == schema
        assert len(q.supporting_titles) == 2, q.id  # HotpotQA: two supporting paragraphs per question
        assert set(q.supporting_titles) <= {p.title for p in q.paragraphs}


def test_beir_scifact_splits_and_pooled_hotpotqa() -> None:
    test = load_beir(shared_path("beir", "scifact"))
    assert (len(test), test.info["qrels"], test.info["corpus_documents"]) == (300, 339, 5183) and not test.bad
    train = load_beir(shared_path("beir", "scifact"), "train")
    assert (len(train), train.info["qrels"]) == (809, 919)
    pooled = load_beir(shared_path("hotpotqa", "pooled_open_ircot500"))
    assert len(pooled) == 500 and pooled.info["qrels"] == 1000


def test_browsecomp_plus_queries_and_qrels() -> None:
    es = load_browsecomp_plus(shared_path("browsecomp_plus"))
    assert len(es) == 830 and not es.bad
    assert sum(len(q.relevance) for q in es.questions) == 5064
    assert sum(len(q.gold_doc_ids) for q in es.questions) == 2407
    assert all(not q.answers for q in es.questions)  # answers are not public here


@pytest.mark.parametrize(
    ("path", "subset", "count", "bad"),
    [
        ("metatool", None, 21111, 0),
        ("stabletoolbench", None, 763, 4),  # 4 qrels rows name APIs absent from the pooled corpus: 2 queries lose all
        ("gorilla_apibench", "torchhub", 186, 0),
        ("gorilla_apibench", "tensorflowhub", 688, 0),
        ("gorilla_apibench", "huggingface", 834, 0),
        ("mtrb", "metatool", 90, 0),
        ("mtrb", "restbench", 90, 0),
    ],
)
def test_tool_sets(path: str, subset: str | None, count: int, bad: int) -> None:
    es = load_tools(shared_path(path), subset)
    assert (len(es), len(es.bad)) == (count, bad), es.bad_summary()
    ids = {t.id for t in es.tools}
    assert all(set(q.relevance) <= ids for q in es.questions)


def test_mtrb_toolbench_has_no_catalog_here() -> None:
    with pytest.raises(DataError, match="no tool list"):
        load_tools(shared_path("mtrb"), "toolbench")


def test_gorilla_torchhub_train_split_is_usage_disjoint_from_the_eval_queries() -> None:
    from sleuth.evals.datasets.tools import gorilla_train_usage, load_tools

    data = shared_path("gorilla_apibench")
    usage = gorilla_train_usage(data, "torchhub")
    es = load_tools(data, "torchhub")
    assert len(usage) == 837 and {u.tool for u in usage} <= {t.id for t in es.tools}
    assert len({u.tool for u in usage}) == 94  # every TorchHub API has usage
    assert all(u.request and "'Instruction'" not in u.request for u in usage)
    assert not {u.request.strip() for u in usage} & {q.question.strip() for q in es.questions}
    with pytest.raises(DataError, match="no APIBench train split"):
        gorilla_train_usage(data, "huggingface")
