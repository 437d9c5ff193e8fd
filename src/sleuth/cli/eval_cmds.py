"""`sleuth eval hotpotqa | beir | browsecomp-plus | tools | report`: run evaluations and compare runs.

Heavy imports (ranx, matplotlib, retrievers, models) happen inside the commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sleuth.cli.common import (
    API_BASE_OPTION,
    API_KEY_ENV_OPTION,
    ITER_RETGEN_ANSWER_OPTION,
    ITER_RETGEN_STEPS_OPTION,
    RERANK_OPT_OPTION,
    parse_options,
)
from sleuth.cli.otel_opts import OTEL_ENDPOINT_OPTION, OTEL_OPTION, close_live, live_tracer, status_line
from sleuth.cli.output import JSON_OPTION, Output, run_command

eval_app = typer.Typer(
    help="Evaluate retrievers, rerankers, tool retrieval and agents; compare runs.", no_args_is_help=True
)

DATA = typer.Option(..., "--data", "-d", help="The dataset file or folder (see docs/results/evals.md).")
AGENT = typer.Option(
    None, "--agent", "-a", help="Agent strategy to evaluate (router, auto, dci, react, sira, iter-retgen)."
)
POLICIES = typer.Option(
    None, "--policies", help="Agent policies: default | none | a comma list of fewshot, force-search, decompose, "
    "constrain-args, sufficiency[=lexical|model] (default: all for auto, none otherwise)."
)
BUDGET_TOKENS = typer.Option(None, "--budget-tokens", min=1, help="Agent token budget per question.")
BUDGET_SECONDS = typer.Option(None, "--budget-seconds", min=0.001, help="Agent wall-time budget per question (s).")
CONTEXT_LEVEL = typer.Option(None, "--context-level", min=0, max=4, help="dci context management level (0-4).")
METHOD = typer.Option(
    None, "--method", help="Retrieval method when no --agent: bm25, sira, dense, hybrid (tools: llm-query too)."
)
RERANK = typer.Option(None, "--rerank", help="Reranker applied to the retriever's top --rerank-depth hits.")
RERANK_DEPTH = typer.Option(20, "--rerank-depth", min=1, help="How many retrieved hits the reranker reorders.")
MODEL = typer.Option(None, "--model", "-m", help="Model for agents, SIRA, rerankers (litellm string or 'local').")
LIMIT = typer.Option(None, "--limit", "-n", min=1, help="Evaluate only the first N questions (after --seed shuffling).")
OUT = typer.Option(
    None, "--out", "-o", help="Run directory (default: $SLEUTH_HOME/runs/<task>-<data>-<system>-<time>)."
)
RESUME = typer.Option(False, "--resume", help="Continue the run in --out, skipping finished questions.")
SEED = typer.Option(None, "--seed", help="Shuffle the questions with this seed before --limit.")
CONCURRENCY = typer.Option(1, "--concurrency", "-j", min=1, help="Questions run at the same time.")
RAY = typer.Option(
    None, "--ray", metavar="ADDRESS", help="Run the questions on Ray workers (the ray extra): local (a Ray instance "
    "started for the job), auto (the cluster `ray start` runs here) or HOST:PORT. Rows and --resume as without it."
)
RAY_WORKERS = typer.Option(2, "--ray-workers", min=1, help="With --ray: how many workers (each builds its own system).")
K = typer.Option(100, "--k", min=1, help="How many documents/tools a retriever returns per question.")
PROGRESS = typer.Option(
    True, "--progress/--no-progress", help="Progress on stderr: a bar on a terminal, a plain line every few seconds "
    "otherwise."
)
ENRICHED = typer.Option(
    False, "--enriched", help="With --method bm25 or sira: search the in-index SIRA enrichment of the eval's corpus "
    "(made by `sleuth enrich CORPUS`; the error names the corpus when it has none)."
)
SIRA_FORM = typer.Option(
    None, "--sira-form", help="With --method sira: reference (the published form, default) or sleuth (the earlier "
    "rules: contiguous-phrase filter, query words dropped, per-phrase model weights, unigrams only)."
)
SIRA_TIERS = typer.Option(
    None, "--sira-tiers", help="With --method sira: the BM25 tiers scored, unigram, unigram,bigram or auto. The "
    "reference builds a 1-gram and a 2-gram index and keeps the one whose plain BM25 scores best; auto (the "
    "default when a tuning split exists) makes that choice on the tuning split, else unigram,bigram."
)
SIRA_TUNE = typer.Option(
    None, "--sira-tune", help="With --method sira: the tuning split for the tier choice: a BEIR folder (PATH or "
    "PATH:SPLIT, default split train) or a HotpotQA file (default: the BEIR folder's own train split)."
)
OTEL, OTEL_ENDPOINT = OTEL_OPTION, OTEL_ENDPOINT_OPTION
FUSION = typer.Option(
    None, "--fusion", help="With --method hybrid: rrf, zscore, minmax, vstash or adaptive (default: sleuth's "
    "default fusion; docs/results/fusion.md)."
)
CALIBRATE = typer.Option(
    False, "--calibrate", help="With --fusion adaptive: calibrate the fusion to the collection on the set's own "
    "questions (labels unused), each question with the prior of the other half of the questions."
)
PASSAGES = typer.Option(
    None, "--passages/--whole-docs", help="With --method bm25, dense or hybrid: search passages (documents scored by "
    "their best passage) or whole documents (default: passages for dense, whole documents for bm25; "
    "docs/results/chunking.md)."
)
CHUNK_SIZE = typer.Option(None, "--chunk-size", help="Passage size in characters (default 1000).")
CHUNK_OVERLAP = typer.Option(None, "--chunk-overlap", help="Passage overlap in characters (default 0).")
CACHE = typer.Option(
    None, "--cache-dir", help="Where imported eval corpora are cached (default $SLEUTH_HOME/eval-corpora)."
)


def _question_trace(row: Any, events: list[Any]) -> list[Any]:
    """A question's events as one run for the exporter: a ``run start`` (the question, its id) leads them when the
    system recorded none (retrievers and rerankers record only their own calls)."""
    from sleuth.records import TraceEvent

    if any(e.kind == "run" and e.name == "start" for e in events):
        return events
    start = TraceEvent(run_id=events[0].run_id, step=0, ts=min(e.ts - (e.latency_s or 0.0) for e in events),
                       kind="run", name="start",
                       args={"question": row.question, "name": f"eval {row.id}", "question_id": row.id})
    return [start, *events]


def _run(
    opts: Any, out: Path | None, limit: int | None, resume: bool, concurrency: int, as_json: bool,
    otel: tuple[bool, str | None] = (False, None), ray: tuple[str | None, int] = (None, 2),
) -> None:
    def work() -> Output:
        live = live_tracer(None, *otel)
        try:
            result = _work(live)
        finally:
            status = close_live(live)
        if status is not None:
            result.data["otel"] = status
            result.text += "\n" + status_line(status)
        return result

    def _work(live: Any) -> Output:
        from sleuth.errors import ConfigError
        from sleuth.evals.build import default_out_dir, prepare
        from sleuth.evals.runner import run_eval

        if resume and out is None:
            raise ConfigError("--resume needs --out", hint="pass the run directory to continue with --out DIR")
        from sleuth.config import sleuth_home

        prepared = prepare(opts)
        run_dir = out or sleuth_home() / "runs" / default_out_dir(opts).name
        executor = None
        if ray[0]:
            from functools import partial

            from sleuth.evals.build import worker_parts
            from sleuth.evals.executors import RayWorkers

            executor = RayWorkers(partial(worker_parts, prepared.options), address=ray[0], workers=ray[1])
        result = run_eval(
            prepared.eval_set,
            prepared.system,
            prepared.scorer,
            run_dir,
            prepared.config,
            primary=prepared.primary,
            concurrency=concurrency,
            executor=executor,
            resume=resume,
            limit=limit,
            progress=opts.progress,
            corpus_info=prepared.corpus_info,
            on_trace=None if live is None else lambda row, events: live.add_run(_question_trace(row, events)),
        )
        s = result.summary
        data = {
            "ok": True,
            "run_dir": result.run_dir,
            "task": opts.task,
            "dataset": prepared.eval_set.name,
            "system": prepared.label,
            "primary_metric": prepared.primary,
            "ran": result.ran,
            "skipped_finished": result.skipped,
            "bad_records": len(prepared.eval_set.bad),
            **{k: v for k, v in s.items() if k != "ok"},
            "questions_ok": s["ok"],
        }
        metrics = "  ".join(f"{k} {v:.4f}" for k, v in s["metrics"].items() if isinstance(v, float))
        text = (
            f"{prepared.eval_set.name} · {prepared.label}: {s['ok']} questions ({result.ran} run now, {result.skipped} "
            f"already done), {s['n_errors']} errors (each counts 0 in the means)"
            + (f", {s['n_judge_errors']} judge errors (scored 0)" if s.get("n_judge_errors") else "")
            + f"\n{metrics}\n"
            f"tokens/q {s['tokens_per_question']}  cost {s['cost']}  LLM calls/q {s['llm_calls_per_question']}  "
            f"tool calls/q {s['tool_calls_per_question']}  s/q {s['seconds_per_question']}\n"
            + (f"skipped {len(prepared.eval_set.bad)} bad records (see {result.run_dir}/bad_records.jsonl)\n"
               if prepared.eval_set.bad else "")
            + f"rows: {result.run_dir}/rows.jsonl  ·  report: sleuth eval report {result.run_dir}"
        )
        return Output(data, text)

    run_command(as_json, work, typer.echo)


def _options(task: str, data: str, rerank_opt: list[str] | None = None, **kw: Any) -> Any:
    from sleuth.evals.build import Options

    extra = {**kw.pop("extra", {}), **({"reranker": parse_options(rerank_opt)} if rerank_opt else {})}
    return Options(task=task, data=data, extra=extra, **kw)


def _agent_flags(policies: str | None, budget_tokens: int | None, budget_seconds: float | None,
                 context_level: int | None) -> dict[str, Any]:
    flags = {"policies": policies, "budget_tokens": budget_tokens, "budget_seconds": budget_seconds,
             "context_level": context_level}
    return {"agent_flags": {k: v for k, v in flags.items() if v is not None}}


API_BASE, API_KEY_ENV = API_BASE_OPTION, API_KEY_ENV_OPTION
IR_ANSWER, IR_STEPS = ITER_RETGEN_ANSWER_OPTION, ITER_RETGEN_STEPS_OPTION


@eval_app.command("hotpotqa")
def hotpotqa_cmd(
    data: str = DATA, agent: str = AGENT, method: str = METHOD, rerank: str = RERANK, rerank_depth: int = RERANK_DEPTH,
    rerank_opt: list[str] = RERANK_OPT_OPTION,
    model: str = MODEL, api_base: str = API_BASE, api_key_env: str = API_KEY_ENV, limit: int = LIMIT, out: Path = OUT,
    resume: bool = RESUME, seed: int = SEED, concurrency: int = CONCURRENCY, ray: str = RAY,
    ray_workers: int = RAY_WORKERS, k: int = K, progress: bool = PROGRESS,
    cache_dir: str = CACHE, policies: str = POLICIES, budget_tokens: int = BUDGET_TOKENS,
    budget_seconds: float = BUDGET_SECONDS, context_level: int = CONTEXT_LEVEL, enriched: bool = ENRICHED,
    sira_form: str = SIRA_FORM, sira_tiers: str = SIRA_TIERS, sira_tune: str = SIRA_TUNE,
    iter_retgen_answer: str = IR_ANSWER,
    iter_retgen_steps: int = IR_STEPS, fusion: str = FUSION, calibrate: bool = CALIBRATE,
    passages: bool = PASSAGES, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP,
    otel: bool = OTEL, otel_endpoint: str = OTEL_ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """HotpotQA (official distractor JSON/JSONL or IRCoT-style JSONL). With --agent: answer EM/F1, supporting
    paragraphs cited (and those retrieved but not cited, apart), evidence read; without: retrieval of the
    supporting paragraphs from the pooled paragraphs."""
    opts = _options("hotpotqa", data, rerank_opt, agent=agent, method=method, rerank=rerank, rerank_depth=rerank_depth,
                    model=model, api_base=api_base, api_key_env=api_key_env, seed=seed, k=k, progress=progress,
                    cache_dir=cache_dir, enriched=enriched, sira_form=sira_form, sira_tiers=sira_tiers,
                    sira_tune=sira_tune, iter_retgen_answer=iter_retgen_answer, iter_retgen_steps=iter_retgen_steps,
                    fusion=fusion, calibrate=calibrate, passages=passages, chunk_size=chunk_size,
                    chunk_overlap=chunk_overlap,
                    extra=_agent_flags(policies, budget_tokens, budget_seconds, context_level))
    _run(opts, out, limit, resume, concurrency, as_json, (otel, otel_endpoint), (ray, ray_workers))


@eval_app.command("beir")
def beir_cmd(
    data: str = DATA, method: str = METHOD, rerank: str = RERANK, rerank_depth: int = RERANK_DEPTH,
    rerank_opt: list[str] = RERANK_OPT_OPTION, model: str = MODEL, api_base: str = API_BASE,
    api_key_env: str = API_KEY_ENV,
    split: str = typer.Option("test", "--split", help="qrels/<split>.tsv (test, train, dev)."),
    agent: str = AGENT, limit: int = LIMIT, out: Path = OUT, resume: bool = RESUME, seed: int = SEED,
    concurrency: int = CONCURRENCY, ray: str = RAY, ray_workers: int = RAY_WORKERS, k: int = K,
    progress: bool = PROGRESS, cache_dir: str = CACHE,
    enriched: bool = ENRICHED, sira_form: str = SIRA_FORM, sira_tiers: str = SIRA_TIERS,
    sira_tune: str = SIRA_TUNE, iter_retgen_answer: str = IR_ANSWER,
    iter_retgen_steps: int = IR_STEPS, fusion: str = FUSION, calibrate: bool = CALIBRATE,
    passages: bool = PASSAGES, chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP,
    otel: bool = OTEL, otel_endpoint: str = OTEL_ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """A BEIR folder (corpus.jsonl, queries.jsonl, qrels/<split>.tsv): nDCG@10, MRR@10, Recall@10/100."""
    opts = _options("beir", data, rerank_opt, agent=agent, method=method, rerank=rerank, rerank_depth=rerank_depth,
                    model=model, api_base=api_base, api_key_env=api_key_env, seed=seed, k=k, split=split,
                    progress=progress, cache_dir=cache_dir, enriched=enriched, sira_form=sira_form,
                    sira_tiers=sira_tiers, sira_tune=sira_tune,
                    iter_retgen_answer=iter_retgen_answer, iter_retgen_steps=iter_retgen_steps,
                    fusion=fusion, calibrate=calibrate, passages=passages, chunk_size=chunk_size,
                    chunk_overlap=chunk_overlap)
    _run(opts, out, limit, resume, concurrency, as_json, (otel, otel_endpoint), (ray, ray_workers))


@eval_app.command("browsecomp-plus")
def browsecomp_cmd(
    data: str = DATA,
    corpus: str = typer.Option(
        None, "--corpus", help="The BrowseComp-Plus documents: a corpus folder or a JSONL file."
    ),
    answers: str = typer.Option(
        None, "--answers", help="Reference answers: TSV id<TAB>answer, or JSONL {query_id, answer}."
    ),
    judge_model: str = typer.Option(None, "--judge-model", help="Model for the LLM judge (default: --model)."),
    agent: str = AGENT, method: str = METHOD, rerank: str = RERANK, rerank_depth: int = RERANK_DEPTH,
    rerank_opt: list[str] = RERANK_OPT_OPTION,
    model: str = MODEL, api_base: str = API_BASE, api_key_env: str = API_KEY_ENV, limit: int = LIMIT, out: Path = OUT,
    resume: bool = RESUME, seed: int = SEED, concurrency: int = CONCURRENCY, ray: str = RAY,
    ray_workers: int = RAY_WORKERS, k: int = K, progress: bool = PROGRESS,
    cache_dir: str = CACHE, iter_retgen_answer: str = IR_ANSWER, iter_retgen_steps: int = IR_STEPS,
    otel: bool = OTEL, otel_endpoint: str = OTEL_ENDPOINT,
    as_json: bool = JSON_OPTION,
) -> None:
    """BrowseComp-Plus: judged answer accuracy (with --agent and --answers), evidence recall, retrieval metrics."""
    opts = _options("browsecomp-plus", data, rerank_opt, agent=agent, method=method, rerank=rerank,
                    rerank_depth=rerank_depth, model=model, judge_model=judge_model, api_base=api_base,
                    api_key_env=api_key_env, seed=seed, k=k, corpus=corpus, answers=answers, progress=progress,
                    cache_dir=cache_dir, iter_retgen_answer=iter_retgen_answer, iter_retgen_steps=iter_retgen_steps)
    _run(opts, out, limit, resume, concurrency, as_json, (otel, otel_endpoint), (ray, ray_workers))


@eval_app.command("tools")
def tools_cmd(
    data: str = DATA,
    subset: str = typer.Option(None, "--subset", help="Which set inside --data (gorilla: huggingface, torchhub, ...)."),
    method: str = METHOD, model: str = MODEL, api_base: str = API_BASE, api_key_env: str = API_KEY_ENV,
    limit: int = LIMIT, out: Path = OUT, resume: bool = RESUME,
    seed: int = SEED, concurrency: int = CONCURRENCY, ray: str = RAY, ray_workers: int = RAY_WORKERS,
    k: int = typer.Option(10, "--k", min=1, help="How many tools are retrieved per query."),
    progress: bool = PROGRESS, fusion: str = FUSION, calibrate: bool = CALIBRATE,
    usage: str = typer.Option(None, "--usage", help="tool2vec: the usage requests, a JSONL file of {request, tool} "
                              "or a usage folder (`sleuth tools usage generate --data ...`)."),
    usage_form: str = typer.Option(None, "--usage-form", help="tool2vec: mean (the paper's) or centroid."),
    usage_fusion: str = typer.Option(None, "--usage-fusion", help="tool2vec: fuse with the description ranking."),
    usage_fuse_with: str = typer.Option(None, "--usage-fuse-with",
                                        help="With --usage-fusion: dense (the default) or hybrid (BM25 and dense)."),
    otel: bool = OTEL, otel_endpoint: str = OTEL_ENDPOINT, as_json: bool = JSON_OPTION,
) -> None:
    """Tool retrieval (MetaTool, StableToolBench, Gorilla APIBench, MTRB): nDCG@10, Recall@5/10, Sufficiency@5/10."""
    t2v = {k_: v for k_, v in {"usage": usage, "usage_form": usage_form, "usage_fusion": usage_fusion,
                               "usage_fuse_with": usage_fuse_with}.items() if v}
    opts = _options("tools", data, method=method, model=model, api_base=api_base, api_key_env=api_key_env, seed=seed,
                    k=k, subset=subset, progress=progress, fusion=fusion, calibrate=calibrate, extra=t2v)
    _run(opts, out, limit, resume, concurrency, as_json, (otel, otel_endpoint), (ray, ray_workers))


@eval_app.command("report")
def report_cmd(
    run_dirs: list[Path] = typer.Argument(..., help="One or more run directories to compare."),
    out: Path = typer.Option(
        None, "--out", "-o", help="Where report.md/report.html go (default: the run dir, or ./sleuth-eval-report)."
    ),
    no_html: bool = typer.Option(False, "--no-html", help="Only the Markdown summary (no matplotlib)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare runs: a Markdown summary and a self-contained HTML page with plots."""

    def work() -> Output:
        from sleuth.evals.report import write_report

        result = write_report(list(run_dirs), out, html_page=not no_html)
        text = result["markdown"] + "\nwrote " + ", ".join(result["paths"].values())
        return Output({k: v for k, v in result.items() if k != "markdown"}, text)

    run_command(as_json, work, typer.echo)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
