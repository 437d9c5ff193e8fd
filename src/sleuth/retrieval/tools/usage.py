"""Usage-based tool representations (Tool2Vec: Moon et al. 2024, "Efficient and Scalable Estimation of Tool
Representations in Vector Space"): a tool is embedded by the requests that use it, not by its description.

Read against the reference (SqueezeAILab/Tool2Vec, ``toolrag/tool2vec/embedding_generator.py`` and
``evaluate_t2v_embedding.py``): each usage request is embedded on its own (E5 ``query:`` embeddings, L2-normalised,
or OpenAI text-embedding-3-small), a tool's vector is the average of its requests' embeddings, and a new request is
scored against every tool by a plain dot product with the tool vectors (``np.dot(t2v_data, q)``, no
renormalisation of the average). sleuth embeds with the catalog's embedder (packaged MiniLM by default, also
unit rows), so with the default ``form="mean"`` a tool's score is the request's mean cosine to that tool's usage
requests. ``form="centroid"`` (an option, not the paper's) scales each average to unit length: the cosine to the
centroid, which no longer favours tools whose requests agree with one another.

A tool with no usage request is represented by its description embedding (what ``dense`` uses) and is listed in
:attr:`UsageReport.fallback`; its score is then a plain cosine.

Storage (:class:`UsageIndex`, a folder written under the index lock by ``index_store.building``):

* ``usage.jsonl``: one :class:`UsageRecord` per line (request, tool, ``source`` "given" or "generated", the
  generating model);
* ``vectors.npy``: row i = the embedding of line i's request (float32, unit rows);
* ``meta.json`` (the manifest, written last): the embedder, dimension, counts per source and per tool, which
  requests were generated (per tool), and the sha256 of both files, checked on every load.

Adding usage is incremental: only requests not already stored (same tool, same request after whitespace and case
folding) are embedded; the stored rows are copied. A change of embedder makes the folder stale
(:class:`~sleuth.errors.StaleIndexError`); :meth:`UsageIndex.reembed` rebuilds the vectors from the JSONL.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from sleuth.errors import ConfigError, DataError, IndexCorruptError, IndexMissingError, StaleIndexError

Form = Literal["mean", "centroid"]
FORMS: tuple[str, ...] = ("mean", "centroid")
FORMAT = 1


class UsageRecord(BaseModel):
    request: str
    tool: str
    source: Literal["given", "generated"] = "given"
    model: str | None = None  # the model that wrote a generated request


class UsageReport(BaseModel):
    """What one :meth:`UsageIndex.add` (or a catalog's load of its usage) did; nothing here is fatal."""

    offered: int = 0
    added: int = 0
    duplicates: int = 0  # already stored (same tool, same request)
    empty: int = 0
    unknown_tools: dict[str, int] = Field(default_factory=dict)  # tool name the catalog lacks -> requests naming it
    stored: int = 0  # requests in the index afterwards
    tools_with_usage: int = 0
    fallback: list[str] = Field(default_factory=list)  # catalog tools with no usage: their description is used

    def summary(self) -> str:
        unknown = sum(self.unknown_tools.values())
        parts = [f"{self.added} of {self.offered} usage requests added ({self.duplicates} already stored, "
                 f"{self.empty} empty, {unknown} naming {len(self.unknown_tools)} tools the catalog lacks)",
                 f"{self.stored} stored; {self.tools_with_usage} tools represented by their usage, "
                 f"{len(self.fallback)} by their description (no usage)"]
        return "; ".join(parts)

    def warnings(self) -> list[str]:
        out = []
        if self.unknown_tools:
            top = ", ".join(f"{n!r} ({c})" for n, c in sorted(self.unknown_tools.items(), key=lambda x: -x[1])[:5])
            out.append(f"{sum(self.unknown_tools.values())} usage requests name {len(self.unknown_tools)} tools the "
                       f"catalog lacks and were skipped: {top}" + (" ..." if len(self.unknown_tools) > 5 else ""))
        if self.fallback:
            names = ", ".join(map(repr, self.fallback[:5])) + (" ..." if len(self.fallback) > 5 else "")
            out.append(f"{len(self.fallback)} tools have no usage requests and are represented by their "
                       f"description: {names}")
        return out


def read_usage_file(path: str | Path) -> list[UsageRecord]:
    """A JSONL file of ``{"request": ..., "tool": ...}`` (``source``/``model`` optional). A line that is not such
    an object is a :class:`~sleuth.errors.DataError` naming the line."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"no usage file at {p}", hint='pass a JSONL file of {"request": "...", "tool": "..."} lines')
    out = []
    with p.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                out.append(UsageRecord.model_validate(json.loads(line)))
            except (json.JSONDecodeError, ValidationError, TypeError) as e:
                raise DataError(f"{p} line {n} is not a usage record: {str(e).splitlines()[0][:200]}",
                                hint='each line must be {"request": "...", "tool": "TOOL NAME"}') from None
    return out


def request_key(tool: str, request: str) -> str:
    return tool + "\0" + " ".join(request.split()).casefold()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class UsageIndex:
    """Usage requests and their embeddings, in memory; :meth:`load` / :meth:`add` persist to a folder."""

    def __init__(self, records: Sequence[UsageRecord], vectors: np.ndarray, embedder_name: str,
                 path: Path | None = None) -> None:
        if len(records) != len(vectors):
            raise IndexCorruptError(f"usage index: {len(records)} requests but {len(vectors)} vectors",
                                    hint="delete the usage folder and add the usage again")
        self.records = list(records)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.embedder_name = embedder_name
        self.path = path
        self.keys = {request_key(r.tool, r.request) for r in self.records}

    def __len__(self) -> int:
        return len(self.records)

    # -- persistence ------------------------------------------------------------------------------------------
    @classmethod
    def empty(cls, embedder_name: str, dim: int, path: Path | None = None) -> UsageIndex:
        return cls([], np.zeros((0, dim), np.float32), embedder_name, path)

    @classmethod
    def load(cls, path: str | Path, embedder_name: str | None = None) -> UsageIndex:
        """Open a usage folder; ``embedder_name`` set -> :class:`StaleIndexError` if it was embedded with another."""
        path = Path(path)
        meta_p = path / "meta.json"
        if not meta_p.is_file():
            raise IndexMissingError(f"no usage index at {path}", hint="add usage first (ToolCatalog.add_usage)")
        try:
            meta = json.loads(meta_p.read_text(encoding="utf-8"))
            for name in ("usage.jsonl", "vectors.npy"):
                if _sha(path / name) != meta["sha256"][name]:
                    raise IndexCorruptError(f"{path / name} does not match its checksum in meta.json",
                                            hint="delete the usage folder and add the usage again")
            records = [UsageRecord.model_validate_json(line) for line in
                       (path / "usage.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
            vectors = np.load(path / "vectors.npy", allow_pickle=False)
        except IndexCorruptError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise IndexCorruptError(f"usage index at {path} is unreadable: {e}",
                                    hint="delete the usage folder and add the usage again") from None
        if vectors.ndim != 2 or vectors.shape[0] != len(records) or not np.isfinite(vectors).all():
            raise IndexCorruptError(f"usage index at {path}: vectors of shape {vectors.shape} for {len(records)} "
                                    "requests", hint="delete the usage folder and add the usage again")
        if embedder_name is not None and meta.get("embedder") != embedder_name:
            raise StaleIndexError(
                f"usage index at {path} was embedded with {meta.get('embedder')!r}, not {embedder_name!r}",
                hint="re-embed it (UsageIndex.reembed) or use the embedder it was built with")
        return cls(records, vectors, str(meta.get("embedder")), path)

    @classmethod
    def open(cls, path: str | Path, embedder: Any) -> UsageIndex:
        """The folder's index for ``embedder``: empty when missing, re-embedded (from its JSONL) when stale."""
        try:
            return cls.load(path, embedder.name)
        except IndexMissingError:
            return cls.empty(embedder.name, embedder.dim, Path(path))
        except StaleIndexError:
            return cls.reembed(path, embedder)

    @classmethod
    def reembed(cls, path: str | Path, embedder: Any) -> UsageIndex:
        old = cls.load(path)
        new = cls.empty(embedder.name, embedder.dim, Path(path))
        new.add(old.records, embedder, None)
        return new

    def manifest(self) -> dict[str, Any]:
        per_tool: dict[str, dict[str, int]] = {}
        generated: dict[str, list[str]] = {}
        models: Counter[str] = Counter()
        for r in self.records:
            d = per_tool.setdefault(r.tool, {"given": 0, "generated": 0})
            d[r.source] += 1
            if r.source == "generated":
                generated.setdefault(r.tool, []).append(r.request)
                models[r.model or "unknown"] += 1
        return {"format": FORMAT, "embedder": self.embedder_name, "dim": int(self.vectors.shape[1]),
                "requests": len(self.records),
                "sources": dict(Counter(r.source for r in self.records)),
                "generated_by": dict(models), "per_tool": per_tool, "generated": generated}

    def _write(self, folder: Path) -> None:
        with (folder / "usage.jsonl").open("w", encoding="utf-8") as fh:
            for r in self.records:
                fh.write(r.model_dump_json(exclude_none=True) + "\n")
        with (folder / "vectors.npy").open("wb") as fh:
            np.save(fh, self.vectors, allow_pickle=False)
        meta = self.manifest() | {"sha256": {n: _sha(folder / n) for n in ("usage.jsonl", "vectors.npy")}}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False), encoding="utf-8")

    # -- adding -----------------------------------------------------------------------------------------------
    def add(self, records: Iterable[UsageRecord], embedder: Any, tools: Iterable[str] | None) -> UsageReport:
        """Add the records naming a tool of ``tools`` (all when None) that are not stored yet; embed only those.
        With a :attr:`path`, the folder is re-read and rewritten under its build lock (another process's
        additions are kept)."""
        from sleuth.retrieval import index_store

        if embedder.name != self.embedder_name:
            raise ConfigError(f"this usage index is embedded with {self.embedder_name!r}, not {embedder.name!r}",
                              hint="open it with UsageIndex.open(path, embedder), which re-embeds it")
        offered = list(records)
        known = set(tools) if tools is not None else None
        rep = UsageReport(offered=len(offered))
        if self.path is None:
            self._merge(offered, embedder, known, rep)
            return rep
        with index_store.building(self.path) as tmp:
            if (self.path / "meta.json").is_file():  # someone may have added since this one was opened
                cur = UsageIndex.load(self.path)
                if cur.embedder_name == self.embedder_name:  # (else this is a re-embedding that replaces it)
                    self.records, self.vectors, self.keys = cur.records, cur.vectors, cur.keys
            self._merge(offered, embedder, known, rep)
            self._write(tmp)
        return rep

    def _merge(self, offered: list[UsageRecord], embedder: Any, known: set[str] | None, rep: UsageReport) -> None:
        unknown: Counter[str] = Counter()
        new: list[UsageRecord] = []
        keys: set[str] = set()
        for r in offered:
            text = " ".join(r.request.split())
            if not text:
                rep.empty += 1
                continue
            if known is not None and r.tool not in known:
                unknown[r.tool] += 1
                continue
            key = request_key(r.tool, text)
            if key in self.keys or key in keys:
                rep.duplicates += 1
                continue
            keys.add(key)
            new.append(r.model_copy(update={"request": text}))
        rep.unknown_tools = dict(unknown)
        if new:  # embedded first: a failed call leaves the index as it was
            vecs = embedder.embed([r.request for r in new])
            self.vectors = np.ascontiguousarray(np.vstack([self.vectors, vecs]), dtype=np.float32)
            self.records += new
            self.keys |= keys
        rep.added, rep.stored = len(new), len(self.records)

    # -- tool vectors -----------------------------------------------------------------------------------------
    def tool_vectors(self, names: Sequence[str], description_vectors: np.ndarray,
                     form: str = "mean") -> tuple[np.ndarray, np.ndarray]:
        """``(matrix, counts)``: row i = the average of tool ``names[i]``'s request embeddings (``form="mean"``,
        the reference's), or that average scaled to unit length (``"centroid"``); a tool with no request gets its
        description vector. ``counts[i]`` = its number of usage requests."""
        if form not in FORMS:
            raise ConfigError(f"unknown tool2vec form {form!r}", hint=f"use one of {', '.join(FORMS)}")
        pos = {n: i for i, n in enumerate(names)}
        rows = [(pos[r.tool], j) for j, r in enumerate(self.records) if r.tool in pos]
        dim = description_vectors.shape[1]
        sums = np.zeros((len(names), dim), np.float64)
        counts = np.zeros(len(names), np.int64)
        if rows:
            tool_idx = np.fromiter((t for t, _ in rows), np.int64, len(rows))
            rec_idx = np.fromiter((j for _, j in rows), np.int64, len(rows))
            np.add.at(sums, tool_idx, self.vectors[rec_idx].astype(np.float64))
            np.add.at(counts, tool_idx, 1)
        has = counts > 0
        out = np.array(description_vectors, dtype=np.float64, copy=True)
        out[has] = sums[has] / counts[has, None]
        if form == "centroid":
            norms = np.linalg.norm(out[has], axis=1, keepdims=True)
            out[has] = out[has] / np.where(norms == 0, 1.0, norms)
        return np.ascontiguousarray(out, dtype=np.float32), counts

    def report(self, names: Sequence[str]) -> UsageReport:
        have = {r.tool for r in self.records}
        return UsageReport(stored=len(self.records), tools_with_usage=sum(n in have for n in names),
                           fallback=[n for n in names if n not in have])
