"""Lenient JSON: the two old repairers (from commit d6320d9, read with git), json_repair alone, and
sleuth.llm.jsonparse, on the repair cases the tests held plus the string cases of issue #16, and on three
round-trip properties over random dicts. Prints the markdown tables of docs/DEVELOPING.md ("Lenient JSON").

    PYTHONPATH=src python benchmarks/lenient_json.py      # from a git checkout; ~20 s
"""

import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import json_repair
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sleuth.llm.jsonparse import loads_lenient as new

warnings.simplefilter("ignore")
OLD = "d6320d9"
old_dir = Path(tempfile.mkdtemp())
for path, name in (("src/sleuth/llm/toolcalls.py", "old_toolcalls"), ("src/sleuth/agents/repair.py", "old_repair")):
    text = subprocess.run(["git", "show", f"{OLD}:{path}"], check=True, capture_output=True, text=True).stdout
    text = text.replace("from sleuth.llm.toolcalls import", "from old_toolcalls import")
    (old_dir / f"{name}.py").write_text(text)
sys.path.insert(0, str(old_dir))
import old_repair  # noqa: E402
import old_toolcalls  # noqa: E402

RAISE = "ValueError"
G = {"name": "grep", "arguments": {"pattern": "x"}}
cases = [  # (source, text, expected)
 ("toolcalls", 'Sure!\n```json\n{"name": "grep", "arguments": {"pattern": "x"}}\n```\nDone.', G),
 ("toolcalls", '{"tool": "grep", "parameters": {"pattern": "x"},}', {"tool": "grep", "parameters": {"pattern": "x"}}),
 ("toolcalls", "{'name': 'grep', 'arguments': {'pattern': 'x'}}", G),
 ("toolcalls", '{"name": "grep", "arguments": {"pattern": "x"', G),
 ("toolcalls", "The answer is 42.", RAISE),
 ("toolcalls", "pattern=x", RAISE),
 ("toolcalls", '{"pattern": "x",}', {"pattern": "x"}),
 ("toolcalls", "not json at all", RAISE),
 ("toolcalls", 'noise {"a": [1, 2,], "b": True, "c": None} trailing', {"a": [1, 2], "b": True, "c": None}),
 ("toolcalls", '{"a": "unterminated', {"a": "unterminated"}),
 ("toolcalls", "no json here", RAISE),
 ("repair", '```json\n{"a": 1,}\n```', {"a": 1}),
 ("repair", "{'a': True, 'b': None}", {"a": True, "b": None}),
 ("repair", "{'a': true}", {"a": True}),
 ("repair", '{"pattern": "x"', {"pattern": "x"}),
 ("repair", 'Sure! {"a": [1, 2]} done', {"a": [1, 2]}),
 ("repair", "{'pattern': 'x',}", {"pattern": "x"}),
 ("repair", "pattern x", RAISE),
 ("openai", "{not json", RAISE),
 ("#16", '{"pattern": "True North",}', {"pattern": "True North"}),
 ("#16", '{"answer": "None of the True Falsehoods", "doc_ids": []',
  {"answer": "None of the True Falsehoods", "doc_ids": []}),
 ("#16", "{'pattern': 'null pointer', 'ignore_case': true}", {"pattern": "null pointer", "ignore_case": True}),
 ("#16", '{"pattern": "\\\\d{2,}",}', {"pattern": "\\d{2,}"}),
 ("#16", "{'pattern': '\\\\d{2,}', 'ignore_case': true}", {"pattern": "\\d{2,}", "ignore_case": True}),
 ("#16", '{"q": "say \\"hi\\" {x}", "n": 1,}', {"q": 'say "hi" {x}', "n": 1}),
 ("#16", '{"q": "\\"a", "}e[": "a",}', {"q": '"a', "}e[": "a"}),
 ("#16", "{'a': \"it's\", 'b': 'caf\u00e9 \u2615'", {"a": "it's", "b": "caf\u00e9 \u2615"}),
 ("#16", '```json\n{"name": "a", "arguments": {}}\n```\n```json\n{"name": "b", "arguments": {}}\n```',
  {"name": "a", "arguments": {}}),
]

def jr(text):
    v = json_repair.loads(text)
    if not isinstance(v, dict | list) or (v in ({}, []) and "{" not in text):
        raise ValueError("not a container")
    return v

impls = {"toolcalls (old)": old_toolcalls.loads_lenient, "agents.repair (old)": old_repair.loads_lenient,
         "json_repair.loads": jr, "jsonparse (new)": new}
score = {k: 0 for k in impls}
rows = []
for src, text, want in cases:
    marks = []
    for k, f in impls.items():
        try:
            got = f(text)
        except Exception:
            got = RAISE
        ok = got == want
        score[k] += ok
        marks.append("ok" if ok else f"WRONG: {got!r}"[:40])
    rows.append((src, text, marks))
print("| from | input | " + " | ".join(impls) + " |")
print("|---|---|" + "---|" * len(impls))
for src, text, marks in rows:
    print(f"| {src} | `{text[:50]!r}` | " + " | ".join(marks) + " |")
print("| | **right** | " + " | ".join(f"{v}/{len(cases)}" for v in score.values()) + " |")



def measure_property(strat, render) -> dict[str, int]:
    """How many of 500 random dicts each implementation reads back from ``render(d)``."""
    right = dict.fromkeys(impls, 0)

    @settings(max_examples=500, suppress_health_check=list(HealthCheck), deadline=None, database=None,
              derandomize=True)
    @given(strat)
    def run(d):
        text = render(d)
        for k, f in impls.items():
            try:
                got = f(text)
            except Exception:
                got = RAISE
            right[k] += got == d

    run()
    return right


chars = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
tricky = st.lists(st.sampled_from([*'ab "\\\n{}[],:\'', "True", "None", "null", "\u00e9"]), max_size=8).map("".join)
strings = st.dictionaries(tricky, tricky, min_size=1, max_size=4)
scalars = st.dictionaries(chars, st.one_of(st.text(max_size=8), st.booleans(), st.none()), min_size=1, max_size=4)
forms = {
    "json.dumps(d) + trailing comma": (strings, lambda d: json.dumps(d)[:-1] + ",}"),
    "json.dumps(d) cut before the last }": (strings, lambda d: json.dumps(d)[:-1]),
    "repr(d), str/bool/None values": (scalars, repr),
}
print()
print("| property (500 random dicts each) | " + " | ".join(impls) + " |")
print("|---|" + "---|" * len(impls))
for name, (strat, render) in forms.items():
    right = measure_property(strat, render)
    print(f"| {name} | " + " | ".join(f"{v}/500" for v in right.values()) + " |")
