"""The one lenient JSON parser: model-written JSON (tool-call arguments, calls written as text, structured replies)
to Python values, without ever changing what a string says.

:func:`loads_lenient` reads the first JSON object or array in the text (the first ``{`` or ``[``, fenced or not;
prose around it is dropped) and tries, in order:

1. ``json.loads`` of the whole text (valid JSON is returned as it is, scalars included), then ``json`` on the
   value alone;
2. the value after a string-aware normalisation (:func:`normalize`): every string (double- or single-quoted) is
   decoded and written back as a JSON string, ``True``/``False``/``None`` become ``true``/``false``/``null`` only
   outside strings, trailing commas go, and a value cut off at the end (``max_tokens``, or a closing code fence)
   has its string and brackets closed. This reads Python literals (a ``repr`` of a dict) exactly too;
3. `json_repair <https://github.com/mangiucugna/json_repair>`_ on the value, for what is left (unquoted keys,
   missing commas, comments, quotes left open in the middle).

Steps 1-2 decode every string exactly as written (an escape JSON does not know, such as ``\\d`` in a regex, is
kept as written). json_repair is reached only when the string boundaries themselves are ambiguous, and there the
library's reading is taken (measured in docs/DEVELOPING.md, "Lenient JSON"). Text with no JSON object or array in
it raises ``ValueError``; so does a repair whose result is not the kind of value the text opened (``{not json``
does not become a list). :func:`json_spans` finds every value in a text, for replies that hold several calls.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

_WORDS = {"True": "true", "False": "false", "None": "null"}
# JSON's escapes plus \' ; \uXXXX, \xXX and \UXXXXXXXX are decoded separately. Others are kept as written.
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "'": "'"}
_HEX = set("0123456789abcdefABCDEF")


def loads_lenient(text: str) -> Any:
    """Parse JSON the way models write it (see the module docstring). Raises ``ValueError`` when the text holds
    no JSON object or array, or when what it holds cannot be repaired."""
    if not isinstance(text, str):
        raise ValueError(f"expected text, got {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    start = _next_opener(text, 0)
    if start < 0:
        raise ValueError(f"no JSON object or array in the text: {text[:120]!r}")
    normalized, end = normalize(text, start)
    value = text[start:end]
    for attempt in (value, normalized):
        try:
            return json.loads(attempt)
        except json.JSONDecodeError:
            pass
    return _json_repair(value)


def repair_json(text: str) -> str:
    """The JSON text of :func:`loads_lenient`'s reading of ``text`` (``ValueError`` when there is none)."""
    return json.dumps(loads_lenient(text), ensure_ascii=False)


def json_spans(text: str) -> list[str]:
    """Every top-level JSON object or array in ``text``, in order, as written (fenced or bare, prose between them
    skipped); brackets inside strings of either quote style do not count. A value the text leaves open runs to the
    end or to a closing code fence (:func:`loads_lenient` closes it)."""
    out: list[str] = []
    i = _next_opener(text, 0)
    while i >= 0:
        _, end = normalize(text, i)
        out.append(text[i:end])
        i = _next_opener(text, max(end, i + 1))
    return out


def _next_opener(text: str, pos: int) -> int:
    starts = [i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0]
    return min(starts) if starts else -1


# -- step 4: string-aware normalisation ------------------------------------------------------------------------


