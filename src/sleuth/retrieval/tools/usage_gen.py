"""Generated usage for catalogs without history: a model writes ``n`` plausible user requests per tool, offline;
the requests that pass the filter feed the same usage index as real usage (:mod:`sleuth.retrieval.tools.usage`),
marked ``source="generated"`` with the model's name (the index's manifest lists them per tool).

The job has the shape of SIRA's enrichment (:mod:`sleuth.retrieval.enrich`): one JSONL line per tool
(:class:`GenRecord`: proposed, kept, rejected with the reason, tokens), appended and flushed as soon as the tool is
done. A rerun skips the tools whose line exists with the same signature (a hash of the messages the model is sent:
the prompt, the tool as shown, ``n``), so a killed job resumes without asking again for finished tools; a torn
last line is ignored and its tool done again; a tool whose call failed is retried. Calls run in a thread pool
(``concurrency``).

The model is shown the tool with its name withheld and every mention of it in the description masked as "this
tool" (:func:`shown_tool`; ``mask_name=False`` shows it), after two demonstrations with real requests from the
tuning splits (``demonstrations=False``: the instructions alone).

The filter (:func:`filter_requests`), in order: ``empty``; ``names the tool`` (the tool's name as a whole word,
or its split form ``get weather`` for ``get_weather``, case-insensitive); ``copies the description`` (the request
is the description, holds it, or is a 5+ word piece of it); ``copies a demonstration`` (one of the prompt's
example requests); ``duplicate`` (same words, case and punctuation aside, as an earlier request for this tool);
``over the limit`` (past ``n``).

The reference (Tool2Vec's ToolBank, ``toolrag/data_generation``) generates multi-tool instructions from sampled
tool sets with in-context examples and a polishing pass; this is the per-tool form the issue asks for, with two
fixed in-context examples by default.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed, wait
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import ConfigError, ModelOutputError
from sleuth.fsutil import end_torn_line, read_jsonl_models
from sleuth.records import Usage
from sleuth.retrieval.tools.spec import ToolSpec, split_name
from sleuth.retrieval.tools.usage import UsageRecord
from sleuth.usagetap import UsageTap

PROMPT = "tool_usage_gen"  # two demonstrations from the tuning splits (the reference generates in context too)
PROMPT_ZERO_SHOT = "tool_usage_gen_zero_shot"


class UsageGenParams(BaseModel):
    n: int = Field(10, ge=1, le=50)
    max_description_chars: int = Field(1000, ge=100)
    concurrency: int = Field(4, ge=1, le=64)
    max_tokens: int = Field(600, ge=32)
    retries: int = Field(1, ge=0)
    # The prompt shows two tools with real requests (the default); False: the instructions alone. Measured on
    # RestBench with the 1.5B model: docs/results/evals.md.
    demonstrations: bool = True
    # The tool's name is withheld and masked in its description (the default; see shown_tool); False: shown.
    mask_name: bool = True

    def prompt(self) -> str:
        return PROMPT if self.demonstrations else PROMPT_ZERO_SHOT


class GeneratedRequests(BaseModel):
    requests: list[str] = Field(default_factory=list)


class GenRecord(BaseModel):
    tool: str
    sig: str
    model: str | None = None
    prompt: str | None = None  # the prompt's name (with or without demonstrations)
    masked: bool | None = None  # whether the tool's name was withheld (UsageGenParams.mask_name)
    proposed: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)
    rejected: list[dict[str, str]] = Field(default_factory=list)
    error: str | None = None
    usage: Usage = Field(default_factory=Usage)


class GenReport(BaseModel):
    tools: int
    done_before: int
    generated_now: int
    errors: int
    kept: int
    rejected: int
    usage: Usage
    seconds: float
    path: str
    added: Any = None  # the UsageReport of adding the kept requests to the catalog's usage index

    def tokens_per_tool(self) -> float:
        done = self.generated_now + self.errors
        return self.usage.total_tokens / done if done else 0.0

    def summary(self) -> str:
        added = f"; usage index: {self.added.summary()}" if self.added is not None else ""
        return (f"{self.generated_now} tools given requests now ({self.done_before} done before, {self.errors} "
                f"errors), {self.kept} requests kept, {self.rejected} rejected; {self.usage.total_tokens} tokens "
                f"({self.tokens_per_tool():.0f} per tool) in {self.usage.calls} calls, cost {self.usage.cost_text()}; "
                f"{self.seconds:.1f} s{added}")


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.casefold()))


def name_pattern(tool: ToolSpec) -> re.Pattern[str] | None:
    """What counts as naming ``tool`` (case aside): its name or title as a whole word, or their split forms
    (``get weather`` for ``get_weather``). An id without letters ("12") is no name a user would type: ``None``."""
    names = []
    for name in dict.fromkeys(n for n in (tool.name, tool.title) if n and re.search(r"[^\W\d_]", n)):
        names.append(re.escape(name))
        split = split_name(name)
        if len(split.split()) > 1:
            names.append(r"\s+".join(map(re.escape, split.split())))
    return re.compile(r"(?<!\w)(?:" + "|".join(names) + r")(?!\w)", re.IGNORECASE) if names else None


def filter_requests(tool: ToolSpec, proposed: Sequence[Any], n: int,
                    demonstrations: Sequence[str] = ()) -> tuple[list[str], list[dict[str, str]]]:
    """``(kept, rejected)``; each rejection is ``{"request", "reason"}`` (the rules in the module doc).
    ``demonstrations``: the prompt's example requests (:func:`demonstration_requests`), never kept."""
    demos = {_words(d) for d in demonstrations}
    named = name_pattern(tool)
    desc = _words(tool.description)
    kept: list[str] = []
    rejected: list[dict[str, str]] = []
    seen: set[str] = set()
    for raw in proposed:
        text = " ".join(str(raw if raw is not None else "").split())
        words = _words(text)
        reason = None
        if not words:
            reason = "empty"
        elif named is not None and named.search(text):
            reason = "names the tool"
        elif desc and (words == desc or desc in words or (len(words.split()) >= 5 and words in desc)):
            reason = "copies the description"
        elif words in demos:
            reason = "copies a demonstration"
        elif words in seen:
            reason = "duplicate"
        elif len(kept) >= n:
            reason = "over the limit"
        if words:
            seen.add(words)
        if reason:
            rejected.append({"request": text, "reason": reason})
        else:
            kept.append(text)
    return kept, rejected


