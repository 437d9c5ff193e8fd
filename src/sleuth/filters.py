"""Metadata filters for search: ``year>=2020``, ``author=Smith``, ``title~'*cancer*'``, ``path=notes/*.md``.

A filter is one condition ``FIELD OP VALUE``; several are ANDed (``--where`` given twice, a list in the search
tool's ``where``). The parser is a single regular expression over the condition, never ``eval``:

* ``FIELD``: a letter or ``_``, then letters, digits, ``_``, ``.`` or ``-`` (``year``, ``pdf.author``).
* ``OP``: ``=`` (``==`` too), ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``~`` (glob match), ``!~`` (glob mismatch).
* ``VALUE``: the rest, spaces around it dropped; quote it (``'...'`` or ``"..."``) to keep spaces or to start it
  with an operator character.

How a value compares (:meth:`Condition.test`):

* a number (``2020``, ``3.5``) compares as a number with a field value that is a number or a numeric string;
* an ISO date (``2024-05-01``, or a date and time) compares as a date with a field value that is one (``mtime``,
  a front matter ``date``); a date without a time compares the field's day (``mtime=2024-05-01`` is any time
  that day); times without a zone are UTC;
* anything else compares as text: ``=`` exactly (case-sensitive), ``<``/``>`` in code-point order;
* ``~`` is a glob (``*`` any run, ``?`` one character, ``[abc]``), over the whole value, case-insensitive;
* ``path`` is the doc id and always matches as a glob, with ripgrep's rules (:mod:`sleuth.globs`, what ``grep``
  and ``ls`` use): ``path=notes/*.md`` and ``path~notes/*.md`` are the same filter, ``path=*.pdf`` any PDF.

A field holding a list (front matter ``tags: [a, b]``) matches when one of its items does. A document without
the field matches no condition on it except the negations (``!=``, ``!~``): ``author!=Smith`` keeps documents
with no author. A filter on a field that no document has is an :class:`~sleuth.errors.UnknownFieldError` listing
the fields that do exist; a condition that does not parse is a :class:`~sleuth.errors.FilterSyntaxError`.

:class:`DocFilter` is a filter resolved against a corpus's metadata (:mod:`sleuth.metadata`): the set of doc ids
that match, and a boolean mask over any list of doc ids (an index's), which the retrievers apply to their scores
before taking the top k, so a filtered search returns exactly the best k of the matching documents.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field as dc_field
from typing import TYPE_CHECKING, Any

from sleuth.errors import FilterSyntaxError, UnknownFieldError, shown

if TYPE_CHECKING:
    import numpy as np

    from sleuth.corpus import Corpus

MAX_CONDITION_CHARS = 1000
MAX_CONDITIONS = 20
_COND = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*(!=|<=|>=|!~|==|=|<|>|~)\s*(.*?)\s*", re.S)
_OP_CHARS = "=<>!~"
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
NEGATIONS = frozenset({"!=", "!~"})
PATH_FIELD = "path"


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return None


def _date(value: Any) -> dt.datetime | None:
    """An ISO date or date-time as an aware datetime (UTC when no zone is given), else None."""
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if not isinstance(value, str) or not _DATE.match(value.strip()):
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _unquote(value: str) -> tuple[str, bool]:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1], True
    return value, False


@dataclass(frozen=True)
class Condition:
    """One parsed ``FIELD OP VALUE`` (see the module docstring for how it compares)."""

    field: str
    op: str
    value: str
    text: str  # as written
    number: float | None = None
    date: dt.datetime | None = None
    date_only: bool = False
    _glob: Any = dc_field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, text: str) -> Condition:
        if not isinstance(text, str):
            raise FilterSyntaxError(f"a filter is a string, got {type(text).__name__}")
        if len(text) > MAX_CONDITION_CHARS:
            raise FilterSyntaxError(f"filter is {len(text)} characters long (at most {MAX_CONDITION_CHARS})")
        m = _COND.fullmatch(text)
        if m is None:
            raise FilterSyntaxError(f"bad filter {shown(text)}: {_why(text)}")
        name, op, raw = m.group(1), m.group(2), m.group(3)
        op = "=" if op == "==" else op
        value, quoted = _unquote(raw)
        if not quoted and (not value or value[0] in _OP_CHARS):
            what = "no value after the operator" if not value else f"the value starts with {value[0]!r}"
            raise FilterSyntaxError(f"bad filter {shown(text)}: {what}")
        glob: Any = None
        if name == PATH_FIELD:
            from sleuth.globs import compile_glob

            glob = compile_glob(value)  # InvalidGlobError names a glob that cannot compile
        elif op in ("~", "!~"):
            glob = re.compile(fnmatch.translate(value), re.IGNORECASE | re.DOTALL)
        number = None if quoted else _number(value)
        date = None if number is not None else _date(value)
        return cls(field=name, op=op, value=value, text=text, number=number, date=date,
                   date_only=date is not None and len(value.strip()) == 10, _glob=glob)

    # -- matching ---------------------------------------------------------------------------------------------
    def test(self, record: Mapping[str, Any]) -> bool:
        """Whether a document with metadata ``record`` passes this condition."""
        if self.field not in record or record[self.field] is None:
            return self.op in NEGATIONS
        value = record[self.field]
        items = value if isinstance(value, list | tuple) else [value]
        hit = any(self._positive(v) for v in items if v is not None)
        return not hit if self.op in NEGATIONS else hit

    def _positive(self, value: Any) -> bool:
        """The condition without its negation (``!=`` tests ``=``, ``!~`` tests ``~``) on one scalar value."""
        op = {"!=": "=", "!~": "~"}.get(self.op, self.op)
        if self.field == PATH_FIELD:
            return bool(self._glob.match(str(value)))
        if isinstance(value, bool):
            value = "true" if value else "false"
        if op == "~":
            return bool(self._glob.match(str(value)))
        if self.number is not None:
            v = _number(value)
            if v is not None:
                return _compare(v, op, self.number)
            return op == "=" and str(value) == self.value
        if self.date is not None:
            d = _date(value)
            if d is not None:
                if self.date_only:
                    return _compare(d.astimezone(dt.UTC).date(), op, self.date.date())
                return _compare(d, op, self.date)
            return op == "=" and str(value) == self.value
        text = value if isinstance(value, str) else str(value)
        return _compare(text, op, self.value)


def _compare(a: Any, op: str, b: Any) -> bool:
    if op == "=":
        return bool(a == b)
    if op == "<":
        return bool(a < b)
    if op == "<=":
        return bool(a <= b)
    if op == ">":
        return bool(a > b)
    return bool(a >= b)  # ">="


def _why(text: str) -> str:
    """What is wrong with a condition that does not parse (for the one-line error)."""
    stripped = text.strip()
    if not stripped:
        return "it is empty"
    if not any(c in stripped for c in _OP_CHARS):
        return "no operator"
    if stripped[0] in _OP_CHARS:
        return "no field name before the operator"
    return "a field name is a letter or _ followed by letters, digits, _, . or -"


@dataclass(frozen=True)
class Where:
    """Conditions that must all hold (AND)."""

    conditions: tuple[Condition, ...]

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys(c.field for c in self.conditions))

    def matches(self, record: Mapping[str, Any]) -> bool:
        return all(c.test(record) for c in self.conditions)

    def __str__(self) -> str:
        return " AND ".join(c.text.strip() for c in self.conditions)


def parse_where(where: str | Sequence[str] | Where | None) -> Where | None:
    """A :class:`Where` from one condition, a list of them (ANDed), or None / an empty list (no filter)."""
    if where is None or isinstance(where, Where):
        return where
    items = [where] if isinstance(where, str) else list(where)
    if not items:
        return None
    if len(items) > MAX_CONDITIONS:
        raise FilterSyntaxError(f"{len(items)} filter conditions (at most {MAX_CONDITIONS})")
    return Where(tuple(Condition.parse(t) for t in items))


@dataclass
class DocFilter:
    """A :class:`Where` resolved against a corpus: the doc ids that match (of ``n_docs`` with metadata)."""

    where: Where
    matching: frozenset[str]
    n_docs: int
    _masks: dict[int, tuple[Sequence[str], np.ndarray]] = dc_field(default_factory=dict, repr=False)

    def mask(self, doc_ids: Sequence[str]) -> np.ndarray:
        """A boolean array over ``doc_ids`` (an index's), True where the document matches (cached per list)."""
        import numpy as np

        key = id(doc_ids)
        got = self._masks.get(key)
        if got is not None and got[0] is doc_ids:
            return got[1]
        matching = self.matching
        out = np.fromiter((d in matching for d in doc_ids), dtype=bool, count=len(doc_ids))
        self._masks.clear()  # one index at a time in practice; never unbounded
        self._masks[key] = (doc_ids, out)
        return out

    def describe(self) -> str:
        return f"{self.where} ({len(self.matching)} of {self.n_docs} documents)"


def check_fields(where: Where, known: Collection[str]) -> None:
    """:class:`UnknownFieldError` for the first field of ``where`` that no document has."""
    for name in where.fields:
        if name not in known:
            raise UnknownFieldError(name, sorted(known))


def resolve(where: str | Sequence[str] | Where | DocFilter | None, corpus: Corpus) -> DocFilter | None:
    """The filter ``where`` applied to ``corpus``'s metadata now (None: no filter)."""
    if where is None or isinstance(where, DocFilter):
        return where
    parsed = parse_where(where)
    if parsed is None:
        return None
    table, fields, matches = corpus._metadata()
    key = str(parsed)
    found = matches.get(key)
    if found is None:
        found = apply(parsed, table, fields)
        if len(matches) >= 64:  # the same few filters again and again, in practice; never unbounded
            matches.clear()
        matches[key] = found
    return DocFilter(parsed, found.matching, found.n_docs)


def apply(where: Where, table: Mapping[str, Mapping[str, Any]], fields: Collection[str] | None = None
          ) -> DocFilter:
    """The :class:`DocFilter` of ``where`` over ``table`` (doc id -> metadata record; ``fields``: the fields
    its records have, when known)."""
    check_fields(where, known_fields(table.values()) if fields is None else fields)
    return DocFilter(where, frozenset(d for d, rec in table.items() if where.matches(rec)), len(table))


def known_fields(records: Iterable[Mapping[str, Any]]) -> set[str]:
    out: set[str] = set()
    for rec in records:
        out.update(rec)
    return out
