"""sleuth tools for OpenAI-style function calling: tool specs plus a dispatcher for ``tool_calls``.

::

    specs, dispatch = sleuth.tools.openai_tools("docs/", include=["grep", "read", "ls"])
    resp = client.chat.completions.create(model=..., messages=messages, tools=specs)
    msg = resp.choices[0].message
    messages.append(msg)
    messages += dispatch(msg)                   # [{"role": "tool", "tool_call_id": ..., "content": ...}, ...]

The dispatcher takes tool calls as OpenAI SDK objects, as dicts (``{"id", "function": {"name", "arguments"}}``
or ``{"id", "name", "arguments"}``), as sleuth :class:`~sleuth.llm.base.ToolCall` records, or a whole assistant
message / chat completion holding them; a message without tool calls (the model's final answer) gives ``[]``, so
the lines above can run on every turn, the last one included. Arguments may be a JSON string (what the API
returns) or a dict; broken JSON (trailing commas, single quotes, a cut-off object) is read by
:func:`sleuth.llm.jsonparse.loads_lenient`, the parser the rest of sleuth uses, which never changes a string's
contents.

A tool message longer than ``max_result_chars`` (default 100,000 characters; OpenAI rejects a message over
1,048,576) is cut, with a note of how much was cut.

Faults the model made (unknown tool, arguments that are not JSON or fail validation, a path outside the corpus)
come back as the tool message's content, for the model to correct. sleuth's real faults (a missing index, a dead
model server) come back the same way, with their hint; anything else is raised.

**Tool retrieval.** With a catalog of hundreds of tools, sending every spec costs tokens and confuses small
models. Pass ``catalog=`` (a :class:`sleuth.retrieval.tool_catalog.ToolCatalog`, or anything with
``search(query, k) -> list[Hit]`` whose hits name tools) and ``query=``: only the ``k`` best specs are sent. Give
``handlers={name: callable}`` for catalog tools you can run; a call to a retrieved tool without a handler comes
back as an error message saying so.

**A schema budget.** ``budget_tokens=N`` caps what the retrieved schemas cost the prompt, counted with the model's
own tokenizer (``tokenizer=``: a model string or chat model; default ``local``): the best tools that fit are
sent whole and the rest of the top ``k`` are named in one small ``more_tools`` tool
(:mod:`sleuth.retrieval.tools.budget`). A ``more_tools`` call returns the schemas asked for and adds them to
``dispatch.specs``, so pass ``tools=dispatch.specs`` on every turn::

    specs, dispatch = openai_tools("docs/", catalog=catalog, query=request, k=10, budget_tokens=600)
    while True:
        msg = client.chat.completions.create(model=..., messages=messages, tools=dispatch.specs).choices[0].message
        ...
"""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sleuth.errors import ConfigError, ToolArgumentError
from sleuth.integrations.toolset import safe_invoke
from sleuth.llm.jsonparse import loads_lenient
from sleuth.tools.base import Toolkit, ToolResult, error_result

Handler = Callable[[dict[str, Any]], Any]

DEFAULT_MAX_RESULT_CHARS = 100_000


class ParsedCall:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, id: str, name: str, arguments: Any) -> None:
        self.id = id
        self.name = name
        self.arguments = arguments

    def __repr__(self) -> str:
        return f"ParsedCall(id={self.id!r}, name={self.name!r}, arguments={self.arguments!r})"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key, default)
    return getattr(obj, key, default)


def extract_tool_calls(obj: Any) -> list[Any]:
    """The list of tool calls in ``obj``: a list of calls, a message, or a chat completion. A message without
    tool calls (``tool_calls`` absent, None or empty) holds none: ``[]``."""
    if obj is None:
        return []
    if isinstance(obj, list | tuple):
        return list(obj)
    choices = _get(obj, "choices")
    if choices:
        return extract_tool_calls(_get(choices[0], "message"))
    calls = _get(obj, "tool_calls")
    if calls is not None:
        return list(calls)
    if _get(obj, "function") is not None or _get(obj, "name") is not None:
        return [obj]
    if _get(obj, "role") is not None or _get(obj, "content") is not None:  # a message with nothing to dispatch
        return []
    raise ToolArgumentError(
        f"cannot find tool calls in a {type(obj).__name__}",
        hint="pass the assistant message, its tool_calls, or the chat completion",
    )


def parse_tool_call(call: Any, fallback_id: str) -> ParsedCall:
    """Normalise one tool call (SDK object, dict, or sleuth ToolCall) to id, name and raw arguments."""
    function = _get(call, "function")
    if function is not None:
        name = _get(function, "name")
        arguments = _get(function, "arguments")
    else:
        name = _get(call, "name")
        raw = _get(call, "raw_arguments")
        arguments = raw if raw else _get(call, "arguments")
    return ParsedCall(id=str(_get(call, "id") or fallback_id), name=str(name or ""), arguments=arguments)


