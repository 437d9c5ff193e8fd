"""Fuzz every agent tool through the path models use: ``Toolkit.invoke(name, arguments)``.

Arguments mix valid-looking values with hostile ones (NUL bytes, lone surrogates, strings up to ~1 MB, ``../``
traversal, absolute paths, hidden paths, a symlink out of the corpus, pathological globs and regexes, wrong JSON
types, extra fields, negative and huge numbers), passed as a dict, as JSON text and as broken JSON text. Asserted
for every call:

- nothing but a :class:`~sleuth.errors.SleuthError` escapes ``invoke`` (a model mistake is an error
  observation, a real fault a typed error; anything else -- TypeError, UnicodeError, OSError, re.error,
  RecursionError ... -- is a bug);
- no observation (nor any prompt the rerank tool sends its model) holds the canary text of a file outside the
  corpus (reached by ``../``, an absolute path or a symlink), nor of hidden files inside it (``.env``,
  ``.git/config``, ``.sleuth/``), nor the absolute path of the corpus root's parent unless the model itself sent it;
- the canary outside the corpus is never opened (its access time is checked when the file system records one).

Size: ``SLEUTH_FUZZ_EXAMPLES`` examples per tool (default :data:`DEFAULT_EXAMPLES`, about a minute in all on a
2-core machine). The long run is recorded in docs/results/fuzz.md.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth.corpus import Corpus
from sleuth.errors import SleuthError
from sleuth.llm.fake import ScriptedModel
from sleuth.rerank import get_reranker
from sleuth.retrieval.bm25 import BM25Retriever
from sleuth.tools import corpus_tools
from sleuth.tools.answer import answer_tool
from sleuth.tools.base import Toolkit, ToolResult
from sleuth.tools.rerank import rerank_tool
from sleuth.tools.search import search_tools
from sleuth.tools.workspace import workspace_tool

DEFAULT_EXAMPLES = 300
EXAMPLES = int(os.environ.get("SLEUTH_FUZZ_EXAMPLES", DEFAULT_EXAMPLES))

OUTSIDE_SECRET = "canaryOutsideZq7Xw3"
HIDDEN_SECRET = "canaryHiddenPk4Vb9"
SECRETS = (OUTSIDE_SECRET, HIDDEN_SECRET)

# What each call did, for the long run's record (printed at the end of the module with -s).
STATS: Counter[str] = Counter()


class Fixture:
    def __init__(self, root: Path) -> None:
        self.parent = root
        self.root = root / "corpus"
        self.outside = root / "outside.txt"
        docs = {
            "a.txt": "Imatinib is a kinase inhibitor used in chronic myeloid leukemia.\nSecond line.\n",
            "b.txt": "Prion disease causes protein misfolding in the brain.\n",
            "sub/c.md": "Brain imaging of leukemia patients.\n" * 20,
            "sub/deep/d.txt": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" * 50,
            "uni/é 文.txt": "Unicode names: café, naïve, 文字.\n",
        }
        for rel, text in docs.items():
            p = self.root / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(text, "utf-8")
        # hidden canaries inside the corpus
        (self.root / ".env").write_text(f"API_KEY={HIDDEN_SECRET}\n", "utf-8")
        (self.root / ".git").mkdir()
        (self.root / ".git" / "config").write_text(f"[remote]\n url = {HIDDEN_SECRET}\n", "utf-8")
        (self.root / "sub" / ".secret.txt").write_text(f"leukemia {HIDDEN_SECRET}\n", "utf-8")
        # canaries outside, reachable only by following a path out of the corpus
        self.outside.write_text(f"leukemia kinase {OUTSIDE_SECRET}\n", "utf-8")
        (root / "outdir").mkdir()
        (root / "outdir" / "o.txt").write_text(f"brain {OUTSIDE_SECRET}\n", "utf-8")
        os.symlink(self.outside, self.root / "link.txt")
        os.symlink(root / "outdir", self.root / "linkdir")
        self.corpus = Corpus(self.root)
        bm25 = BM25Retriever.open(self.corpus)
        (self.root / ".sleuth" / "note.txt").write_text(f"leukemia {HIDDEN_SECRET}\n", "utf-8")
        self.model = ScriptedModel(default="[2] > [1]")
        tools = [*corpus_tools(self.corpus, grep_timeout=10.0), *search_tools(self.corpus, {"bm25": bm25})]
        tools += [rerank_tool(self.corpus, get_reranker("listwise", self.model)), answer_tool(self.corpus.__contains__)]
        tools.append(workspace_tool(self.corpus, bm25, timeout=10.0))
        self.kit = Toolkit(tools)
        # The canary's access time is set before its modification time, so a read (relatime) moves it.
        st_ = self.outside.stat()
        os.utime(self.outside, ns=(st_.st_mtime_ns - 10**11, st_.st_mtime_ns))
        self.atime_ns = self.outside.stat().st_atime_ns
        self.atime_works = _atime_recorded(root)


def _atime_recorded(root: Path) -> bool:
    probe = root / "probe.txt"
    probe.write_text("x", "utf-8")
    s = probe.stat()
    os.utime(probe, ns=(s.st_mtime_ns - 10**11, s.st_mtime_ns))
    before = probe.stat().st_atime_ns
    probe.read_text("utf-8")
    return probe.stat().st_atime_ns != before


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Any:
    f = Fixture(tmp_path_factory.mktemp("fuzz"))
    t0 = time.perf_counter()
    yield f
    if f.atime_works:
        assert f.outside.stat().st_atime_ns == f.atime_ns, "the canary outside the corpus was opened"
    STATS["atime_checked"] = int(f.atime_works)
    print(f"\nfuzz stats ({time.perf_counter() - t0:.1f}s): {dict(sorted(STATS.items()))}")


# ---- strategies -------------------------------------------------------------------------------------------------

HOSTILE_PATHS = [
    "../outside.txt", "../../etc/passwd", "/etc/passwd", "./a.txt", "a.txt/..", "sub/../../outside.txt",
    ".env", ".git/config", ".git", ".sleuth", ".sleuth/note.txt", "sub/.secret.txt", "link.txt", "linkdir",
    "linkdir/o.txt", "sub/", "sub//deep/", "~/x", "C:\\Windows\\x", "\\\\server\\share", "a.txt\x00.env",
    "\udcff.txt", "sub/deep/d.txt", "uni/é 文.txt", "", " ", ".", "..", "/", "*", "{PARENT}/outside.txt",
    "{PARENT}/corpus/a.txt", "{PARENT}/corpus/.env", "file:///etc/passwd", "%2e%2e/outside.txt",
]
HOSTILE_GLOBS = [
    "*" + "*a" * 60, "*a" * 200 + "b", "[", "[]", "[!]", "[a-", "[z-a]", "{", "{a,b", "{{{{{{{{}}}}}}}}", "**/",
    "**/*.txt", "*.md", "!*.txt", "../*", "/*", ".*", "**/.*", "\\", "a\\", "{" * 200, "[" * 500, "***", "**/**/**",
]
HOSTILE_PATTERNS = [
    "(", ")", "[", "a{1000000}", "(a+)+$", "(?P<x", "\\", "\\p{Nope}", "(?i)LEUKEMIA", ".*", "^$", "a|" * 500,
    "(" * 300, "(?=a)", "\\1", "[[:alpha:]]", "\\x{110000}", "x{2,1}", "leukemia", "kinase", "API_KEY", "canary",
    OUTSIDE_SECRET, HIDDEN_SECRET, "-e", "--files", "--pre=sh", "-f/etc/passwd", "$(id)", "`id`", "; cat /etc/passwd",
]


def _text() -> st.SearchStrategy[str]:
    return st.text(st.characters(codec=None), max_size=40)  # any code point, lone surrogates and NUL included


def _huge() -> st.SearchStrategy[str]:
    return st.tuples(st.sampled_from(["a", "*a", "../", "\x00", "é", "(", "\udc80", "x "]),
                     st.integers(1000, 1_000_000)).map(lambda t: (t[0] * (t[1] // len(t[0]) + 1))[: t[1]])


def _wrong_type() -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
                     st.lists(st.integers(), max_size=3),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                     st.just(float("inf")), st.just([[[[[]]]]]))


Field = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]  # (valid-looking values, anything at all)


def _strings(hostile: list[str], valid: list[str]) -> Field:
    ok = st.sampled_from(valid)
    return ok, st.one_of(ok, st.sampled_from(hostile), _text(), _huge(), _wrong_type(),
                         st.tuples(st.sampled_from(hostile), st.sampled_from(hostile)).map("/".join))


def _ints() -> Field:
    return st.integers(1, 20), st.one_of(st.integers(-5, 60), st.integers(-(2**64), 2**64),
                                         st.sampled_from([0, 10**12, 10**12 + 1]),
                                         st.sampled_from(["3", "1e3", "x", 1.5, True]), _wrong_type())


def _bools() -> Field:
    return st.booleans(), st.one_of(st.booleans(), st.sampled_from(["true", "yes", 0, 1, 2, None, "1"]))


def _lists(item: Field) -> Field:
    many = st.lists(st.sampled_from(["a.txt", "b.txt"]), min_size=40, max_size=120)
    return (st.lists(item[0], min_size=1, max_size=8),
            st.one_of(st.lists(item[1], max_size=8), many, item[1], _wrong_type()))


VALID_DOCS = ["a.txt", "b.txt", "sub/c.md", "sub/deep/d.txt", "uni/é 文.txt"]
DOC_IDS = [*VALID_DOCS, *HOSTILE_PATHS]
WORDS = ["leukemia", "brain", "kinase inhibitor", "the of", "API_KEY", OUTSIDE_SECRET, HIDDEN_SECRET, "*", "a"]
VALID_PATTERNS = ["leukemia", "(?i)brain", "a+", "^Second", "kinase|prion", "é", "canary", "API_KEY", "."]
VALID_GLOBS = ["*.txt", "**/*.md", "sub/**", "*", "uni/*", "*.{txt,md}"]
VALID_PREFIXES = ["sub/", "sub/deep/", "uni/", "", "a"]
REQUIRED = {"grep": ["pattern"], "read": ["doc_id"], "search": ["query"], "df": ["terms"],
            "workspace_grep": ["query", "pattern"],
            "rerank": ["query", "doc_ids"], "answer": ["answer"]}

FIELDS: dict[str, dict[str, Field]] = {
    "grep": {"pattern": _strings(HOSTILE_PATTERNS, VALID_PATTERNS),
             "path": _strings(HOSTILE_PATHS, VALID_PREFIXES + VALID_DOCS),
             "glob": _strings(HOSTILE_GLOBS, VALID_GLOBS),
             "ignore_case": _bools(), "fixed_strings": _bools(), "word_regexp": _bools(), "context": _ints(),
             "max_count": _ints(), "max_matches": _ints(), "files_with_matches": _bools(), "count": _bools(),
             "max_chars": _ints()},
    "workspace_grep": {"query": _strings(HOSTILE_PATTERNS, WORDS), "n": _ints(),
                       "pattern": _strings(HOSTILE_PATTERNS, VALID_PATTERNS),
                       "path": _strings(HOSTILE_PATHS, VALID_PREFIXES + VALID_DOCS),
                       "glob": _strings(HOSTILE_GLOBS, VALID_GLOBS), "ignore_case": _bools(), "context": _ints(),
                       "max_matches": _ints(), "files_with_matches": _bools(), "count": _bools(),
                       "max_chars": _ints()},
    "read": {"doc_id": _strings(HOSTILE_PATHS, VALID_DOCS), "start_line": _ints(), "end_line": _ints(),
             "max_chars": _ints()},
    "ls": {"glob": _strings(HOSTILE_GLOBS, VALID_GLOBS), "prefix": _strings(HOSTILE_PATHS, VALID_PREFIXES),
           "limit": _ints()},
    "search": {"query": _strings(HOSTILE_PATTERNS, WORDS), "k": _ints(),
               "method": _strings(["dense", "sira", "", "BM25"], ["bm25"])},
    "df": {"terms": _lists(_strings(HOSTILE_PATTERNS, WORDS))},
    "rerank": {"query": _strings(HOSTILE_PATTERNS, WORDS), "doc_ids": _lists(_strings(HOSTILE_PATHS, VALID_DOCS)),
               "k": _ints()},
    "answer": {"answer": _strings(HOSTILE_PATTERNS, WORDS), "doc_ids": _lists(_strings(HOSTILE_PATHS, VALID_DOCS))},
}


def _arguments(draw: Any, name: str) -> Any:
    """One call's arguments for tool ``name`` (``draw`` is ``st.data().draw``)."""
    fields = FIELDS[name]
    chosen = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=len(fields)))
    if draw(st.integers(0, 9)) > 1:  # mostly with the required fields, so most calls reach the tool's code
        chosen = list(dict.fromkeys([*REQUIRED.get(name, []), *chosen]))
    # a third of the calls are well formed (they reach the files); the rest mix hostile values into every field
    clean = draw(st.integers(0, 2)) == 0
    args: dict[str, Any] = {k: draw(fields[k][0] if clean or draw(st.booleans()) else fields[k][1]) for k in chosen}
    if draw(st.integers(0, 9)) == 0:
        args[draw(st.sampled_from(["extra", "__proto__", "", "pattern ", "PATH"]))] = draw(_text())
    form = draw(st.sampled_from(["dict"] * 5 + ["json"] * 3 + ["broken", "other"]))
    if form == "json":
        return json.dumps(args, ensure_ascii=draw(st.booleans()))  # ensure_ascii keeps lone surrogates as \udcxx
    if form == "broken":
        text = json.dumps(args)
        return draw(st.sampled_from([text[: max(0, len(text) - 1)], text + "}", "{" + text, text.replace('"', "'"),
                                     "", " ", "null", "[]", "1", '"x"', "{'a': 1}", "{" * 5000]))
    if form == "other":
        return draw(st.one_of(st.none(), _wrong_type(), st.just(args)))
    return args


