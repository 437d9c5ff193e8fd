"""Tool specs: the :class:`ToolSpec` record, its indexed text, and building specs from OpenAI function specs, MCP
tool listings and Python callables, with the parameter-schema checks (:class:`ToolCatalogError` for bad input)."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from sleuth.errors import DataError


class ToolCatalogError(DataError):
    """A tool catalog that cannot be built (empty, duplicate names, malformed schema, unreadable file)."""

    hint = "fix the catalog file: each tool needs a unique name and an object JSON schema for its parameters"


class ToolSpec(BaseModel):
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    source: str = "openai"
    # A human-readable name when ``name`` is an opaque id (an evaluation set's tool ids, MCP's ``title``): what a
    # user would call the tool. Not sent in OpenAI specs; generated usage must not name it either.
    title: str | None = None

    def display_name(self) -> str:
        """``title`` if there is one, else ``name``."""
        return self.title or self.name

    def to_openai(self) -> dict[str, Any]:
        """``{"type": "function", "function": {...}}`` as chat completions take it."""
        fn: dict[str, Any] = {"name": self.name}
        if self.description:
            fn["description"] = self.description
        fn["parameters"] = self.parameters
        return {"type": "function", "function": fn}

    def document(self) -> str:
        """The text that is indexed for this tool."""
        parts = [split_name(self.name)]
        if self.description:
            parts.append(self.description.strip())
        params = []
        for pname, pschema in (self.parameters.get("properties") or {}).items():
            desc = pschema.get("description", "") if isinstance(pschema, dict) else ""
            params.append(f"{split_name(pname)}: {desc}".rstrip(": ").strip())
        if params:
            parts.append("Parameters: " + "; ".join(params))
        return "\n".join(parts)


def split_name(name: str) -> str:
    """``getWeatherForecast`` / ``get_weather-forecast`` / ``GET /movie/{id}`` -> words separated by spaces."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1 \2", s)
    return " ".join(w for w in re.split(r"[^0-9A-Za-z]+", s) if w)


# --- validation ----------------------------------------------------------------------------------------------


def _check_parameters(name: str, params: Any) -> dict[str, Any]:
    def bad(why: str) -> ToolCatalogError:
        return ToolCatalogError(f"tool {name!r}: malformed parameter schema: {why}")

    if params is None:
        return {"type": "object", "properties": {}}
    if not isinstance(params, dict):
        raise bad(f"expected a JSON object, got {type(params).__name__}")
    if params.get("type", "object") != "object":
        raise bad(f'the top-level "type" must be "object", got {params.get("type")!r}')
    props = params.get("properties", {})
    if not isinstance(props, dict):
        raise bad('"properties" must be an object mapping parameter names to schemas')
    for pname, pschema in props.items():
        if not isinstance(pschema, dict):
            raise bad(f"parameter {pname!r} has a {type(pschema).__name__} instead of a schema object")
    required = params.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
        raise bad('"required" must be a list of parameter names')
    missing = [r for r in required if r not in props]
    if missing:
        raise bad(f"required parameters {missing} are not in properties")
    try:
        from jsonschema.exceptions import SchemaError
        from jsonschema.validators import validator_for
    except ImportError:  # jsonschema comes with litellm; without it the structural checks above still hold
        return params
    try:
        validator_for(params).check_schema(params)
    except SchemaError as e:
        raise bad(f"{e.message} (at {'/'.join(map(str, e.absolute_path)) or 'top level'})") from None
    return params


def spec_from_function(fn: Any, source: str, where: str) -> ToolSpec:
    if not isinstance(fn, dict):
        raise ToolCatalogError(f"{where}: expected a JSON object for a tool, got {type(fn).__name__}")
    name = fn.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ToolCatalogError(f"{where}: a tool has no name", hint="every tool needs a non-empty 'name'")
    desc = fn.get("description") or ""
    if not isinstance(desc, str):
        raise ToolCatalogError(f"tool {name!r}: description must be a string, got {type(desc).__name__}")
    key = "inputSchema" if source == "mcp" else "parameters"
    params = fn.get(key, fn.get("parameters" if source == "mcp" else "inputSchema"))
    title = fn.get("title") if source == "mcp" else None  # MCP's display name (2025-06-18)
    return ToolSpec(name=name, description=desc, parameters=_check_parameters(name, params), source=source,
                    title=(title.strip() or None) if isinstance(title, str) else None)


# --- python callables ----------------------------------------------------------------------------------------


def _doc_parts(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """Description (docstring up to Args:/Parameters:) and per-parameter docs (Google or ``:param x:`` style)."""
    doc = inspect.getdoc(fn) or ""
    params: dict[str, str] = {}
    for m in re.finditer(r"^\s*:param\s+(?:\w+\s+)?(\w+):\s*(.+)$", doc, re.M):
        params[m.group(1)] = m.group(2).strip()
    sect = re.search(r"^(Args|Arguments|Parameters):\s*$", doc, re.M)
    body = doc
    if sect:
        body = doc[: sect.start()]
        for line in doc[sect.end() :].splitlines():
            arg = re.match(r"^\s+(\w+)(?:\s*\([^)]*\))?:\s*(.+)$", line)
            if arg:
                params[arg.group(1)] = arg.group(2).strip()
            elif line.strip() and not line.startswith((" ", "\t")):
                break
    body = re.split(r"^\s*:param", body, maxsplit=1, flags=re.M)[0]
    body = re.split(r"^(Returns|Raises|Yields|Examples?):\s*$", body, maxsplit=1, flags=re.M)[0]
    return " ".join(body.split()), params


def spec_from_callable(fn: Callable[..., Any]) -> ToolSpec:
    """A schema from the signature (type hints via pydantic) and the docstring (description + ``Args:``)."""
    from pydantic import ValidationError, create_model

    name = getattr(fn, "__name__", None)
    if not name or name == "<lambda>":
        raise ToolCatalogError("a callable without a name (a lambda?) cannot be a tool", hint="use a def function")
    desc, pdocs = _doc_parts(fn)
    fields: dict[str, Any] = {}
    try:
        hints = inspect.get_annotations(fn, eval_str=True)
    except Exception:
        hints = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in ("self", "cls"):
            continue
        ann = hints.get(p.name, Any)
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (ann, Field(default, description=pdocs.get(p.name)))
    try:
        args_model: Any = create_model(f"{name}_args", **fields)
        js: dict[str, Any] = args_model.model_json_schema()
    except (ValidationError, TypeError, ValueError) as e:
        raise ToolCatalogError(f"tool {name!r}: cannot build a JSON schema from its signature: {e}") from None
    js.pop("title", None)
    for prop in js.get("properties", {}).values():
        prop.pop("title", None)
    return ToolSpec(name=name, description=desc, parameters=_check_parameters(name, js), source="python")
