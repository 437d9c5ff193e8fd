"""Tool-retrieval sets: a query, a catalog of tools, the gold tools.

Layouts read as they are in ``../shared/data``:

* a BEIR folder (``corpus.jsonl`` = tools, ``queries.jsonl``, ``qrels/test.tsv``), directly or as the
  ``beir_format/`` subfolder (MetaTool, StableToolBench), or ``beir_format/<subset>/`` (Gorilla APIBench:
  ``huggingface``, ``tensorflowhub``, ``torchhub``; pick one with ``subset``);
* MTRB (``mtr_<name>_test.json`` with ``query``, ``relevant Tools``, ``relevant IDs``, plus the tool list:
  ``ts_*api_list*.json`` as ``{name: description}`` or ``*tool_rewrite.json`` as records with ``ID``).

Tool ids are the catalog's ids (BEIR ``_id``; MTRB tool names for MetaTool, ``ID`` for RestBench).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sleuth.errors import DataError
from sleuth.evals.datasets.base import BadRecord, EvalQuestion, EvalSet, ToolSpec, file_checksum, require_questions
from sleuth.evals.datasets.beir import load_beir


def _is_beir(p: Path) -> bool:
    return (p / "corpus.jsonl").is_file() and (p / "qrels").is_dir()


def _pick(options: list[Path], subset: str | None, where: Path) -> Path:
    names = sorted(o.name for o in options)
    if subset is None:
        if len(options) == 1:
            return options[0]
        raise DataError(f"{where} holds several tool sets: {', '.join(names)}", hint="choose one with --subset NAME")
    for o in options:
        if o.name == subset:
            return o
    raise DataError(f"no subset {subset!r} in {where}", hint=f"choose one of: {', '.join(names)}")


def _tools_from_beir_corpus(path: Path) -> list[ToolSpec]:
    tools = []
    with path.open(encoding="utf-8") as fh:
        for raw in fh:
            if raw.strip():
                try:
                    rec = json.loads(raw)
                    tools.append(
                        ToolSpec(
                            id=str(rec["_id"]),
                            name=str(rec.get("title") or rec["_id"]),
                            description=str(rec.get("text", "")),
                        )
                    )
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue  # reported by load_beir's corpus pass
    return tools


def _load_mtrb(folder: Path) -> EvalSet:
    tests = sorted(folder.glob("mtr_*_test.json"))
    if not tests:
        raise DataError(f"{folder}: no mtr_*_test.json", hint="pass an MTRB subset folder (metatool, restbench)")
    lists = [p for p in folder.glob("*.json") if p not in tests]
    if not lists:
        raise DataError(
            f"MTRB subset {folder.name} has no tool list next to {tests[0].name}",
            hint="this subset's tool list is not available here; use metatool or restbench",
        )
    bad: list[BadRecord] = []
    catalog = json.loads(lists[0].read_text(encoding="utf-8"))
    tools: list[ToolSpec] = []
    by_id: dict[int, str] = {}
    if isinstance(catalog, dict):  # {name: description}
        for n, (name, desc) in enumerate(catalog.items()):
            tools.append(ToolSpec(id=name, name=name, description=str(desc)))
            by_id[n] = name
    else:
        for n, rec in enumerate(catalog, 1):
            try:
                tid = str(rec["ID"])
                desc = rec.get("rewrite_description") or rec.get("tool_description") or ""
                tools.append(
                    ToolSpec(
                        id=tid, name=str(rec.get("tool_usage") or rec.get("tool_name") or tid), description=str(desc)
                    )
                )
                by_id[int(rec["ID"])] = tid
            except (KeyError, TypeError, ValueError) as e:
                bad.append(BadRecord(source=str(lists[0]), where=f"record {n}", error=f"tool record: {e}"))
    by_name = {t.name: t.id for t in tools}
    if not isinstance(catalog, dict):
        by_name |= {str(r.get("tool_name")): str(r["ID"]) for r in catalog if isinstance(r, dict) and "ID" in r}
    questions = []
    for n, rec in enumerate(json.loads(tests[0].read_text(encoding="utf-8")), 1):
        where = f"record {n}"
        try:
            query = str(rec["query"]).strip()
            names: list[Any] = rec.get("relevant Tools") or []
            ids: list[Any] = rec.get("relevant IDs") or []
        except (KeyError, TypeError) as e:
            bad.append(BadRecord(source=str(tests[0]), where=where, error=f"needs 'query': {e}"))
            continue
        # Gold tools by name (tool_usage / name); the numeric IDs are a fallback (a few point outside the list).
        gold: list[str] = []
        missing: list[str] = []
        for i, t in enumerate(names):
            found = by_name.get(str(t))
            if found is None and i < len(ids):
                try:
                    found = by_id.get(int(ids[i]))
                except (TypeError, ValueError):
                    found = None
            (gold if found is not None else missing).append(found if found is not None else str(t))
        if missing or not gold or not query:
            bad.append(
                BadRecord(
                    source=str(tests[0]),
                    where=where,
                    error=f"gold tools not in the catalog: {missing}" if missing else "empty query or no gold tools",
                )
            )
            continue
        questions.append(
            EvalQuestion(
                id=f"{folder.name}_{n}",
                question=query,
                relevance={g: 1 for g in gold},
                gold_doc_ids=gold,
                metadata={"where": where},
            )
        )
    es = EvalSet(
        name=f"mtrb_{folder.name}",
        kind="tools",
        questions=questions,
        bad=bad,
        files=[str(tests[0]), str(lists[0])],
        checksum=file_checksum([tests[0], lists[0]]),
        tools=tools,
        info={"tools": len(tools)},
    )
    return require_questions(es, f"MTRB {folder}")


def load_tools(path: str | Path, subset: str | None = None, split: str = "test") -> EvalSet:
    """Load a tool-retrieval set from one of the layouts above."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(f"tool-retrieval folder not found: {root}", hint="pass --data with a folder")
    if subset is not None and (root / subset).is_dir():
        root = root / subset
    if (root / "beir_format").is_dir():
        root = root / "beir_format"
    if not _is_beir(root) and not list(root.glob("mtr_*_test.json")):
        options = [p for p in root.iterdir() if p.is_dir() and (_is_beir(p) or list(p.glob("mtr_*_test.json")))]
        if not options:
            raise DataError(
                f"{root} is not a tool-retrieval set",
                hint="pass a BEIR folder, a folder with beir_format/, or an MTRB subset folder",
            )
        root = _pick(options, subset, root)
    if list(root.glob("mtr_*_test.json")):
        return _load_mtrb(root)
    name = root.parent.name if root.name == "beir_format" else f"{root.parent.parent.name}_{root.name}"
    es = load_beir(root, split, name=name, kind="tools")
    es.tools = _tools_from_beir_corpus(root / "corpus.jsonl")
    es.info["tools"] = len(es.tools)
    return es


