"""`sleuth ask` (the search agent) and `sleuth trace show | html | otel` (read or export a run's trace).

Every run gets a run id, a JSONL trace (default ``$SLEUTH_HOME/runs/<run id>.jsonl``) and checkpoints in
``$SLEUTH_HOME/runs/checkpoints.sqlite``, so ``sleuth ask --resume RUN_ID --corpus DIR`` continues a run that
was interrupted. Heavy imports (langgraph, litellm) happen inside the commands.

Exit codes of ``sleuth ask``: 0 the model answered; :data:`NO_ANSWER_EXIT` (3) the run ended without an answer
(``answer`` is null; ``stop_reason`` and ``note`` say why); 2 a usage or setup error.
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
    get_model,
    resolve_corpus,
)
from sleuth.cli.otel_opts import (
    OTEL_ENDPOINT_OPTION,
    OTEL_OPTION,
    TRACE_CONTENT_OPTION,
    capture_content,
    close_live,
    live_tracer,
    status_line,
)
from sleuth.cli.output import JSON_OPTION, cli_errors, print_json

NO_ANSWER_EXIT = 3  # `sleuth ask` finished without an answer (a budget ran out, the model gave none)

SKIP_CORRUPT_OPTION = typer.Option(
    False, "--skip-corrupt", help="Skip lines that are not trace events (each is reported with its line number)."
)

trace_app = typer.Typer(
    help="Read a run's trace: a terminal timeline, an HTML page, or OpenTelemetry spans.", no_args_is_help=True
)


def _runs_dir() -> Path:
    from sleuth.config import sleuth_home

    return sleuth_home() / "runs"


def ask_cmd(
    question: str = typer.Argument(None, help="The question (omit it with --resume)."),
    corpus: Path = typer.Option(
        None, "--corpus", "-c", help="The corpus folder (default: $SLEUTH_CORPUS, else [corpus] path in config.toml)."
    ),
    agent: str = typer.Option(
        "router", "--agent", "-a", help="router | auto | dci | react | sira | iter-retgen (dci: grep/read/ls, no index)"
    ),
    model: str = typer.Option(None, "--model", "-m", help="local (default), gguf:/path, or a litellm model string."),
    api_base: str = API_BASE_OPTION,
    api_key_env: str = API_KEY_ENV_OPTION,
    trace: Path = typer.Option(None, "--trace", "-t", help="JSONL trace file (default: $SLEUTH_HOME/runs/RUN.jsonl)."),
    no_trace: bool = typer.Option(False, "--no-trace", help="Keep the trace in memory only."),
    budget: str = typer.Option(
        None, "--budget", help="Limits, comma-separated: steps=8, tokens=30000, seconds=600, cost=0.05 (any subset)."
    ),
    budget_tokens: int = typer.Option(
        None, "--budget-tokens", min=1, help="Token budget (overrides tokens= in --budget); auto plans by it."
    ),
    budget_seconds: float = typer.Option(
        None, "--budget-seconds", min=0.001, help="Wall-time budget in seconds (overrides seconds= in --budget)."
    ),
    policies: str = typer.Option(
        None, "--policies", help="Small-model policies: default | none | a comma list of fewshot, force-search, "
        "decompose, constrain-args, sufficiency[=lexical|model] (-name: off). Default: all for auto, none otherwise.",
    ),
    context_level: int = typer.Option(
        None, "--context-level", min=0, max=4, help="dci context management: 0 none, 1-2 truncation, "
        "3 + micro-compaction (the DCI paper's runs), 4 + a summary when the window fills (default)."
    ),
    scan_budget: float = typer.Option(
        None, "--scan-budget", min=0.001, help="dci: the largest corpus it may grep, in MB (default 1024)."
    ),
    dci_workspace: int = typer.Option(
        None, "--dci-workspace", min=1, max=2000, help="dci on a corpus too large to grep whole: grep inside the "
        "top N documents of a BM25 search (workspace_grep) instead; no scan budget. Needs the BM25 index."
    ),
    index: bool = typer.Option(
        False, "--index", help="Build a missing BM25 index into a folder that has none yet (without it, search "
        "falls back to grep there and the trace says so)."
    ),
    k: int = typer.Option(5, "--k", min=1, max=50, help="Passages per retrieval (sira, iter-retgen)."),
    iter_retgen_answer: str = ITER_RETGEN_ANSWER_OPTION,
    iter_retgen_steps: int = ITER_RETGEN_STEPS_OPTION,
    run_id: str = typer.Option(None, "--run-id", help="Name this run (default: a timestamped id)."),
    resume: str = typer.Option(None, "--resume", help="Continue the interrupted run with this id."),
    checkpoint: Path = typer.Option(None, "--checkpoint", help="Checkpoint database (default: $SLEUTH_HOME/runs)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Do not print the steps as they happen."),
    otel: bool = OTEL_OPTION,
    otel_endpoint: str = OTEL_ENDPOINT_OPTION,
    trace_content: bool = TRACE_CONTENT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer a question from the documents in a corpus with the search agent.

    Exit code 0: answered. Exit code 3: the run ended without an answer ("answer" is null in --json; "stop_reason"
    and "note" say why, e.g. a budget ran out). Exit code 2: bad input or setup (the message says what to fix).
    """
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    with cli_errors(as_json):
        from sleuth.agents import AGENTS, Agent
        from sleuth.agents.agent import _new_run_id
        from sleuth.agents.options import agent_options, iter_retgen_settings
        from sleuth.errors import ConfigError

        if agent not in AGENTS:
            raise ConfigError(f"unknown agent {agent!r}", hint=f"use one of: {', '.join(AGENTS)}")
        if resume is None and not (question or "").strip():
            raise ConfigError("no question given", hint='sleuth ask "QUESTION" --corpus DIR (or --resume RUN_ID)')
        from sleuth.tracing import JSONLTracer, MemoryTracer

        rid = resume or run_id or _new_run_id()
        trace_path = None if no_trace else (trace or _runs_dir() / f"{rid}.jsonl")
        db = checkpoint or _runs_dir() / "checkpoints.sqlite"
        chat: Any = model
        if api_base or api_key_env:
            chat = get_model(model, api_base, api_key_env)
        iter_retgen = iter_retgen_settings(agent, iter_retgen_answer, iter_retgen_steps)
        options = agent_options(agent, budget, budget_tokens, budget_seconds, policies, context_level, scan_budget,
                                dci_workspace)
        root = resolve_corpus(corpus)
        # an index is built only where one was built before (the state folder exists) or with --index
        options["build_index"] = index or (root / ".sleuth").is_dir()
        content = capture_content(trace_content)
        inner = JSONLTracer(trace_path, run_id=rid, capture_content=content) if trace_path else MemoryTracer(
            rid, capture_content=content)
        tracer = live_tracer(inner, otel, otel_endpoint, trace_path=trace_path)
        try:
            with Agent.for_corpus(
                root, model=chat, agent=agent, checkpoint=db, k=k, **options, **iter_retgen,
            ) as runner:
                if resume:
                    result = runner.resume(resume, trace=tracer)
                else:
                    result = None
                    for ev in runner.stream(question, run_id=rid, trace=tracer):
                        if ev.kind == "done":
                            result = ev.result
                        elif not quiet and not as_json:
                            err.print(f"[dim]{escape(ev.node)}[/] {escape(ev.summary)}", highlight=False)
                assert result is not None
        finally:
            otel_status = close_live(tracer)
            if tracer is inner and hasattr(inner, "close"):
                inner.close()
    payload = {
        "answer": result.answer,  # the model's answer, or null
        "note": result.note,  # why there is no answer ("" when there is one)
        "doc_ids": result.doc_ids,  # the ones the model cited (never a default)
        "dropped_doc_ids": result.dropped_doc_ids,  # cited by the model without having been shown them
        "usage": {
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
            "calls": result.usage.calls,
            "cost": result.usage.cost,
            "token_source": result.usage.token_source,
        },
        "trace": result.trace_path,
        "run_id": result.run_id,
        "agent": result.agent,
        "strategy": result.strategy,
        "route_reason": result.route_reason,
        "stop_reason": result.stop_reason,
        "answered_by": result.answered_by,
        "steps": result.steps,
        "llm_calls": result.llm_calls,
        "tool_calls": result.tool_calls,
        "seconds": result.seconds,
        "caveat": result.caveat,  # an answer given with a reservation ("" when none)
        "plan": result.plan,  # auto: the steps planned; escalations: each revision and why
        "escalations": result.escalations,
        "policies": result.policies,
        "trail": result.trail,  # every step that ran: node, tokens, seconds, LLM and tool calls
    }
    if otel_status is not None:
        payload["otel"] = otel_status
    if as_json:
        print_json(payload)
        if result.answer is None:
            raise typer.Exit(NO_ANSWER_EXIT)
        return
    out = Console()
    if result.answer is None:
        out.print(f"[bold yellow]no answer[/] ({escape(result.stop_reason)}): {escape(result.note)}", highlight=False)
    else:
        out.print(f"[bold green]{escape(result.answer)}[/]", highlight=False)
        out.print(f"documents: {escape(', '.join(result.doc_ids) or '-')}", highlight=False)
        if result.caveat:
            out.print(f"[yellow]caveat[/]: {escape(result.caveat)}", highlight=False)
    if result.plan:
        moves = "; ".join(f"{e.get('from')} -> {e.get('to') or 'stopped'} ({e.get('reason', '')})"
                          for e in result.escalations)
        out.print(f"[dim]plan {' -> '.join(result.plan)}{'; ' + escape(moves) if moves else ''}[/]", highlight=False)
    note = f"; budget '{result.budget_exhausted}' ran out" if result.budget_exhausted else ""
    out.print(
        f"[dim]{result.strategy}{' (' + escape(result.route_reason) + ')' if result.route_reason else ''}; "
        f"{result.llm_calls} LLM calls, {result.tool_calls} tool calls; tokens {result.usage.prompt_tokens} prompt + "
        f"{result.usage.completion_tokens} completion; cost {result.usage.cost_text()}; {result.seconds} s{note}\n"
        f"run {result.run_id}; trace {escape(result.trace_path or '-')}[/]",
        highlight=False,
    )
    if otel_status is not None:
        out.print(f"[dim]{escape(status_line(otel_status))}[/]", highlight=False)
    if result.answer is None:
        raise typer.Exit(NO_ANSWER_EXIT)


