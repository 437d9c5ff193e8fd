"""The SIRA tier choice's rules (sleuth.evals.tiers; the choice itself on SciFact is in
tests/integration/test_sira_tier_choice.py): which split it tunes on, what is refused, what is recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sleuth.errors import ConfigError
from sleuth.evals.build import Options, resolve_sira_tiers

DOCS = ["graphene conducts heat well", "graphene sheets and heat", "copper wire conducts current",
        "heat pumps move heat", "zinc coatings stop rust"]


def beir_set(root: Path, *, train: bool) -> Path:
    """A BEIR folder whose train query "graphene heat" wants d0 (and test query "rust" wants d4)."""
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "title": "", "text": t}) + "\n"
                                               for i, t in enumerate(DOCS)))
    (root / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "rust"}) + "\n"
                                        + json.dumps({"_id": "t1", "text": "graphene heat"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td4\t1\n")
    if train:
        (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nt1\td0\t1\n")
    return root


def test_a_train_split_is_the_tuning_split_and_the_choice_is_recorded(tmp_path: Path) -> None:
    data = beir_set(tmp_path / "b", train=True)
    o = resolve_sira_tiers(Options(task="beir", data=str(data), method="sira", cache_dir=str(tmp_path / "c")))
    choice = o.extra["sira_tier_choice"]
    assert choice["tune"] == "b:train" and choice["questions"] == 1
    assert set(choice["scores"]) == {"unigram", "unigram,bigram"}
    assert o.sira_tiers == max(choice["scores"], key=lambda t: choice["scores"][t])


def test_no_tuning_split_keeps_the_default_and_says_so(tmp_path: Path) -> None:
    data = beir_set(tmp_path / "b", train=False)
    o = resolve_sira_tiers(Options(task="beir", data=str(data), method="sira"))
    assert o.sira_tiers is None and o.extra["sira_tier_choice"].startswith("none")
    with pytest.raises(ConfigError) as e:
        resolve_sira_tiers(Options(task="beir", data=str(data), method="sira", sira_tiers="auto"))
    assert "--sira-tune" in e.value.hint


def test_given_tiers_win_and_conflicts_are_refused(tmp_path: Path) -> None:
    data = beir_set(tmp_path / "b", train=True)
    o = resolve_sira_tiers(Options(task="beir", data=str(data), method="sira", sira_tiers="unigram,bigram"))
    assert o.sira_tiers == "unigram,bigram" and "sira_tier_choice" not in o.extra
    bad = [dict(sira_tiers="unigram", sira_tune=str(data)), dict(sira_form="sleuth", sira_tiers="auto"),
           dict(sira_tune=str(tmp_path / "missing"))]
    for kw in bad:
        with pytest.raises(ConfigError):
            resolve_sira_tiers(Options(task="beir", data=str(data), method="sira", **kw))
    with pytest.raises(ConfigError):
        resolve_sira_tiers(Options(task="beir", data=str(data), method="bm25", sira_tune=str(data)))
    assert resolve_sira_tiers(Options(task="beir", data=str(data), method="bm25")).extra == {}
