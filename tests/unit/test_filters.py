"""The metadata filter parser and matcher (sleuth.filters), the front matter reader and metadata records
(sleuth.metadata), and the bad inputs each one refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from sleuth.corpus import Corpus
from sleuth.errors import FilterSyntaxError, InvalidGlobError, ToolArgumentError, ToolInputError, UnknownFieldError
from sleuth.filters import Condition, apply, parse_where
from sleuth.metadata import clean_fields, front_matter, iso_mtime


def _ok(cond: str, record: dict) -> bool:
    return Condition.parse(cond).test(record)


def test_parse_fields_operators_and_values() -> None:
    for text, (field, op, value) in {
        "year>=2020": ("year", ">=", "2020"),
        " year >= 2020 ": ("year", ">=", "2020"),
        "author=Smith": ("author", "=", "Smith"),
        "author==Smith": ("author", "=", "Smith"),
        "author!=Smith": ("author", "!=", "Smith"),
        "title~'*cancer*'": ("title", "~", "*cancer*"),
        'title!~"*a b*"': ("title", "!~", "*a b*"),
        "pdf.author<M": ("pdf.author", "<", "M"),
        "x-y>3.5": ("x-y", ">", "3.5"),
        "path=notes/*.md": ("path", "=", "notes/*.md"),
        "note='>= quoted'": ("note", "=", ">= quoted"),
        "empty=''": ("empty", "=", ""),
    }.items():
        c = Condition.parse(text)
        assert (c.field, c.op, c.value) == (field, op, value), text
    assert Condition.parse("year>=2020").number == 2020.0
    assert Condition.parse("year>='2020'").number is None  # quoted: text
    c = Condition.parse("mtime>=2024-05-01")
    assert c.date is not None and c.date_only
    assert not Condition.parse("mtime>=2024-05-01T10:00:00Z").date_only


@pytest.mark.parametrize("bad, why", [
    ("", "it is empty"),
    ("year 2020", "no operator"),
    ("=2020", "no field name"),
    ("year=>2020", "the value starts with '>'"),
    ("year>>2020", "the value starts with '>'"),
    ("year=", "no value after the operator"),
    ("2year=1", "a field name is a letter"),
    ("ti tle=x", "a field name is a letter"),
])
def test_malformed_filters_are_one_line_errors_with_a_hint(bad: str, why: str) -> None:
    with pytest.raises(FilterSyntaxError) as e:
        Condition.parse(bad)
    assert why in e.value.message and "\n" not in e.value.message
    assert "FIELD OP VALUE" in e.value.hint and "year>=2020" in e.value.hint
    assert isinstance(e.value, ToolInputError)  # a model's mistake comes back to it as an observation


def test_other_bad_inputs() -> None:
    with pytest.raises(FilterSyntaxError, match="characters long"):
        Condition.parse("a=" + "x" * 2000)
    with pytest.raises(FilterSyntaxError, match="a filter is a string"):
        parse_where([3])  # type: ignore[list-item]
    with pytest.raises(FilterSyntaxError, match="conditions"):
        parse_where([f"a={i}" for i in range(21)])
    with pytest.raises(InvalidGlobError):
        Condition.parse("path=notes/[a")
    assert parse_where(None) is None and parse_where([]) is None


def test_numbers_compare_as_numbers_text_as_text() -> None:
    assert _ok("year>=2020", {"year": 2021}) and _ok("year>=2020", {"year": "2020"})
    assert not _ok("year>=2020", {"year": 2019.5})
    assert _ok("year<10", {"year": 9}) and not _ok("year<10", {"year": "9a"})  # "9a" is no number
    assert _ok("n=3", {"n": 3.0}) and _ok("n=3", {"n": "3"}) and not _ok("n=3", {"n": "three"})
    assert _ok("author=Smith", {"author": "Smith"}) and not _ok("author=Smith", {"author": "smith"})
    assert _ok("title<B", {"title": "Apple"}) and not _ok("title<B", {"title": "Banana"})
    assert _ok("draft=true", {"draft": True}) and _ok("draft!=true", {"draft": False})
    assert not _ok("year>=2020", {"year": True})  # a boolean is no number


def test_dates_compare_as_dates() -> None:
    rec = {"mtime": "2024-05-01T09:30:00Z", "date": "2023-12-31"}
    assert _ok("mtime>=2024-01-01", rec) and not _ok("mtime<2024-01-01", rec)
    assert _ok("mtime=2024-05-01", rec)  # a date compares the field's day
    assert _ok("mtime<=2024-05-01", rec) and not _ok("mtime<2024-05-01", rec)
    assert _ok("mtime>2024-05-01T09:00:00Z", rec) and not _ok("mtime>2024-05-01T11:30:00+02:00", rec)
    assert _ok("date<2024-01-01", rec) and _ok("date=2023-12-31", rec)
    assert not _ok("date>2020-01-01", {"date": "not a date"})


def test_globs_lists_missing_fields_and_negations() -> None:
    rec = {"title": "Breast Cancer risk", "tags": ["cardio", "blood"], "path": "notes/sub/a.md"}
    assert _ok("title~*cancer*", rec) and _ok("title~'breast*'", rec)  # a glob: whole value, any case
    assert not _ok("title~cancer", rec) and _ok("title!~*heart*", rec)
    assert _ok("tags=blood", rec) and not _ok("tags=heart", rec) and _ok("tags~card*", rec)
    assert _ok("tags!=heart", rec) and not _ok("tags!=blood", rec)
    assert not _ok("author=Smith", rec) and _ok("author!=Smith", rec) and not _ok("year>1", rec)
    assert not _ok("author=Smith", {"author": None}) and _ok("author!~x", {"author": None})
    # path: ripgrep's globs, as grep and ls read them; `=` and `~` alike
    assert _ok("path=notes/**/*.md", rec) and _ok("path~*.md", rec) and not _ok("path=notes/*.md", rec)
    assert _ok("path=notes/sub/a.md", rec) and not _ok("path!=notes/sub/a.md", rec)
    assert not _ok("path=*.txt", rec)


def test_and_of_conditions_and_unknown_fields() -> None:
    table = {
        "a.md": {"path": "a.md", "year": 2021, "author": "Smith"},
        "b.md": {"path": "b.md", "year": 2015, "author": "Jones"},
        "c.txt": {"path": "c.txt"},
    }
    w = parse_where(["year>=2010", "author!=Jones"])
    assert w is not None and str(w) == "year>=2010 AND author!=Jones"
    f = apply(w, table)
    assert f.matching == {"a.md"} and f.n_docs == 3
    assert f.mask(["c.txt", "a.md", "b.md", "gone.txt"]).tolist() == [False, True, False, False]
    with pytest.raises(UnknownFieldError) as e:
        apply(parse_where(["year>1", "yeer>1"]), table)  # type: ignore[arg-type]
    assert e.value.field == "yeer" and "'yeer'" in e.value.message
    assert e.value.hint == "fields that exist: author, path, year"
    assert isinstance(e.value, ToolInputError)


def test_front_matter() -> None:
    text = """---