@trace_app.command("show")
def trace_show_cmd(
    file: Path = typer.Argument(..., help="A JSONL trace written by sleuth."),
    nodes: bool = typer.Option(True, "--nodes/--no-nodes", help="Show graph-node events."),
    skip_corrupt: bool = SKIP_CORRUPT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Print a run's trace as a timeline (or its totals with --json)."""
    with cli_errors(as_json):
        from sleuth.tracing.show import load_trace, render, summarize

        got = load_trace(file, skip_corrupt=skip_corrupt)
    _report_skipped([str(x) for x in got.skipped if not x.torn], file)
    if as_json:
        print_json(summarize(got.events))
        return
    render(got.events, show_nodes=nodes)


def _report_skipped(skipped: list[str], file: Path) -> None:
    for line in skipped:
        typer.echo(f"warning: {file}, {line}: skipped", err=True)


@trace_app.command("html")
def trace_html_cmd(
    file: Path = typer.Argument(..., help="A JSONL trace written by sleuth."),
    out: Path = typer.Option(None, "--out", "-o", help="The HTML file (default: FILE with .html)."),
    skip_corrupt: bool = SKIP_CORRUPT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Write a self-contained HTML page of a run's trace (opens offline in any browser)."""
    with cli_errors(as_json):
        from sleuth.tracing.html import write_html
        from sleuth.tracing.show import load_trace

        got = load_trace(file, skip_corrupt=skip_corrupt)
        dest = write_html(file, out, events=got.events)
    _report_skipped([str(x) for x in got.skipped if not x.torn], file)
    if as_json:
        print_json({"html": str(dest)})
    else:
        typer.echo(str(dest))


@trace_app.command("otel")
def trace_otel_cmd(
    file: Path = typer.Argument(..., help="A JSONL trace written by sleuth."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the spans as an OTLP/JSON request to this file."),
    endpoint: str = typer.Option(
        None, "--endpoint",
        help="Send the spans to this OTLP/HTTP collector (a base URL: http://localhost:4318, Phoenix "
             "http://localhost:6006); default OTEL_EXPORTER_OTLP_ENDPOINT with --send.",
    ),
    send: bool = typer.Option(False, "--send", help="Send to the collector OTEL_EXPORTER_OTLP_* names."),
    header: list[str] = typer.Option(
        None, "--header", "-H", help="KEY=VALUE, repeatable; added to OTEL_EXPORTER_OTLP_HEADERS."
    ),
    protocol: str = typer.Option(
        None, "--protocol", help="http/protobuf (default) or http/json (default: OTEL_EXPORTER_OTLP_PROTOCOL)."
    ),
    service_name: str = typer.Option(
        None, "--service-name", help="The resource's service.name (default: OTEL_SERVICE_NAME, else sleuth)."
    ),
    content: bool = typer.Option(
        True, "--content/--no-content", help="Export the prompts, completions and tool results the trace holds."
    ),
    skip_corrupt: bool = SKIP_CORRUPT_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Export a run's trace as OpenTelemetry spans through the OpenTelemetry SDK: send them to an OTLP collector
    (--endpoint, --send), write them as OTLP/JSON (--out), or print the OTLP/JSON (neither).
    Needs sleuth-search[otel]."""
    with cli_errors(as_json):
        from sleuth.tracing.otel import dumps, export_file, parse_headers

        request, summary = export_file(
            file, out=out, endpoint=endpoint, send=send, headers=parse_headers(header or []), protocol=protocol,
            service_name=service_name, content=content, skip_corrupt=skip_corrupt,
        )
    _report_skipped([x for x in summary["skipped"] if "torn" not in x], file)
    sent = "endpoint" in summary
    if out is None and not sent:
        if as_json:
            print_json(request)
        else:
            typer.echo(dumps(request), nl=False)
    elif as_json:
        print_json(summary)
    else:
        spans = f"{summary['spans']} spans, {summary['traces']} trace(s)"
        if out is not None:
            typer.echo(f"wrote {spans} to {out}")
        if sent:
            typer.echo(f"sent {spans} to {summary['endpoint']} ({summary['protocol']})")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask_cmd)
    app.add_typer(trace_app, name="trace")