def demonstration_requests(prompt: str) -> list[str]:
    """The example requests of the demonstrations in the prompt named ``prompt`` (its ``{"requests": [...]}``
    lines; none in the zero-shot prompt)."""
    import json

    from sleuth.prompts import load_sections

    system = load_sections(prompt)[0]["system"].replace("{{", "{").replace("}}", "}")
    return [q for line in system.splitlines() if line.startswith('{"requests": [') and "first request" not in line
            for q in json.loads(line)["requests"]]


def signature(tool: ToolSpec, params: UsageGenParams) -> str:
    """What the model is asked, hashed: the prompt, the tool as shown, ``n`` (a change asks again)."""
    blob = "\0".join(m["content"] for m in messages_for(tool, params))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


MASK = "this tool"


def shown_tool(tool: ToolSpec, params: UsageGenParams) -> tuple[str, str]:
    """The name and description the model is shown. With ``mask_name`` the name is withheld and every mention of it
    in the description reads "this tool": a model that is not told the name cannot write requests that name it
    (the filter drops those; the 1.5B model named the model of most Gorilla TorchHub tools, asked about it rather
    than for a task, and left them without usage)."""
    desc = tool.description[: params.max_description_chars]
    named = name_pattern(tool) if params.mask_name else None
    if named is None:
        return tool.display_name(), desc or "(none)"
    return "(name withheld)", named.sub(MASK, desc) or "(none)"


def messages_for(tool: ToolSpec, params: UsageGenParams) -> list[dict[str, str]]:
    from sleuth.prompts import load_sections

    sections = load_sections(params.prompt())[0]
    name, desc = shown_tool(tool, params)
    fill = {"name": name, "description": desc, "n": params.n}
    return [{"role": "system", "content": sections["system"].strip().format(**fill)},
            {"role": "user", "content": sections["user"].strip().format(**fill)}]


def read_gen_records(path: Path) -> dict[str, GenRecord]:
    return read_jsonl_models(path, GenRecord, lambda r: r.tool)


