from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import ToolArgumentError
from sleuth.tools import corpus_tools
from sleuth.tools.read import ReadArgs, read


def test_read_range_and_cap(make_corpus) -> None:
    root = make_corpus({"a.txt": "\n".join(f"line {i}" for i in range(1, 101))})
    c = Corpus(root)
    r = read(c, ReadArgs(doc_id="a.txt", start_line=10, end_line=12))
    assert r.text.splitlines() == ["10| line 10", "11| line 11", "12| line 12"]
    assert not r.truncated and r.total_lines == 100
    r = read(c, ReadArgs(doc_id="a.txt", max_chars=100))
    assert r.truncated and f"start_line={r.end_line + 1}" in r.note
    with pytest.raises(ToolArgumentError):
        read(c, ReadArgs(doc_id="a.txt", start_line=500))
    with pytest.raises(ValueError):
        ReadArgs(doc_id="a.txt", start_line=5, end_line=2)


def test_read_errors_are_observations(sample_corpus: Path) -> None:
    tk = corpus_tools(sample_corpus)
    for doc_id, kind in [("../x", "PathOutsideCorpusError"), ("/etc/passwd", "PathOutsideCorpusError"),
                         ("people/ada.md", "DocumentNotFoundError")]:
        obs = tk.invoke("read", {"doc_id": doc_id})
        assert obs.is_error and obs.error_type == kind
    obs = tk.invoke("read", {"doc_id": "people/ada.md"})
    assert "people/ada_morrow.md" in obs.text  # a suggestion the model can use


def test_ls_prefix_glob_limit(sample_corpus: Path) -> None:
    tk = corpus_tools(sample_corpus)
    out = tk.invoke("ls", {"prefix": "places"})
    assert out.data["total"] == 4
    out = tk.invoke("ls", {"glob": "*.txt"})
    assert set(out.data["doc_ids"]) == {"projects/kestrel_bridge.txt", "reports/rv_gannet_log_2012.txt"}
    out = tk.invoke("ls", {"limit": 2})
    assert out.truncated and out.data["not_shown"] == 9
    assert tk.invoke("ls", {"prefix": "../"}).is_error


def test_tool_trace_events(sample_corpus: Path) -> None:
    from sleuth.tracing import MemoryTracer

    tracer = MemoryTracer()
    tk = corpus_tools(sample_corpus)
    tk.invoke("grep", {"pattern": "Gannet"}, tracer=tracer)
    tk.invoke("read", {"doc_id": "nope"}, tracer=tracer)
    tk.invoke("unknown_tool", {}, tracer=tracer)
    ev = tracer.of_kind("tool")
    assert [e.name for e in ev] == ["grep", "read", "unknown_tool"]
    assert ev[0].error is None and ev[0].result_chars and ev[0].latency_s is not None
    assert ev[0].args == {"pattern": "Gannet"}
    assert ev[1].error and ev[2].error
    assert [e.step for e in ev] == [1, 2, 3]