# ---- the property -----------------------------------------------------------------------------------------------


def _check(fx: Fixture, name: str, arguments: Any) -> None:
    parent = str(fx.parent)
    sent = json.dumps(arguments, default=str) if not isinstance(arguments, str) else arguments
    before = len(fx.model.calls)
    try:
        result = fx.kit.invoke(name, arguments)
    except SleuthError as e:  # a typed fault: allowed, but must not leak either
        STATS[f"{name}:typed_error:{type(e).__name__}"] += 1
        text = str(e)
    else:
        assert isinstance(result, ToolResult)
        STATS[f"{name}:{'error:' + str(result.error_type) if result.is_error else 'ok'}"] += 1
        text = result.text + json.dumps(result.data, default=str)
    prompts = json.dumps(fx.model.calls[before:], default=str)
    del fx.model.calls[before:]  # keep memory flat over long runs
    for secret in SECRETS:
        if secret in sent:  # the model wrote the secret itself (e.g. as a query); echoing it is no leak
            continue
        assert secret not in text, f"{name} leaked a canary: {text[:500]!r}"
        assert secret not in prompts, f"{name} sent a canary to the model: {prompts[:500]!r}"
    if parent not in sent and "{PARENT}" not in sent:
        assert parent not in text, f"{name} showed the corpus parent's path: {text[:500]!r}"


