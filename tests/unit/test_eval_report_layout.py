"""The eval report's HTML page rendered in headless Chromium: a QA group with a dozen metric columns fits 1400 and
800 px (the runs are the table's columns), two runs of one system have distinct column heads, no table cells
overlap. Skips when no Chromium is installed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sleuth.evals.report import write_report
from sleuth.evals.runner import run_eval
from sleuth.evals.scoring import qa_scorer
from tests.unit.page_layout import chromium, layout
from tests.unit.test_eval_runner import CONFIG, LookupSystem, make_set

pytestmark = pytest.mark.skipif(
    chromium() is None, reason="no Chromium found (chromium, chromium-browser, google-chrome): apt-get install chromium"
)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    es = make_set(4)
    es.kind = "qa"
    for name in ("run-a", "run-b"):  # the same system twice
        run_eval(es, LookupSystem(), qa_scorer(), root / name, CONFIG, primary="f1", progress=False)
    write_report([root / "run-a", root / "run-b"], root / "rep")
    return root / "rep" / "report.html"


def test_two_runs_of_one_system_are_told_apart(report):
    page = report.read_text(encoding="utf-8")
    heads = re.findall(r"<th>([^<]+)<br><span class='sys'>([^<]+)</span></th>", page)
    assert heads == [("run-a", "lookup"), ("run-b", "lookup")]
    metrics = re.findall(r"<th class='m'>([^<]+)</th>", page)
    assert len(metrics) > 12 and "f1" in metrics and "tokens/q" in metrics


@pytest.mark.parametrize("width", [1400, 800])
def test_report_fits_the_window(report, width):
    got = layout(report, width, [("table", "th, td"), ("body", "h1, h2, .tablewrap")], ".tablewrap, td, th")
    m = got["closed"]
    assert m["boxes"] > 40, m
    assert m["page_width"] <= width and m["wide"] == [], m["wide"][:5]
    assert m["overlaps"] == [] and m["clipped"] == [], (m["overlaps"][:5], m["clipped"][:5])


def test_manifest_differences_are_listed(tmp_path):
    from sleuth.evals.report import load_runs, manifest_differences

    es = make_set(2)
    es.kind = "qa"
    run_eval(es, LookupSystem(), qa_scorer(), tmp_path / "a", CONFIG, primary="f1", progress=False)
    other = CONFIG.model_copy(update={"system": {"method": "lookup", "k": 5}})
    run_eval(es, LookupSystem(), qa_scorer(), tmp_path / "b", other, primary="f1", progress=False)
    diffs = manifest_differences(load_runs([tmp_path / "a", tmp_path / "b"]))
    assert diffs == [{"config.system.k": "10"}, {"config.system.k": "5"}]
    write_report([tmp_path / "a", tmp_path / "b"], tmp_path / "rep")
    assert "differs in config.system.k=5" in (tmp_path / "rep" / "report.html").read_text(encoding="utf-8")