title: "Heart: a note"
date: 2024-05-01
year: 2020
tags: [cardio, "blood, red", 3]
authors:
  - Smith
  - Lee
draft: false
owner:
  name: Ann
summary: |
  two
  lines
items:
  - name: x
    n: 1
anchor: &a x
after: kept # a comment
---
The text.
"""
    assert front_matter(text) == {
        "title": "Heart: a note", "date": "2024-05-01", "year": 2020, "tags": ["cardio", "blood, red", 3],
        "authors": ["Smith", "Lee"], "draft": False, "owner.name": "Ann", "summary": "two lines", "items": None,
        "after": "kept",
    }
    assert front_matter('+++\ntitle = "T"\nyear = 2021\n[extra]\nk = 1\n+++\nbody') == {
        "title": "T", "year": 2021, "extra.k": 1}
    assert front_matter("no front matter\n---\na: b\n---\n") == {}
    assert front_matter("---\nunterminated: x\n") == {}
    assert front_matter("+++\nnot toml = = \n+++\n") == {}
    # a YAML bomb's aliases are not read, and nothing is expanded
    bomb = "---\na: &a [x, x]\nb: [*a, *a, *a]\nc: [*b, *b, *b]\n---\n"
    assert front_matter(bomb) == {"b": ["*a", "*a", "*a"], "c": ["*b", "*b", "*b"]}


def test_clean_fields() -> None:
    assert clean_fields({"a": {"b": {"c": {"d": 1}}, "x": 1}, "bad key": 1, "l": [1, [2]], "o": object()}) == {
        "a.x": 1}
    for bad in [{"bad key": 1}, {"o": object()}, {"l": [1, [2]]}, {"a": {"b": {"c": {"d": 1}}}}]:
        with pytest.raises(ToolArgumentError):
            clean_fields(bad, strict=True)
    assert iso_mtime(1714555800 * 10**9) == "2024-05-01T09:30:00Z"


def test_corpus_metadata_records(make_corpus, tmp_path: Path) -> None:
    root = make_corpus({
        "notes/a.md": "---\ntitle: Heart notes\nyear: 2021\n---\nThe heart pumps blood.\n",
        "notes/b.md": "# No front matter\nHeart failure.\n",
        "c.txt": "title: not front matter in a .txt\n",
    })
    c = Corpus(root)
    table = c.metadata_table()
    assert set(table) == {"notes/a.md", "notes/b.md", "c.txt"}
    a = table["notes/a.md"]
    assert (a["title"], a["year"], a["path"], a["format"]) == ("Heart notes", 2021, "notes/a.md", "text")
    assert a["size"] == (root / "notes/a.md").stat().st_size and a["mtime"].endswith("Z")
    assert "title" not in table["notes/b.md"] and "title" not in table["c.txt"]
    assert c.fields() == ["format", "mtime", "path", "size", "title", "year"]
    assert c.metadata("notes/a.md") == a
    f = c.filter("year>=2020")
    assert f is not None and f.matching == {"notes/a.md"}
    # an edited front matter is read again (the file is judged again when its size or mtime changes)
    (root / "notes/a.md").write_text("---\ntitle: Heart notes\nyear: 2019\n---\nThe heart.\n", "utf-8")
    assert Corpus(root).filter("year>=2020").matching == frozenset()  # type: ignore[union-attr]
    assert c.filter("year>=2020").matching == frozenset()  # type: ignore[union-attr]
