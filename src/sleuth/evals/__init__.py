"""Evaluation harness: loaders (``datasets``), metrics, an LLM judge, a resumable runner and reports.

    from sleuth.evals.build import Options, prepare
    from sleuth.evals.runner import run_eval

    p = prepare(Options(task="beir", data="data/beir/scifact", method="bm25"))
    result = run_eval(p.eval_set, p.system, p.scorer, "runs/scifact-bm25", p.config, primary=p.primary)

A *system* is any callable ``(EvalQuestion) -> SystemOutput``; see :mod:`sleuth.evals.systems`.
"""

from __future__ import annotations