def _substitute(fx: Fixture, arguments: Any) -> Any:
    """Put the real parent path where the strategies wrote ``{PARENT}`` (absolute paths into and out of the corpus)."""
    if isinstance(arguments, str):
        return arguments.replace("{PARENT}", str(fx.parent))
    if isinstance(arguments, dict):
        return {k: _substitute(fx, v) for k, v in arguments.items()}
    if isinstance(arguments, list):
        return [_substitute(fx, v) for v in arguments]
    return arguments


def _fuzz(name: str) -> Any:
    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture, HealthCheck.large_base_example])
    @given(data=st.data())
    def test(fx: Fixture, data: st.DataObject) -> None:
        _check(fx, name, _substitute(fx, _arguments(data.draw, name)))

    test.__name__ = f"test_fuzz_{name}"
    test.__doc__ = f"Fuzz `{name}` through Toolkit.invoke: no foreign exception, no canary, no parent path."
    return test


test_fuzz_grep = _fuzz("grep")
test_fuzz_read = _fuzz("read")
test_fuzz_ls = _fuzz("ls")
test_fuzz_search = _fuzz("search")
test_fuzz_df = _fuzz("df")
test_fuzz_rerank = _fuzz("rerank")
test_fuzz_answer = _fuzz("answer")
test_fuzz_workspace_grep = _fuzz("workspace_grep")