def normalize(text: str, start: int = 0) -> tuple[str, int]:
    """Rewrite the value that starts at ``text[start]`` as JSON, touching only what is outside strings.

    Returns ``(json_text, end)``: ``end`` is where the value ends in ``text``. A value cut off (by the end of the
    text, or by a code fence ```` ``` ```` outside a string) ends there, with its open string and brackets closed
    in ``json_text``. Strings are decoded and re-encoded, so their contents are exactly what was written. The
    result is not guaranteed to be valid JSON (unquoted keys, missing commas stay as they are)."""
    out: list[str] = []
    stack: list[str] = []
    i, n = start, len(text)
    while i < n:
        ch = text[i]
        if ch == "`" and text.startswith("```", i):  # the fence that closes the block: the value ends here
            n = i
            break
        if ch in "\"'":
            opened = i
            value, i, closed = _read_string(text, i)
            if not closed and (fence := text.find("```", opened, n)) >= 0:
                # a string still open at the end, with a code fence in it: the fence closed a cut-off value
                value, _, _ = _read_string(text[:fence], opened)
                out.append(json.dumps(value, ensure_ascii=False))
                n = fence
                break
            out.append(json.dumps(value, ensure_ascii=False))
            continue
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
            out.append(ch)
        elif ch in "}]":
            if ch in stack:
                _drop_trailing_comma(out)
                while stack[-1] != ch:  # a closer the model forgot: {"a": [1, 2}
                    out.append(stack.pop())
                out.append(stack.pop())
                if not stack:
                    return "".join(out), i + 1
            # else: a stray closer, dropped
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < n and (text[j].isalnum() or text[j] == "_"):
                j += 1
            out.append(_WORDS.get(text[i:j], text[i:j]))
            i = j
            continue
        else:
            out.append(ch)
        i += 1
    _drop_trailing_comma(out)
    out.extend(reversed(stack))
    return "".join(out), n


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j].isspace():
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]


def _read_string(text: str, i: int) -> tuple[str, int, bool]:
    """The decoded string whose opening quote (``"`` or ``'``) is at ``text[i]``, the index after its closing
    quote (the end of the text when it is never closed) and whether it was closed. Escapes are JSON's plus
    Python's ``\\'``, ``\\xXX`` and ``\\UXXXXXXXX`` (so a Python ``repr`` reads back exactly); an escape neither
    knows (``\\d`` in a regex) is kept as written."""
    quote = text[i]
    out: list[str] = []
    i += 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return "".join(out), i + 1, True
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:  # a lone backslash where the text was cut off
            break
        esc = text[i + 1]
        if esc in _ESCAPES:
            out.append(_ESCAPES[esc])
            i += 2
        elif esc in "uxU" and (decoded := _hex_escape(text, i)) is not None:
            out.append(decoded[0])
            i = decoded[1]
        else:
            out.append("\\" + esc)
            i += 2
    return "".join(out), n, False


def _hex_escape(text: str, i: int) -> tuple[str, int] | None:
    """The character of the ``\\u``/``\\x``/``\\U`` escape at ``text[i]`` (a UTF-16 surrogate pair written as two
    ``\\u`` escapes is joined) and the index after it; None when the digits are not there."""
    width = {"u": 4, "x": 2, "U": 8}[text[i + 1]]
    digits = text[i + 2 : i + 2 + width]
    if len(digits) != width or not set(digits) <= _HEX:
        return None
    code, end = int(digits, 16), i + 2 + width
    if 0xD800 <= code < 0xDC00 and text[end : end + 2] == "\\u":
        low = text[end + 2 : end + 6]
        if len(low) == 4 and set(low) <= _HEX and 0xDC00 <= int(low, 16) < 0xE000:
            return chr(0x10000 + ((code - 0xD800) << 10) + (int(low, 16) - 0xDC00)), end + 6
    if code > 0x10FFFF:
        return None
    return chr(code), end


# -- step 5: the library ---------------------------------------------------------------------------------------


def _json_repair(value: str) -> Any:
    import json_repair

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            repaired = json_repair.loads(value)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"not JSON even after repair: {e}") from None
    opener = value.lstrip()[:1]
    if opener == "{" and isinstance(repaired, list) and repaired and isinstance(repaired[0], dict):
        repaired = repaired[0]  # several values one after the other: the first, as for valid JSON with prose
    want = dict if opener == "{" else list
    if not isinstance(repaired, want):
        raise ValueError(f"not JSON even after repair: {value[:120]!r}")
    return repaired
