"""One reading of a glob, everywhere: ripgrep's ``-g`` semantics, matched in linear time.

sleuth's ``grep`` hands a glob to ripgrep (``rg -g GLOB``); ``ls``, the corpus listing and everything else match
the same glob here, with the same meaning, so ``*.{md,txt}`` selects the same documents in both. The meaning is
ripgrep's (the ``ignore`` crate's override globs over the ``globset`` syntax):

* ``*`` any run of characters except ``/``; ``?`` one byte except ``/``; ``[abc]``, ``[a-z]``, ``[!abc]`` /
  ``[^abc]`` a byte class (a negated class also matches ``/``, as in ripgrep); ``{a,b}`` alternatives (nested
  allowed; empty alternatives are dropped); ``\\x`` the literal ``x``.
* ``**`` is recursive only as a whole path component: ``**/x`` (any depth, including none), ``a/**`` (everything
  under ``a``, not ``a`` itself), ``a/**/b``; elsewhere it is two ``*``.
* A glob without a ``/`` matches the file name at any depth (``*.md`` = ``**/*.md``); a leading ``/`` anchors it
  at the corpus root; a trailing ``/`` matches folders only (so it selects no documents, or, negated, excludes a
  folder); a leading ``!`` excludes what it matches (a matching folder excludes everything under it); a line
  starting with ``#`` is a comment (no filter), trailing spaces are dropped unless escaped.
* Matching is on the UTF-8 bytes of the doc id, case-sensitive.

The matcher is a Thompson NFA run as a lazily built DFA (states cached per glob, the cache reset when it grows
past :data:`MAX_DFA_STATES`), so a match costs O(len(path)) after warm-up and never backtracks: ``*a*a*a*a*b``
against a long id is as fast as ``*.md``. Globs longer than :data:`MAX_GLOB_CHARS` are refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import lru_cache

from sleuth.errors import InvalidGlobError, shown

MAX_GLOB_CHARS = 1000
MAX_DFA_STATES = 2000

# --- tokens (globset's parser, transcribed) -----------------------------------------------------------------


@dataclass(frozen=True)
class _Lit:
    ch: str


@dataclass(frozen=True)
class _Tok:
    kind: str  # any | star | rprefix | rsuffix | rzero


@dataclass(frozen=True)
class _Class:
    negated: bool
    ranges: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Alts:
    branches: tuple[tuple[_Token, ...], ...]


_Token = _Lit | _Tok | _Class | _Alts


class _Parser:
    def __init__(self, glob: str, original: str) -> None:
        self.glob = glob
        self.original = original
        self.chars = list(glob)
        self.pos = 0
        self.prev: str | None = None
        self.cur: str | None = None
        self.stack: list[int] = []
        self.branches: list[list[_Token]] = [[]]

    def error(self, what: str) -> InvalidGlobError:
        return InvalidGlobError(f"invalid glob {shown(self.original)}: {what}")

    def bump(self) -> str | None:
        self.prev = self.cur
        self.cur = self.chars[self.pos] if self.pos < len(self.chars) else None
        if self.cur is not None:
            self.pos += 1
        return self.cur

    def peek(self) -> str | None:
        return self.chars[self.pos] if self.pos < len(self.chars) else None

    def push(self, tok: _Token) -> None:
        self.branches[-1].append(tok)

    def parse(self) -> tuple[_Token, ...]:
        while (c := self.bump()) is not None:
            if c == "?":
                self.push(_Tok("any"))
            elif c == "*":
                self.parse_star()
            elif c == "[":
                self.parse_class()
            elif c == "{":
                self.stack.append(len(self.branches))
                self.branches.append([])
            elif c == "}":
                if not self.stack:
                    raise self.error("'}' without a matching '{'")
                start = self.stack.pop()
                alts = _Alts(tuple(tuple(b) for b in self.branches[start:]))
                del self.branches[start:]
                self.push(alts)
            elif c == "," and self.stack:
                self.branches.append([])
            elif c == "\\":
                nxt = self.bump()
                if nxt is None:
                    raise self.error("dangling '\\' at the end")
                self.push(_Lit(nxt))
            else:
                self.push(_Lit(c))
        if len(self.branches) > 1:
            raise self.error("unclosed '{'")
        return tuple(self.branches[0])

    def parse_star(self) -> None:
        prev = self.prev
        if self.peek() != "*":
            self.push(_Tok("star"))
            return
        self.bump()
        if not self.branches[-1]:
            if self.peek() not in (None, "/"):
                self.push(_Tok("star"))
                self.push(_Tok("star"))
            else:
                self.push(_Tok("rprefix"))
                self.bump()
            return
        if prev != "/" and (len(self.branches) <= 1 or prev not in (",", "{")):
            self.push(_Tok("star"))
            self.push(_Tok("star"))
            return
        nxt = self.peek()
        if nxt is None:
            self.bump()
            is_suffix = True
        elif nxt in (",", "}") and len(self.branches) >= 2:
            is_suffix = True
        elif nxt == "/":
            self.bump()
            is_suffix = False
        else:
            self.push(_Tok("star"))
            self.push(_Tok("star"))
            return
        last = self.branches[-1].pop()
        if isinstance(last, _Tok) and last.kind in ("rprefix", "rsuffix"):
            self.push(last)
        else:
            self.push(_Tok("rsuffix" if is_suffix else "rzero"))

    def parse_class(self) -> None:
        ranges: list[tuple[str, str]] = []
        negated = self.peek() in ("!", "^")
        if negated:
            self.bump()
        first, in_range = True, False
        while True:
            c = self.bump()
            if c is None:
                raise self.error("unclosed character class; missing ']'")
            if c == "]" and not first:
                break
            if c == "-" and not first:
                if in_range:
                    ranges[-1] = self._range(ranges[-1][0], "-")
                    in_range = False
                else:
                    in_range = True
            elif in_range:
                ranges[-1] = self._range(ranges[-1][0], c)
                in_range = False
            else:
                ranges.append((c, c))
            first = False
        if in_range:
            ranges.append(("-", "-"))
        self.push(_Class(negated, tuple(ranges)))

    def _range(self, lo: str, hi: str) -> tuple[str, str]:
        if hi < lo:
            raise self.error(f"invalid character range {lo}-{hi}")
        return (lo, hi)


# --- NFA ----------------------------------------------------------------------------------------------------

_ALL = (1 << 256) - 1
_NOT_SLASH = _ALL & ~(1 << ord("/"))
_SLASH = 1 << ord("/")


def _bit(b: int) -> int:
    return 1 << b


def _class_mask(cls: _Class) -> int:
    """globset writes each range endpoint as escaped UTF-8 bytes inside a byte class: a range runs from the last
    byte of its low end to the first byte of its high end; the other bytes of a multi-byte endpoint are singletons."""
    mask = 0
    for lo, hi in cls.ranges:
        lb, hb = lo.encode("utf-8", "surrogatepass"), hi.encode("utf-8", "surrogatepass")
        if lo == hi:
            for b in lb:
                mask |= _bit(b)
            continue
        for b in lb[:-1]:
            mask |= _bit(b)
        for b in range(lb[-1], hb[0] + 1):
            mask |= _bit(b)
        for b in hb[1:]:
            mask |= _bit(b)
    return (_ALL & ~mask) if cls.negated else mask


@dataclass
class _NFA:
    masks: list[int] = field(default_factory=list)  # byte states: the bytes they accept; -1 for epsilon states
    outs: list[list[int]] = field(default_factory=list)
    match: int = -1

    def state(self, mask: int, outs: list[int]) -> int:
        self.masks.append(mask)
        self.outs.append(outs)
        return len(self.masks) - 1

    def star(self, mask: int, nxt: int) -> int:
        loop = self.state(-1, [])
        body = self.state(mask, [loop])
        self.outs[loop] = [body, nxt]
        return loop

    def seq(self, tokens: tuple[_Token, ...], nxt: int) -> int:
        for tok in reversed(tokens):
            nxt = self.token(tok, nxt)
        return nxt

    def token(self, tok: _Token, nxt: int) -> int:
        if isinstance(tok, _Lit):
            for b in reversed(tok.ch.encode("utf-8", "surrogatepass")):
                nxt = self.state(_bit(b), [nxt])
            return nxt
        if isinstance(tok, _Class):
            return self.state(_class_mask(tok), [nxt])
        if isinstance(tok, _Alts):
            starts = [self.seq(b, nxt) for b in tok.branches if not _empty(b)]
            return self.state(-1, starts) if starts else nxt
        kind = tok.kind
        if kind == "any":
            return self.state(_NOT_SLASH, [nxt])
        if kind == "star":
            return self.star(_NOT_SLASH, nxt)
        if kind == "rprefix":  # (?:/?|.*/)
            slash = self.state(_SLASH, [nxt])
            return self.state(-1, [nxt, slash, self.star(_ALL, slash)])
        if kind == "rsuffix":  # /.*
            return self.state(_SLASH, [self.star(_ALL, nxt)])
        # rzero: (?:/|/.*/)
        slash = self.state(_SLASH, [nxt])
        return self.state(_SLASH, [self.state(-1, [nxt, self.star(_ALL, slash)])])


def _empty(tokens: tuple[_Token, ...]) -> bool:
    """True when globset would write the branch as an empty regex (then the alternative is dropped)."""
    return all(isinstance(t, _Alts) and all(_empty(b) for b in t.branches) for t in tokens)


class _Cache:
    """DFA states built so far: lists only grow, and a transition only changes from unknown (-2) to known."""

    def __init__(self) -> None:
        self.ids: dict[frozenset[int], int] = {}
        self.sets: list[frozenset[int]] = []
        self.trans: list[list[int]] = []
        self.accept: list[bool] = []


class GlobMatcher:
    """A compiled globset glob (no gitignore rules): ``match(path)`` is True when the whole path matches.

    Safe to share between threads: lookups are lock-free, new DFA states are added under a lock."""

    def __init__(self, tokens: tuple[_Token, ...]) -> None:
        nfa = _NFA()
        nfa.match = nfa.state(-1, [])
        if tokens == (_Tok("rprefix"),):  # `**` alone matches everything
            start = nfa.star(_ALL, nfa.match)
        else:
            start = nfa.seq(tokens, nfa.match)
        self._nfa = nfa
        self._start_set = self._closure([start])
        self._lock = threading.Lock()
        self._cache = self._fresh()

    def _fresh(self) -> _Cache:
        c = _Cache()
        self._intern(c, self._start_set)  # the start state is always DFA state 0
        return c

    def _closure(self, states: list[int]) -> frozenset[int]:
        masks, outs = self._nfa.masks, self._nfa.outs
        seen: set[int] = set()
        stack = list(states)
        while stack:
            s = stack.pop()
            if s in seen:
                continue
            seen.add(s)
            if masks[s] == -1:
                stack.extend(outs[s])
        return frozenset(s for s in seen if masks[s] != -1 or s == self._nfa.match)

    def _intern(self, c: _Cache, states: frozenset[int]) -> int:
        i = c.ids.get(states)
        if i is None:
            i = len(c.sets)
            c.sets.append(states)
            c.trans.append([-2] * 256)
            c.accept.append(self._nfa.match in states)
            c.ids[states] = i
        return i

    def _step(self, c: _Cache, d: int, b: int) -> tuple[_Cache, int, int]:
        """The transition of DFA state ``d`` on byte ``b``: (cache, state, target); -1 is the dead state."""
        with self._lock:
            masks, outs = self._nfa.masks, self._nfa.outs
            bit = 1 << b
            nxt = [outs[s][0] for s in c.sets[d] if masks[s] != -1 and masks[s] & bit]
            if not nxt:
                c.trans[d][b] = -1
                return c, d, -1
            if len(c.sets) >= MAX_DFA_STATES:  # start a fresh cache (memory stays bounded)
                current = c.sets[d]
                c = self._fresh()
                d = self._intern(c, current)
                self._cache = c
            target = self._intern(c, self._closure(nxt))
            c.trans[d][b] = target
            return c, d, target

    def match(self, path: str | bytes) -> bool:
        data = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
        c = self._cache
        d = 0
        for b in data:
            t = c.trans[d][b]
            if t == -2:
                c, d, t = self._step(c, d, b)
            if t == -1:
                return False
            d = t
        return c.accept[d]


@dataclass(frozen=True)
class PathGlob:
    """A glob as ``rg -g`` reads it: gitignore rules (negation, anchoring, folders-only) over a :class:`GlobMatcher`."""

    original: str
    matcher: GlobMatcher | None  # None: the glob is a comment or blank, so it filters nothing
    exclude: bool = False
    only_dirs: bool = False

    def match(self, doc_id: str) -> bool:
        """Whether ripgrep, given ``-g GLOB``, searches the file ``doc_id`` (a posix path relative to the root)."""
        if self.matcher is None:
            return True
        if not self.exclude:
            return not self.only_dirs and self.matcher.match(doc_id)
        parts = doc_id.split("/")
        for i in range(1, len(parts)):
            if self.matcher.match("/".join(parts[:i])):
                return False  # a matching folder is not entered
        return self.only_dirs or not self.matcher.match(doc_id)

    __call__ = match


@lru_cache(maxsize=256)
def compile_glob(glob: str) -> PathGlob:
    """Parse ``glob`` with ripgrep's rules; raises :class:`~sleuth.errors.InvalidGlobError` when ripgrep would."""
    if not isinstance(glob, str):
        raise InvalidGlobError(f"a glob must be a string, not {type(glob).__name__}")
    if len(glob) > MAX_GLOB_CHARS:
        raise InvalidGlobError(f"glob is {len(glob)} characters long; the limit is {MAX_GLOB_CHARS}")
    if "\x00" in glob:
        raise InvalidGlobError("a glob cannot contain a NUL character")
    line = glob
    if line.startswith("#"):
        return PathGlob(glob, None)
    if not line.endswith("\\ "):
        line = line.rstrip()
    if not line:
        return PathGlob(glob, None)
    exclude = only_dirs = anchored = False
    if line.startswith(("\\!", "\\#")):
        line = line[1:]
        anchored = line.startswith("/")
    else:
        if line.startswith("!"):
            exclude = True
            line = line[1:]
        if line.startswith("/"):
            line = line[1:]
            anchored = True
    if line.endswith("/"):
        only_dirs = True
        line = line[:-1]
        if line.endswith("\\"):
            line = line[:-1]
    if not anchored and "/" not in line and not (line.startswith("**/") or line == "**"):
        line = "**/" + line
    if line.endswith("/**"):
        line += "/*"
    tokens = _Parser(line, glob).parse()
    return PathGlob(glob, GlobMatcher(tokens), exclude=exclude, only_dirs=only_dirs)


def filter_ids(doc_ids: list[str], glob: str | None) -> list[str]:
    """The doc ids ``glob`` selects (all of them when ``glob`` is None or empty)."""
    if not glob:
        return list(doc_ids)
    g = compile_glob(glob)
    return [d for d in doc_ids if g.match(d)]
