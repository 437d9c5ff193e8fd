"""sleuth.llm.jsonparse: the one lenient JSON parser. Repairs happen outside strings only; a string's contents
come back exactly as written (issue #16: "True North" arrived as "true North")."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sleuth.llm.jsonparse import json_spans, loads_lenient, normalize, repair_json

# -- the repair cases the tests held before (tests/unit/test_llm_toolcalls.py, test_agent_repair_context.py) ----
OLD_CASES = [
    ('Sure!\n```json\n{"name": "grep", "arguments": {"pattern": "x"}}\n```\nDone.',
     {"name": "grep", "arguments": {"pattern": "x"}}),
    ('{"tool": "grep", "parameters": {"pattern": "x"},}', {"tool": "grep", "parameters": {"pattern": "x"}}),
    ("{'name': 'grep', 'arguments': {'pattern': 'x'}}", {"name": "grep", "arguments": {"pattern": "x"}}),
    ('{"name": "grep", "arguments": {"pattern": "x"', {"name": "grep", "arguments": {"pattern": "x"}}),
    ('{"pattern": "x",}', {"pattern": "x"}),
    ('noise {"a": [1, 2,], "b": True, "c": None} trailing', {"a": [1, 2], "b": True, "c": None}),
    ('{"a": "unterminated', {"a": "unterminated"}),
    ('```json\n{"a": 1,}\n```', {"a": 1}),
    ("{'a': True, 'b': None}", {"a": True, "b": None}),
    ("{'a': true}", {"a": True}),
    ('Sure! {"a": [1, 2]} done', {"a": [1, 2]}),
    ("{'pattern': 'x',}", {"pattern": "x"}),
    ('{"name": "grep", "arguments": {"pattern": "y"}}', {"name": "grep", "arguments": {"pattern": "y"}}),
    ("[1, 2]", [1, 2]),
]


@pytest.mark.parametrize(("text", "want"), OLD_CASES)
def test_the_old_repair_cases(text, want):
    assert loads_lenient(text) == want


@pytest.mark.parametrize("text", ["The answer is 42.", "pattern=x", "not json at all", "no json here", "pattern x",
                                  "{not json", "", "   "])
def test_text_without_json_is_a_value_error(text):
    with pytest.raises(ValueError):
        loads_lenient(text)


def test_valid_json_is_returned_as_it_is():
    assert loads_lenient("42") == 42 and loads_lenient('"s"') == "s" and loads_lenient("null") is None


# -- strings are never rewritten ----------------------------------------------------------------------------------
STRINGS = [
    "True North",
    "None of the True Falsehoods",
    "returns null when empty, else true",
    "it's",
    'say "hi"',
    "\\d{2,}",  # a regex: the ",}" is not a trailing comma
    "{nested} [braces], }]",
    "caf\u00e9 \u2615 \U0001f600 \u4e2d\u6587",
    "tab\there\nnewline \\ backslash",
    "False, None, True,",
    "",
]


@pytest.mark.parametrize("value", STRINGS)
@pytest.mark.parametrize(
    "render",
    [
        lambda v: json.dumps({"q": v, "flag": True})[:-1] + ",}",  # trailing comma
        lambda v: json.dumps({"q": v, "n": [1, None]}, ensure_ascii=False)[:-1],  # cut off before the last brace
        lambda v: json.dumps({"q": v})[:-1] + ', "flag": True, "x": None} -- my call',  # Python words + prose
        lambda v: repr({"q": v, "flag": True, "none": None}),  # a Python literal
        lambda v: "```json\n" + json.dumps({"q": v, "flag": False})[:-1] + ",}\n```",  # fenced
        lambda v: f"Calling: {repr({'q': v, 'flag': True, 'none': None})[:-1]}, 'x': true, }} thanks",  # mixed
    ],
    ids=["trailing-comma", "cut-off", "python-word", "repr", "fenced", "mixed-python-json"],
)
def test_string_contents_survive_every_repair(value, render):
    got = loads_lenient(render(value))
    assert got["q"] == value


def test_escapes_json_does_not_know_are_kept_as_written():
    # a model writing a regex in JSON without doubling the backslash: \d is not a JSON escape
    assert loads_lenient('{"pattern": "\\d{4}-\\d{2}",}') == {"pattern": "\\d{4}-\\d{2}"}
    assert loads_lenient("{'p': 'C:\\Users\\x', 'ok': true}") == {"p": "C:\\Users\\x", "ok": True}


def test_python_escapes_in_single_quotes():
    assert loads_lenient("{'a': '\\x41\\u00e9\\U0001f600\\'', 'b': true}") == {"a": "A\u00e9\U0001f600'", "b": True}
    assert loads_lenient('{"a": "\\ud83d\\ude00", "b": 1,}') == {"a": "\U0001f600", "b": 1}  # a surrogate pair


def test_the_first_value_is_taken_and_closers_the_model_forgot_are_added():
    assert loads_lenient('{"a": 1} and then {"b": 2}') == {"a": 1}
    assert loads_lenient('{"a": [1, 2}') == {"a": [1, 2]}
    blocks = '```json\n{"name": "a", "arguments": {}}\n```\ntext\n```json\n{"name": "b", "arguments": {}}\n```'
    assert loads_lenient(blocks) == {"name": "a", "arguments": {}}
    assert [loads_lenient(s)["name"] for s in json_spans(blocks)] == ["a", "b"]
    assert loads_lenient("```text\nno json\n```\n```json\n{'a': 1,}\n```") == {"a": 1}


def test_json_repair_takes_what_the_string_aware_pass_cannot():
    assert loads_lenient('{"a": "b" "c": 1}') == {"a": "b", "c": 1}  # missing comma
    assert loads_lenient("{a: 1, b: 'x'}") == {"a": 1, "b": "x"}  # unquoted keys
    assert loads_lenient('{"a": 1, // a comment\n "b": 2}') == {"a": 1, "b": 2}


def test_normalize_reports_where_the_value_ends():
    text = "{'a': \"}\", 'b': [True, None,],} after"
    out, end = normalize(text)
    assert json.loads(out) == {"a": "}", "b": [True, None]} and text[end:] == " after"


def test_json_spans():
    text = 'x {"a": "}"} y [\'b\', "it]s"] ```json\n{"c": "```"}\n``` z {"d": 1'
    spans = json_spans(text)
    assert spans == ['{"a": "}"}', "['b', \"it]s\"]", '{"c": "```"}', '{"d": 1']
    assert [loads_lenient(s) for s in spans] == [{"a": "}"}, ["b", "it]s"], {"c": "```"}, {"d": 1}]
    assert json_spans("no brackets") == []


def test_a_code_fence_ends_a_cut_off_value_and_not_a_string():
    assert loads_lenient('```json\n{"a": "x ``` y", "b": [1,\n```\nmore') == {"a": "x ``` y", "b": [1]}
    assert loads_lenient('```json\n{"a": "cut off\n```\nmore') == {"a": "cut off\n"}
    assert loads_lenient("```\n{'a': '```', 'b': True}\n```") == {"a": "```", "b": True}


def test_repair_json_returns_json_text():
    assert json.loads(repair_json("{'a': 'True', 'b': True,}")) == {"a": "True", "b": True}


# -- properties ---------------------------------------------------------------------------------------------------
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)
TRICKY = st.lists(
    st.sampled_from(['"', "'", "\\", "{", "}", "[", "]", ",", ":", " ", "\n", "True", "None", "null", "a", "\u00e9"]),
    max_size=10,
).map("".join)
KEYS = st.one_of(TEXT, TRICKY)
SCALARS = st.one_of(TEXT, TRICKY, st.booleans(), st.none())


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, st.one_of(TEXT, TRICKY), max_size=5))
def test_json_of_a_dict_of_strings_reads_back(d):
    assert loads_lenient(json.dumps(d)) == d
    assert loads_lenient(json.dumps(d, ensure_ascii=False)) == d


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=5))
def test_a_python_repr_reads_back(d):
    assert loads_lenient(repr(d)) == d


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(KEYS, SCALARS, min_size=1, max_size=5))
def test_broken_json_reads_back(d):
    text = json.dumps(d, ensure_ascii=False)
    assert loads_lenient(text[:-1] + ",}") == d  # a trailing comma
    assert loads_lenient(text[:-1]) == d  # cut off before the closing brace
    assert loads_lenient(f"Here you go:\n```json\n{text}\n```") == d