def test_fuzz_unknown_tool_names(fx: Fixture) -> None:
    """An unknown or hostile tool name is an error observation, never an exception."""
    for name in ["", "GREP", "grep ", "../grep", "\x00", "\udcff", "x" * 1_000_000, "answer\n"]:
        r = fx.kit.invoke(name, {"pattern": "a"})
        assert r.is_error and r.error_type == "ToolArgumentError"


def test_fixture_canaries_are_reachable_only_by_leaving_the_corpus(fx: Fixture) -> None:
    """The canaries are real: the files exist with their secrets, and valid calls still work."""
    assert OUTSIDE_SECRET in fx.outside.read_text("utf-8") and (fx.root / "link.txt").is_symlink()
    os.utime(fx.outside, ns=(fx.outside.stat().st_mtime_ns - 10**11, fx.outside.stat().st_mtime_ns))
    fx.atime_ns = fx.outside.stat().st_atime_ns
    assert HIDDEN_SECRET in (fx.root / ".env").read_text("utf-8")
    r = fx.kit.invoke("grep", {"pattern": "leukemia"})
    assert not r.is_error and {m["doc_id"] for m in r.data["matches"]} == {"a.txt", "sub/c.md"}
    assert fx.kit.invoke("read", {"doc_id": "a.txt"}).text.count("Imatinib") == 1
    assert "a.txt" in fx.kit.invoke("ls", {}).text
    assert fx.kit.invoke("search", {"query": "leukemia"}).data[0]["doc_id"] in {"a.txt", "sub/c.md"}