class ToolDispatcher:
    """Runs tool calls from a chat completion and returns the tool messages to append to the conversation."""

    def __init__(
        self,
        toolkit: Toolkit,
        *,
        handlers: Mapping[str, Handler] | None = None,
        offered: Iterable[str] | None = None,
        tracer: Any = None,
        max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
        specs: Iterable[dict[str, Any]] = (),
        offer: Any = None,
    ) -> None:
        if max_result_chars is not None and max_result_chars < 100:
            raise ConfigError(
                f"max_result_chars={max_result_chars} leaves no room for a result", hint="use 100 or more, or None"
            )
        self.toolkit = toolkit
        self.handlers = dict(handlers or {})
        self.offered = None if offered is None else set(offered)
        self.tracer = tracer
        self.max_result_chars = max_result_chars
        self._ids = itertools.count(1)
        self.specs: list[dict[str, Any]] = list(specs)  # what to pass as tools= (grows with more_tools calls)
        self.offer = offer  # a SchemaOffer when a schema budget applied

    def names(self) -> list[str]:
        return [*self.toolkit.names(), *(n for n in self.handlers if n not in self.toolkit)]

    def run(self, call: Any) -> ToolResult:
        """Execute one call and return sleuth's :class:`ToolResult`."""
        parsed = call if isinstance(call, ParsedCall) else parse_tool_call(call, f"call_{next(self._ids)}")
        return self._run(parsed)

    def _run(self, parsed: ParsedCall) -> ToolResult:
        name = parsed.name
        if name in self.toolkit:
            arguments = parsed.arguments
            if isinstance(arguments, str) and arguments.strip():
                with contextlib.suppress(ValueError):  # else the toolkit reports (and traces) it as not valid JSON
                    arguments = loads_lenient(arguments)
            return safe_invoke(self.toolkit, name, arguments, tracer=self.tracer)
        if self.offer is not None and self.offer.listing is not None and name == self.offer.listing["function"]["name"]:
            return self._more_tools(parsed)
        handler = self.handlers.get(name)
        if handler is None:
            if self.offered is not None and name in self.offered:
                msg = f"tool {name!r} was offered from the tool catalog but has no handler in this dispatcher"
                return error_result(ToolArgumentError(msg, hint="pass handlers={name: callable} to openai_tools"))
            available = ", ".join(self.names()) or "none"
            return error_result(ToolArgumentError(f"unknown tool {name!r}; available tools: {available}"))
        try:
            arguments = _parse_json_object(parsed.arguments, name)
        except ToolArgumentError as e:
            return error_result(e)
        out = handler(arguments)
        if isinstance(out, ToolResult):
            return out
        text = out if isinstance(out, str) else json.dumps(out, ensure_ascii=False, default=str)
        return ToolResult(text=text, data=None if isinstance(out, str) else out)

    def _more_tools(self, parsed: ParsedCall) -> ToolResult:
        """A ``more_tools`` call: the schemas of the listed tools asked for, added to :attr:`specs`."""
        try:
            arguments = _parse_json_object(parsed.arguments, parsed.name)
        except ToolArgumentError as e:
            return error_result(e)
        asked = arguments.get("names")
        asked = [asked] if isinstance(asked, str) else asked
        listed = self.offer.listed
        if not isinstance(asked, list) or not asked or not all(isinstance(n, str) for n in asked):
            return error_result(ToolArgumentError(f"{parsed.name} takes names: a list of tool names, among: "
                                                  + ", ".join(listed)))
        unknown = [n for n in asked if n not in listed]
        if unknown:
            return error_result(ToolArgumentError(f"not among the listed tools: {', '.join(unknown)}; listed: "
                                                  + ", ".join(listed)))
        have = {s["function"]["name"] for s in self.specs}
        added = [self.offer.by_name[n] for n in dict.fromkeys(asked) if n not in have]
        self.specs[-1:-1] = added  # before the listing tool, which stays last
        if self.offered is not None:
            self.offered.update(s["function"]["name"] for s in added)
        data = {"added": [s["function"]["name"] for s in added], "schemas": added}
        note = f"{len(added)} tool schema(s) added; they can be called on the next turn"
        return ToolResult(text=note + "\n" + json.dumps(added, ensure_ascii=False), data=data)

    def message(self, call: Any) -> dict[str, Any]:
        """The ``{"role": "tool", ...}`` message for one call, its content cut to ``max_result_chars``."""
        parsed = call if isinstance(call, ParsedCall) else parse_tool_call(call, f"call_{next(self._ids)}")
        result = self._run(parsed)
        return {"role": "tool", "tool_call_id": parsed.id, "content": self._cap(result.text)}

    def _cap(self, text: str) -> str:
        if self.max_result_chars is None or len(text) <= self.max_result_chars:
            return text
        from sleuth.agents.context import cap_text  # imported only when needed: sleuth.agents loads langgraph

        return cap_text(text, self.max_result_chars)[0]

    def __call__(self, tool_calls: Any) -> list[dict[str, Any]]:
        """Execute every call in ``tool_calls`` (in order); one ``{"role": "tool", ...}`` message per call."""
        return [self.message(c) for c in extract_tool_calls(tool_calls)]