def generated_usage(path: str | Path) -> list[UsageRecord]:
    """The kept requests of a generation file as usage records (``source="generated"``), less any that copy the
    demonstrations of the prompt they were written with (files written before that rule)."""
    demos: dict[str | None, set[str]] = {}
    out = []
    for r in read_gen_records(Path(path)).values():
        if r.error is not None:
            continue
        if r.prompt not in demos:
            demos[r.prompt] = {_words(d) for d in demonstration_requests(r.prompt)} if r.prompt else set()
        out += [UsageRecord(request=q, tool=r.tool, source="generated", model=r.model)
                for q in r.kept if _words(q) not in demos[r.prompt]]
    return out


def generate_usage(
    catalog: Any,
    model: Any,
    path: str | Path,
    *,
    params: UsageGenParams | None = None,
    limit: int | None = None,
    add: bool = True,
    progress: bool = False,
    tracer: Any = None,
) -> GenReport:
    """Generate requests for up to ``limit`` tools of ``catalog`` not yet done in ``path`` (catalog order), then
    (``add``) add every kept request in the file to the catalog's usage index (only new ones are embedded)."""
    params = params or UsageGenParams()
    t0 = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    done = read_gen_records(path)
    todo, done_before = [], 0
    for t in catalog.tools:
        rec = done.get(t.name)
        if rec is not None and rec.error is None and rec.sig == signature(t, params):
            done_before += 1
        else:
            todo.append(t)
    if limit is not None:
        todo = todo[:limit]
    if todo and model is None:
        raise ConfigError("generating usage needs a model", hint="pass --model (e.g. local), or --limit 0")
    name = str(getattr(model, "model", None) or type(model).__name__)
    lock = threading.Lock()
    total = Usage()
    errors = kept_n = rejected_n = 0

    demos = demonstration_requests(params.prompt())

    def work(tool: ToolSpec) -> GenRecord:
        sig = signature(tool, params)
        tap = UsageTap(tracer)
        try:
            out, result = model.structured(messages_for(tool, params), GeneratedRequests, retries=params.retries,
                                           max_tokens=params.max_tokens, tracer=tap, name="tool_usage_gen")
        except (ModelOutputError, ValueError) as e:
            return GenRecord(tool=tool.name, sig=sig, model=name, prompt=params.prompt(),
                             masked=params.mask_name, error=f"{type(e).__name__}: {str(e)[:200]}", usage=tap.usage)
        kept, rejected = filter_requests(tool, out.requests, params.n, demos)
        return GenRecord(tool=tool.name, sig=sig, model=name, prompt=params.prompt(),
                         masked=params.mask_name, proposed=[str(q) for q in out.requests], kept=kept,
                         rejected=rejected, usage=tap.usage if tap.usage.calls else result.usage)

    from sleuth.progress import progress_bar

    written: set[Future[GenRecord]] = set()

    def write(fh: Any, fut: Future[GenRecord], bar: Any) -> None:
        nonlocal total, errors, kept_n, rejected_n
        rec = fut.result()
        with lock:
            fh.write(rec.model_dump_json() + "\n")
            fh.flush()
            written.add(fut)
            total = total + rec.usage
            errors += rec.error is not None
            kept_n += len(rec.kept)
            rejected_n += len(rec.rejected)
        bar.advance()

    end_torn_line(path)
    with path.open("a", encoding="utf-8") as fh, ThreadPoolExecutor(params.concurrency) as pool, \
            progress_bar(len(todo), "usage", progress) as bar:
        futures = [pool.submit(work, t) for t in todo]
        try:
            for fut in as_completed(futures):
                write(fh, fut, bar)
        except BaseException:  # a model fault or an interrupt: keep what the finished calls paid for
            for f in futures:
                f.cancel()
            wait(futures)
            for f in futures:
                if f not in written and not f.cancelled() and f.exception() is None:
                    write(fh, f, bar)
            raise
    report = GenReport(tools=len(catalog.tools), done_before=done_before, generated_now=len(todo) - errors,
                       errors=errors, kept=kept_n, rejected=rejected_n, usage=total,
                       seconds=time.perf_counter() - t0, path=str(path))
    if add:
        report.added = catalog.add_usage(generated_usage(path))
    return report
