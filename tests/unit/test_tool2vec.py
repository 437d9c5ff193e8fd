"""tool2vec: the usage index ranks by the paper's formula (checked by hand with numpy), it persists and grows
incrementally, bad input is reported, and generated usage resumes after a killed job without asking again."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from sleuth.errors import ConfigError, DataError, IndexCorruptError, ModelConnectionError
from sleuth.llm.fake import ScriptedModel
from sleuth.retrieval.embeddings import normalize
from sleuth.retrieval.tools import ToolCatalog, ToolCatalogError, ToolSpec, UsageIndex, UsageRecord, read_usage_file
from sleuth.retrieval.tools.usage_gen import (
    GenRecord,
    UsageGenParams,
    demonstration_requests,
    filter_requests,
    generate_usage,
    generated_usage,
    messages_for,
    read_gen_records,
    signature,
)
from sleuth.tracing import MemoryTracer

TOOLS = [
    ToolSpec(name="get_weather", description="Get the current weather forecast for a city"),
    ToolSpec(name="searchMovies", description="Search for movies by title and return their ids"),
    ToolSpec(name="send_email", description="Send an email message to a recipient"),
    ToolSpec(name="convert_currency", description="Convert an amount of money between currencies"),
    ToolSpec(name="book_flight", description="Book a flight ticket between two airports"),
]
USAGE = [
    ("will it rain in Oslo tomorrow?", "get_weather"),
    ("do I need an umbrella this afternoon", "get_weather"),
    ("how hot is it in Cairo right now", "get_weather"),
    ("find that film with the talking dog", "searchMovies"),
    ("which movie had Keanu in the matrix", "searchMovies"),
    ("write to my landlord that the heater is broken", "send_email"),
    ("how many yen is 50 euros", "convert_currency"),
    ("what is 200 dollars in pounds", "convert_currency"),
]  # book_flight has no usage: it falls back to its description


class HashEmbedder:
    """A real (if crude) embedder: hashed bag of words, unit rows; counts the texts it embeds."""

    def __init__(self, name: str = "test-hash-256", dim: int = 256) -> None:
        self.name, self.dim, self.max_tokens = name, dim, 512
        self.seen: list[str] = []

    def embed(self, texts, *, progress=False):  # type: ignore[no-untyped-def]
        self.seen += list(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, zlib.crc32(w.encode()) % self.dim] += 1.0
        return normalize(out) if len(texts) else out


def records(pairs=USAGE):  # type: ignore[no-untyped-def]
    return [UsageRecord(request=r, tool=t) for r, t in pairs]


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    from sleuth.retrieval.embeddings import get_embedder

    try:
        return get_embedder("minilm")
    except Exception as e:  # the dense extra is missing
        pytest.skip(f"MiniLM not available: {e}")


@pytest.mark.slow
@pytest.mark.parametrize("form", ["mean", "centroid"])
def test_scores_are_what_the_formula_says(minilm, form: str) -> None:  # type: ignore[no-untyped-def]
    cat = ToolCatalog(TOOLS, embedder=minilm, usage_form=form)
    rep = cat.add_usage(records())
    assert (rep.added, rep.tools_with_usage, rep.fallback) == (8, 4, ["book_flight"])
    assert any("book_flight" in w and "description" in w for w in cat.warnings)
    request = "is it going to snow in Denver on Friday"
    tracer = MemoryTracer()
    hits = cat.search(request, k=5, method="tool2vec", tracer=tracer)
    # by hand: each tool = the average of its requests' unit embeddings ("centroid": scaled to unit length);
    # book_flight = its description's embedding; score = dot product with the request's embedding
    q = minilm.embed([request])[0].astype(np.float64)
    expected = {}
    for tool in TOOLS:
        reqs = [r for r, t in USAGE if t == tool.name]
        if reqs:
            v = minilm.embed(reqs).astype(np.float64).mean(axis=0)
            if form == "centroid":
                v = v / np.linalg.norm(v)
        else:
            v = minilm.embed([tool.document()])[0].astype(np.float64)
        expected[tool.name] = float(q @ v)
    order = sorted(expected, key=lambda n: -expected[n])
    assert [h.doc_id for h in hits] == order
    assert order[0] == "get_weather"
    np.testing.assert_allclose([h.score for h in hits], [expected[n] for n in order], atol=1e-5)
    meta = {h.doc_id: h.metadata for h in hits}
    assert meta["get_weather"]["usage_requests"] == 3 and meta["get_weather"]["represented_by"] == "usage"
    assert meta["book_flight"]["represented_by"] == "description"
    ev = next(e for e in tracer.events if e.name == "tool2vec")
    assert ev.data["form"] == form and ev.data["tools_by_description"] == 1 and ev.data["usage_requests"] == 8


def test_mean_form_is_the_mean_cosine_and_differs_from_centroid() -> None:
    """The reference scores the unnormalised average: a tool whose requests disagree scores lower than one with
    the same centroid direction whose requests agree."""
    emb = HashEmbedder()
    idx = UsageIndex.empty(emb.name, emb.dim)
    idx.add(records(), emb, None)
    desc = emb.embed([t.document() for t in TOOLS])
    names = [t.name for t in TOOLS]
    mean, counts = idx.tool_vectors(names, desc, "mean")
    cent, _ = idx.tool_vectors(names, desc, "centroid")
    assert counts.tolist() == [3, 2, 1, 2, 0]
    e = emb.embed([r for r, t in USAGE if t == "get_weather"])
    q = emb.embed(["rain tomorrow in Oslo"])[0]
    assert np.isclose(q @ mean[0], float(np.mean(e @ q)), atol=1e-6)  # = the mean cosine to its requests
    assert np.allclose(np.linalg.norm(cent[:4], axis=1), 1.0, atol=1e-6)
    assert np.linalg.norm(mean[0]) < 1.0 and np.allclose(mean[2], cent[2])  # one request: both are that request
    assert np.allclose(mean[4], desc[4])


def test_usage_is_persisted_and_adding_is_incremental(tmp_path: Path) -> None:
    emb = HashEmbedder()
    folder = tmp_path / "usage"
    cat = ToolCatalog(TOOLS, embedder=emb, usage_dir=folder)
    rep = cat.add_usage(records(USAGE[:5]))
    assert rep.added == 5 and (folder / "meta.json").is_file()
    first = cat.search("umbrella in Oslo", k=1, method="tool2vec")[0].doc_id

    emb2 = HashEmbedder()  # a new process: the stored vectors are read, the requests are not embedded again
    cat2 = ToolCatalog(TOOLS, embedder=emb2, usage_dir=folder)
    assert cat2.search("umbrella in Oslo", k=1, method="tool2vec")[0].doc_id == first == "get_weather"
    assert not set(emb2.seen) & {r for r, _ in USAGE}
    emb2.seen.clear()
    again = UsageRecord(request="  HOW many yen is 50 EUROS ", tool="convert_currency")
    rep2 = cat2.add_usage([*records(USAGE[3:]), again])
    assert (rep2.added, rep2.duplicates, rep2.stored) == (3, 3, 8)
    assert sorted(emb2.seen) == sorted(r for r, _ in USAGE[5:])  # only the new requests were embedded
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["requests"] == 8 and meta["sources"] == {"given": 8} and meta["embedder"] == emb.name
    assert meta["per_tool"]["get_weather"] == {"given": 3, "generated": 0}
    assert cat2.search("yen for euros", k=1, method="tool2vec")[0].doc_id == "convert_currency"

    # another embedder: the folder is re-embedded from its JSONL, never mixed
    other = HashEmbedder("test-hash-32", 32)
    idx = UsageIndex.open(folder, other)
    assert len(idx) == 8 and idx.vectors.shape == (8, 32) and idx.embedder_name == "test-hash-32"

    # a damaged vectors file is an IndexCorruptError, not silent garbage
    raw = bytearray((folder / "vectors.npy").read_bytes())
    raw[-4:] = b"\xff\xff\xff\x7f"
    (folder / "vectors.npy").write_bytes(bytes(raw))
    with pytest.raises(IndexCorruptError, match="checksum"):
        UsageIndex.load(folder)


def test_bad_usage_input(tmp_path: Path) -> None:
    emb = HashEmbedder()
    cat = ToolCatalog(TOOLS, embedder=emb)
    with pytest.raises(ConfigError, match="needs usage requests"):
        cat.search("rain?", k=3, method="tool2vec")
    bad = [*records(), UsageRecord(request="play jazz", tool="spotify"),
           UsageRecord(request="next song", tool="spotify"), UsageRecord(request="order pizza", tool="pizza_bot"),
           UsageRecord(request="   ", tool="send_email")]
    rep = cat.add_usage(bad)  # not fatal: counted and reported
    assert rep.unknown_tools == {"spotify": 2, "pizza_bot": 1} and rep.empty == 1 and rep.added == 8
    assert any("3 usage requests name 2 tools the catalog lacks" in w for w in cat.warnings)
    assert "3 naming 2 tools the catalog lacks" in rep.summary()
    assert cat.search("rain in Oslo", k=1, method="tool2vec")[0].doc_id == "get_weather"

    p = tmp_path / "usage.jsonl"
    p.write_text('{"request": "will it rain", "tool": "get_weather"}\n\n{"request": "oops"}\n')
    with pytest.raises(DataError, match="line 3"):
        read_usage_file(p)
    p.write_text('{"request": "will it rain", "tool": "get_weather"}\n')
    assert cat.add_usage(p).duplicates == 0 and len(read_usage_file(p)) == 1
    with pytest.raises(DataError, match="no usage file"):
        read_usage_file(tmp_path / "missing.jsonl")
    with pytest.raises(ToolCatalogError, match="duplicate tool names"):
        ToolCatalog([*TOOLS, ToolSpec(name="send_email", description="another")], embedder=emb)
    with pytest.raises(ConfigError, match="form"):
        ToolCatalog(TOOLS, embedder=emb, usage_form="median")
    with pytest.raises(ConfigError, match="fusion"):
        ToolCatalog(TOOLS, embedder=emb, usage_fusion="sum")


def test_fusion_with_the_description_ranking_is_an_option() -> None:
    emb = HashEmbedder()
    cat = ToolCatalog(TOOLS, embedder=emb, usage_fusion="rrf")
    cat.add_usage(records())
    tracer = MemoryTracer()
    hits = cat.search("book a ticket between two airports", k=5, method="tool2vec", tracer=tracer)
    assert hits[0].doc_id == "book_flight"  # the description list carries the tool without usage
    fused = next(e for e in tracer.events if e.name == "hybrid")
    assert fused.data["fusion"] == "rrf" and set(fused.data["weights"]) == {"tool2vec", "dense"}
    assert next(e for e in tracer.events if e.name == "tool2vec").data["fusion"] == "rrf"
    # fused with the description's BM25 and dense rankings: three lists
    three = ToolCatalog(TOOLS, embedder=emb, usage_fusion="zscore", usage_fuse_with="hybrid")
    three.add_usage(records())
    tracer = MemoryTracer()
    assert three.search("book a ticket between two airports", k=5, method="tool2vec", tracer=tracer)
    fused = next(e for e in tracer.events if e.name == "hybrid")
    assert fused.data["fusion"] == "zscore" and set(fused.data["weights"]) == {"tool2vec", "bm25", "dense"}
    t2v = next(e for e in tracer.events if e.name == "tool2vec")
    assert t2v.data["fused_with"] == "hybrid" and "zscore with hybrid" in t2v.preview
    with pytest.raises(ConfigError, match="fusion partner"):
        ToolCatalog(TOOLS, embedder=emb, usage_fusion="rrf", usage_fuse_with="bm25")


def test_filter_rejects_empty_duplicates_tool_names_and_the_description() -> None:
    tool = ToolSpec(name="get_weather", description="Get the current weather forecast for a city")
    kept, rejected = filter_requests(tool, [
        "Will it rain in Oslo?", "will it rain in oslo", "", None, "use get_weather for Paris",
        "can you GET WEATHER for Rome", "get the current weather forecast for a city",
        "Please: get the current weather forecast for a city.", "weather forecast for a city", "forecast Lima",
        "is it sunny in Lisbon"], n=2)
    assert kept == ["Will it rain in Oslo?", "forecast Lima"]
    reasons = [r["reason"] for r in rejected]
    assert reasons == ["duplicate", "empty", "empty", "names the tool", "names the tool", "copies the description",
                       "copies the description", "copies the description", "over the limit"]


def test_an_opaque_id_is_no_name_but_the_title_is() -> None:
    """An evaluation set's tools are named by id ("4"): a request with the number 4 in it once counted as naming
    the tool (81 of RestBench's rejections). The title ("GET /movie/{movie_id}/reviews") is what users would name."""
    tool = ToolSpec(name="4", title="GET /movie/{movie_id}/reviews", description="Get the user reviews for a movie.")
    kept, rejected = filter_requests(tool, ["reviews of the top 4 movies of 2019", "call GET movie movie id reviews",
                                            "GET /movie/{movie_id}/reviews for Heat"], n=5)
    assert kept == ["reviews of the top 4 movies of 2019"]
    assert [r["reason"] for r in rejected] == ["names the tool", "names the tool"]
    bare = ToolSpec(name="4", description="Get the user reviews for a movie.")
    assert filter_requests(bare, ["reviews of the top 4 movies"], n=5)[0] == ["reviews of the top 4 movies"]
    shown = UsageGenParams(n=3, mask_name=False)
    assert messages_for(tool, shown)[1]["content"].startswith("Tool: GET /movie/{movie_id}/reviews")


def test_a_copied_demonstration_is_rejected_and_dropped_from_older_files(tmp_path: Path) -> None:
    """The 1.5B model gave airqualityforeast (a demonstration's own tool) the demonstration's three requests."""
    demos = demonstration_requests(UsageGenParams().prompt())
    assert len(demos) == 6 and demonstration_requests(UsageGenParams(demonstrations=False).prompt()) == []
    tool = ToolSpec(name="airqualityforeast", description="Get the 2-day air quality forecast for any US zip code.")
    kept, rejected = filter_requests(tool, [demos[0].upper(), "Is the air in Denver safe for a run today?"], 5, demos)
    assert kept == ["Is the air in Denver safe for a run today?"]
    assert rejected == [{"request": demos[0].upper(), "reason": "copies a demonstration"}]
    # a file written before the rule: its copies are left out when it is read as usage
    gen = tmp_path / "generated.jsonl"
    rec = GenRecord(tool="airqualityforeast", sig="s", prompt="tool_usage_gen", kept=[demos[1], "ozone in Austin"])
    zero = GenRecord(tool="b", sig="s", prompt="tool_usage_gen_zero_shot", kept=[demos[1]])
    gen.write_text(rec.model_dump_json() + "\n" + zero.model_dump_json() + "\n")
    assert [(u.tool, u.request) for u in generated_usage(gen)] == [("airqualityforeast", "ozone in Austin"),
                                                                  ("b", demos[1])]


def test_the_name_is_withheld_and_masked_in_the_description_by_default() -> None:
    tool = ToolSpec(name="torchhub_api_2", title="YOLOP", description=(
        'YOLOP. {"api_name": "YOLOP", "api_call": "torch.hub.load(\'hustvl/yolop\', model=\'yolop\')", '
        '"description": "YOLOP is a multi-task network for lane detection"}'))
    user = messages_for(tool, UsageGenParams(n=3))[1]["content"]
    assert user.startswith("Tool: (name withheld)\nWhat it does: this tool. ")
    assert "yolop" not in user.casefold() and "this tool is a multi-task network for lane detection" in user
    assert "hustvl/this tool" in user  # a whole-word mention inside a path is masked too
    # the signature follows what is shown: masked and unmasked are different requests to the model
    assert signature(tool, UsageGenParams(n=3)) != signature(tool, UsageGenParams(n=3, mask_name=False))
    # nothing to mask: the name has no letters and there is no title
    bare = ToolSpec(name="7", description="Search for movies by title.")
    assert messages_for(bare, UsageGenParams(n=3))[1]["content"] == "Tool: 7\nWhat it does: Search for movies by title."


def _reply(tool: str, n: int = 3) -> dict:
    return {"requests": [f"request {i} that needs the {tool.split('_')[-1]}ing tool" for i in range(n)]
            + [f"please call {tool}"]}


def test_generation_resumes_after_a_killed_job(tmp_path: Path) -> None:
    emb = HashEmbedder()
    tools = [ToolSpec(name=f"tool_{c}", description=f"does {c} things") for c in "abcd"]
    cat = ToolCatalog(tools, embedder=emb, usage_dir=tmp_path / "usage")
    gen = tmp_path / "generated.jsonl"
    params = UsageGenParams(n=3, concurrency=1)
    # the job dies on the third tool (the server went away)
    dying = ScriptedModel([_reply("tool_a"), _reply("tool_b"), ModelConnectionError("server gone")], model="m1")
    with pytest.raises(ModelConnectionError):
        generate_usage(cat, dying, gen, params=params)
    done = read_gen_records(gen)
    assert sorted(done) == ["tool_a", "tool_b"] and done["tool_a"].kept and done["tool_a"].model == "m1"
    assert done["tool_a"].rejected == [{"request": "please call tool_a", "reason": "names the tool"}]
    with gen.open("a") as fh:
        fh.write('{"tool": "tool_c", "sig": "torn')  # a torn last line: ignored, its tool done again

    # the rerun asks only for the two unfinished tools (a third call would exhaust the script and fail)
    again = ScriptedModel([_reply("tool_c"), _reply("tool_d")], model="m1")
    tracer = MemoryTracer()
    rep = generate_usage(cat, again, gen, params=params, tracer=tracer)
    asked = [c["messages"][1]["content"].splitlines()[1] for c in again.calls]
    assert asked == ["What it does: does c things", "What it does: does d things"]
    assert (rep.done_before, rep.generated_now, rep.errors, rep.kept) == (2, 2, 0, 6)
    assert rep.usage.calls == 2 and rep.tokens_per_tool() > 0
    assert [e.name for e in tracer.events if e.kind == "llm"] == ["tool_usage_gen"] * 2
    assert rep.added.stored == 12 and rep.added.tools_with_usage == 4
    meta = json.loads((tmp_path / "usage" / "meta.json").read_text())
    assert meta["sources"] == {"generated": 12} and meta["generated_by"] == {"m1": 12}
    assert meta["generated"]["tool_a"] == done["tool_a"].kept

    # a third run has nothing to do: no call, nothing re-embedded
    emb.seen.clear()
    rep3 = generate_usage(cat, ScriptedModel([]), gen, params=params)
    assert (rep3.done_before, rep3.generated_now, rep3.usage.calls) == (4, 0, 0) and rep3.added.added == 0
    # a tool whose description changed is asked again
    cat.tools[0] = ToolSpec(name="tool_a", description="does new a things")
    rep4 = generate_usage(cat, ScriptedModel([_reply("tool_a")]), gen, params=params, add=False)
    assert (rep4.done_before, rep4.generated_now) == (3, 1)
    assert read_gen_records(gen)["tool_a"].prompt == "tool_usage_gen"
    # so is every tool under the other prompt (the instructions alone): a new signature
    zero = params.model_copy(update={"demonstrations": False})
    script = ScriptedModel([_reply(f"tool_{c}") for c in "abcd"])
    rep5 = generate_usage(cat, script, gen, params=zero, add=False)
    assert (rep5.done_before, rep5.generated_now) == (0, 4)
    assert "airqualityforeast" in again.calls[0]["messages"][0]["content"]
    assert "airqualityforeast" not in script.calls[0]["messages"][0]["content"]
    assert read_gen_records(gen)["tool_a"].prompt == "tool_usage_gen_zero_shot"


def test_generation_records_a_bad_reply_and_retries_it_next_run(tmp_path: Path) -> None:
    cat = ToolCatalog([ToolSpec(name="tool_a", description="does a")], embedder=HashEmbedder())
    gen = tmp_path / "g.jsonl"
    rep = generate_usage(cat, ScriptedModel(["not json", "still not"]), gen, params=UsageGenParams(retries=1),
                         add=False)
    assert rep.errors == 1 and read_gen_records(gen)["tool_a"].error
    rep2 = generate_usage(cat, ScriptedModel([_reply("tool_a")]), gen, add=False)
    assert (rep2.done_before, rep2.generated_now, rep2.errors) == (0, 1, 0)
    with pytest.raises(ConfigError, match="needs a model"):
        generate_usage(ToolCatalog([ToolSpec(name="b", description="x")]), None, tmp_path / "h.jsonl")


def test_eval_tools_with_tool2vec_needs_usage() -> None:
    from sleuth.evals.build import Options, tool_catalog_for

    with pytest.raises(ConfigError, match="needs usage requests"):
        tool_catalog_for(None, Options(task="tools", data="x", method="tool2vec"))  # type: ignore[arg-type]