def _parse_json_object(arguments: Any, name: str) -> dict[str, Any]:
    if arguments is None:
        return {}
    if isinstance(arguments, str):
        try:
            arguments = loads_lenient(arguments) if arguments.strip() else {}
        except ValueError as e:
            raise ToolArgumentError(f"arguments for {name} are not valid JSON: {e}") from e
    if not isinstance(arguments, dict):
        raise ToolArgumentError(f"arguments for {name} must be a JSON object, got {type(arguments).__name__}")
    return arguments


def retrieve_specs(catalog: Any, query: str, k: int, method: str = "bm25") -> list[dict[str, Any]]:
    """The OpenAI specs of the ``k`` catalog tools that best match ``query``.

    ``catalog`` is a :class:`sleuth.retrieval.tool_catalog.ToolCatalog` (its ``retrieve``), or anything whose
    ``search(query, k)`` returns hits naming tools (``doc_id``), with the spec in ``hit.metadata["spec"]``."""
    if hasattr(catalog, "retrieve"):
        return list(catalog.retrieve(query, k, method))
    specs = []
    for hit in catalog.search(query, k):
        spec = (hit.metadata or {}).get("spec")
        if spec is None:
            raise ToolArgumentError(
                f"catalog hit {hit.doc_id!r} carries no tool spec", hint="use a sleuth ToolCatalog, or put the "
                "OpenAI spec in hit.metadata['spec']"
            )
        specs.append(spec)
    return specs


def openai_tools(
    corpus: Any = None,
    include: Iterable[str] | None = None,
    *,
    toolkit: Toolkit | None = None,
    catalog: Any = None,
    query: str | None = None,
    k: int = 5,
    method: str = "bm25",
    handlers: Mapping[str, Handler] | None = None,
    tracer: Any = None,
    max_result_chars: int | None = DEFAULT_MAX_RESULT_CHARS,
    budget_tokens: int | None = None,
    tokenizer: Any = None,
    **toolset_options: Any,
) -> tuple[list[dict[str, Any]], ToolDispatcher]:
    """Tool specs for ``tools=`` and a dispatcher for the ``tool_calls`` that come back.

    * ``corpus`` (a folder or Corpus) with ``include`` (tool names; default all available): sleuth's own tools.
      Or pass a ready ``toolkit``. Other keyword arguments go to
      :func:`~sleuth.integrations.toolset.build_toolkit` (e.g. ``model=`` to add ``ask``).
    * ``catalog`` + ``query``: add the ``k`` catalog tools retrieved for ``query`` with ``method`` (``bm25``,
      ``dense``, ``hybrid``, ``llm-query``: see :class:`~sleuth.retrieval.tool_catalog.ToolCatalog`); run them with
      ``handlers`` (name -> callable taking the arguments dict and returning a str, a JSON-able value or a
      ToolResult).
    * ``max_result_chars``: the longest tool message content (longer results are cut, with a note of how much);
      None sends results whole.
    * ``budget_tokens``: the most the retrieved schemas may cost, in ``tokenizer``'s tokens (a model string or
      chat model; default ``local``): see the module doc. ``dispatch.offer`` says what was sent and listed.
    """
    if toolkit is None:
        if corpus is not None:
            from sleuth.integrations.toolset import build_toolkit

            toolkit = build_toolkit(corpus, include=include, **toolset_options).toolkit
        else:
            toolkit = Toolkit([])
    elif include is not None:
        toolkit = toolkit.subset(include)
    specs = toolkit.openai_schemas()
    offered: list[str] | None = None
    offer = None
    if catalog is not None:
        if not query:
            raise ToolArgumentError(
                "tool retrieval needs the user's request", hint="pass query= with the text to match tools against"
            )
        retrieved = [s for s in retrieve_specs(catalog, query, k, method) if s["function"]["name"] not in toolkit]
        if budget_tokens is not None:
            from sleuth.llm.tokenizer import counter_for
            from sleuth.retrieval.tools.budget import fit_schemas

            offer = fit_schemas(retrieved, budget_tokens, counter_for(tokenizer))
            retrieved = offer.all_specs()
        specs += retrieved
        offered = [s["function"]["name"] for s in retrieved]
    elif budget_tokens is not None:
        raise ToolArgumentError("budget_tokens applies to tools retrieved from a catalog", hint="pass catalog=")
    dispatcher = ToolDispatcher(
        toolkit, handlers=handlers, offered=offered, tracer=tracer, max_result_chars=max_result_chars, specs=specs,
        offer=offer,
    )
    return specs, dispatcher