def split_by_query(questions: list[EvalQuestion], *, seed: int = 0, train: float = 0.8) -> tuple[list[EvalQuestion],
                                                                                                    list[EvalQuestion]]:
    """A seeded ``train``/rest split *by query*: questions whose texts are equal (whitespace and case aside) fall
    on the same side, so no test request is also a usage request. Deterministic for a given seed and set."""
    import random

    groups: dict[str, list[EvalQuestion]] = {}
    for q in questions:
        groups.setdefault(" ".join(q.question.split()).casefold(), []).append(q)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    cut = round(len(keys) * train)
    return ([q for k in keys[:cut] for q in groups[k]], [q for k in keys[cut:] for q in groups[k]])


def usage_records(questions: list[EvalQuestion]) -> list[Any]:
    """The questions of a train split as tool2vec usage: one ``(request, tool)`` per gold tool."""
    from sleuth.retrieval.tools.usage import UsageRecord

    return [UsageRecord(request=q.question, tool=t) for q in questions for t, g in q.relevance.items() if g > 0]


def gorilla_train_usage(data: str | Path, subset: str = "torchhub") -> list[Any]:
    """APIBench's train split (``apibench/<hub>_train.json``: TorchHub's 837) as tool2vec usage: each record's
    instruction (the user's request) and the catalog tool whose ``api_call`` it uses (the BEIR corpus of
    ``beir_format/<subset>``; a record whose call no tool has is skipped). No train request is an eval query."""
    import ast
    import re

    from sleuth.retrieval.tools.usage import UsageRecord

    root = Path(data).expanduser()
    hub = {"torchhub": "torchhub", "tensorflowhub": "tensorflow", "huggingface": "huggingface"}.get(subset, subset)
    train = root / "apibench" / f"{hub}_train.json"
    corpus = root / "beir_format" / subset / "corpus.jsonl"
    if not train.is_file() or not corpus.is_file():
        raise DataError(f"no APIBench train split for {subset} under {root}", hint="TorchHub has one: torchhub")
    by_call: dict[str, str] = {}
    for line in corpus.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        by_call.setdefault(str(json.loads(rec["text"]).get("api_call")), rec["_id"])
    out = []
    for line in train.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        m = re.search(r"'Instruction':\s*(.*?),\s*'Output'", rec.get("code", ""), re.S)
        tool = by_call.get(str((rec.get("api_data") or {}).get("api_call")))
        if m and tool:
            text = m.group(1).strip()
            with_quotes = text[:1] in "\"'" and text[-1:] == text[:1]
            out.append(UsageRecord(request=ast.literal_eval(text) if with_quotes else text, tool=tool))
    return out
