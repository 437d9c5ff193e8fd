"""Span attributes for a sleuth trace event: the OpenTelemetry GenAI semantic conventions, the OpenInference ones
(what Arize Phoenix reads: ``openinference.span.kind``, ``input.value``/``output.value``, ``llm.token_count.*``),
and ``sleuth.*`` for the rest. Pure functions over :class:`~sleuth.records.TraceEvent`; standard library only.

* Model calls: ``gen_ai.operation.name=chat``, ``gen_ai.provider.name``, ``gen_ai.request.*`` (model,
  temperature, max_tokens, ...), ``gen_ai.response.model/id/finish_reasons``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``server.address``/``server.port``; ``llm.model_name``, ``llm.provider``, ``llm.token_count.*``.
* Tool calls: ``gen_ai.operation.name=execute_tool``, ``gen_ai.tool.name``, ``gen_ai.tool.call.id``,
  ``gen_ai.tool.type``; ``tool.name``, ``input.value`` (the arguments).
* Retrieval (SIRA, a strategy's retrieval step): ``gen_ai.operation.name=retrieval``,
  ``gen_ai.retrieval.query.text``; ``retrieval.documents.N.document.id/score``. Reranking: ``reranker.*``.
* Content (prompts, completions, tool results: in an event only when the run captured it, exported only when
  asked): ``gen_ai.input.messages`` / ``gen_ai.output.messages`` (the conventions' JSON message format),
  ``gen_ai.tool.call.arguments`` / ``result``; ``llm.input_messages.N.message.*``, ``llm.output_messages.*``,
  ``input.value`` / ``output.value``.
* Cost: ``sleuth.cost`` is a number in USD, or the string ``"unmeasured"`` when no call was priced, never a 0;
  ``llm.cost.total`` only when the call was priced (the conventions have no cost attribute).
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from sleuth.records import TraceEvent, Usage

Attrs = dict[str, Any]
_ERROR_TYPE = re.compile(r"^(?:Error \()?([A-Za-z_][\w.]*(?:Error|Exception|Timeout))\b")
OI_KIND = {"llm": "LLM", "tool": "TOOL", "sira": "RETRIEVER", "retrieval": "RETRIEVER", "rerank": "RERANKER"}


def as_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=False)


# litellm's provider prefix -> gen_ai.provider.name (the OpenTelemetry GenAI registry's values where it has one)
PROVIDERS = {
    "openai": "openai", "text-completion-openai": "openai", "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference", "anthropic": "anthropic", "bedrock": "aws.bedrock",
    "vertex_ai": "gcp.vertex_ai", "gemini": "gcp.gemini", "cohere": "cohere", "cohere_chat": "cohere",
    "mistral": "mistral_ai", "groq": "groq", "deepseek": "deepseek", "xai": "x_ai", "perplexity": "perplexity",
    "watsonx": "ibm.watsonx.ai", "ollama": "ollama", "ollama_chat": "ollama", "hosted_vllm": "vllm",
}
# model names litellm routes without a prefix
BARE_PROVIDERS = ((("gpt-", "o1", "o3", "o4", "chatgpt-"), "openai"), (("claude",), "anthropic"),
                  (("gemini",), "gcp.gemini"))
LOCAL_PROVIDER = "llama.cpp"  # the embedded server (a custom value: the registry has none for it)


def provider_name(model: str, *, local: bool = False) -> str:
    """``gen_ai.provider.name`` for a model string: the registry value for litellm's prefix, the prefix itself when
    the registry has none, ``llama.cpp`` for the embedded model, ``_OTHER`` when nothing says."""
    if local or model == "local" or model.startswith(("local:", "gguf:")):
        return LOCAL_PROVIDER
    prefix, sep, _ = model.partition("/")
    if sep:
        return PROVIDERS.get(prefix, prefix)
    return next((name for starts, name in BARE_PROVIDERS if model.startswith(starts)), "_OTHER")


def _provider(args: dict[str, Any]) -> str:
    """The recorded ``provider``, else one read off the model string (traces written before it was recorded)."""
    if isinstance(args.get("provider"), str):
        return str(args["provider"])
    return provider_name(str(args.get("model") or ""))


def span_name(e: TraceEvent) -> str:
    if e.kind == "llm":
        return f"chat {e.args.get('model') or ''}".strip()
    if e.kind == "tool":
        return f"execute_tool {e.name}"
    if e.kind in ("sira", "retrieval"):
        return f"retrieval {e.name}".strip()
    return f"{e.kind} {e.name}".strip()


def usage_attributes(usage: Usage | None, prefix: str = "gen_ai.usage") -> Attrs:
    if usage is None:
        return {}
    out: Attrs = {
        f"{prefix}.input_tokens": usage.prompt_tokens,
        f"{prefix}.output_tokens": usage.completion_tokens,
        "sleuth.cost": usage.cost,  # a float, or "unmeasured"
        "sleuth.token_source": usage.token_source,
    }
    if usage.unpriced_calls and not isinstance(usage.cost, str):
        out["sleuth.unpriced_calls"] = usage.unpriced_calls
    return out


def event_attributes(e: TraceEvent, *, content: bool) -> Attrs:
    """Every attribute of the span (or span event) of ``e``; content attributes only with ``content``."""
    a: Attrs = {}
    kind = OI_KIND.get(e.kind) or ("CHAIN" if e.latency_s is not None else None)
    if kind:
        a["openinference.span.kind"] = kind
    body = e.data.get("content") if content and isinstance(e.data.get("content"), dict) else None
    if e.kind == "llm":
        a.update(_llm(e, body))
    elif e.kind == "tool":
        a.update(_tool(e, body))
    elif e.kind in ("sira", "retrieval"):
        a.update(_retrieval(e))
    elif e.kind == "rerank":
        a.update(_rerank(e))
    if e.kind != "llm":
        a.update(usage_attributes(e.usage, "sleuth.usage"))
    data = {k: v for k, v in e.data.items() if k != "content"}
    a.update({"sleuth.kind": e.kind, "sleuth.step": e.step, "sleuth.node": e.node, "sleuth.name": e.name})
    a.update({"sleuth.args": e.args, "sleuth.result_chars": e.result_chars, "sleuth.preview": e.preview})
    a.update({"sleuth.latency_s": e.latency_s, "sleuth.data": data, "sleuth.error": e.error})
    if e.error:
        m = _ERROR_TYPE.match(e.error)
        a["error.type"] = m.group(1) if m else "_OTHER"
    return clean(a)


def _llm(e: TraceEvent, body: dict[str, Any] | None) -> Attrs:
    args, data = e.args, e.data
    model, provider = args.get("model"), _provider(args)
    a: Attrs = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model}
    for key, attr in (("temperature", "temperature"), ("max_tokens", "max_tokens"), ("top_p", "top_p"),
                      ("seed", "seed"), ("stop", "stop_sequences")):
        if args.get(key) is not None:
            a[f"gen_ai.request.{attr}"] = args[key]
    a["gen_ai.response.model"] = data.get("response_model")
    a["gen_ai.response.id"] = data.get("response_id")
    if data.get("finish_reason"):
        a["gen_ai.response.finish_reasons"] = [str(data["finish_reason"])]
    a.update(_server(args.get("server")))
    a.update(usage_attributes(e.usage))
    a.update({"llm.model_name": data.get("response_model") or model, "llm.provider": provider, "llm.system": provider})
    params = {k: args[k] for k in ("temperature", "max_tokens", "top_p", "seed", "stop") if args.get(k) is not None}
    a["llm.invocation_parameters"] = as_json(params) if params else None
    if e.usage is not None:
        a["llm.token_count.prompt"] = e.usage.prompt_tokens
        a["llm.token_count.completion"] = e.usage.completion_tokens
        a["llm.token_count.total"] = e.usage.total_tokens
        if e.usage.calls and e.usage.cost_complete:
            a["llm.cost.total"] = float(e.usage.cost_usd)
    if body is not None:
        a.update(_messages(body.get("input") or [], body.get("output")))
    return a


def _server(url: Any) -> Attrs:
    if not isinstance(url, str) or not url:
        return {}
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    return {"server.address": parts.hostname, "server.port": port}


def _calls(msg: dict[str, Any]) -> list[dict[str, Any]]:
    calls = msg.get("tool_calls")
    return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else as_json(content)


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def _parts(msg: dict[str, Any]) -> list[dict[str, Any]]:
    """One OpenAI-style message as the GenAI conventions' message parts."""
    parts: list[dict[str, Any]] = []
    if msg.get("role") == "tool":
        return [{"type": "tool_call_response", "id": msg.get("tool_call_id"), "response": _text(msg.get("content"))}]
    text = _text(msg.get("content"))
    if text:
        parts.append({"type": "text", "content": text})
    for c in _calls(msg):
        fn = c.get("function") or {}
        parts.append({"type": "tool_call", "id": c.get("id"), "name": fn.get("name"),
                      "arguments": _arguments(fn.get("arguments"))})
    return parts


def _oi_message(prefix: str, msg: dict[str, Any]) -> Attrs:
    a: Attrs = {f"{prefix}.message.role": msg.get("role"), f"{prefix}.message.content": _text(msg.get("content"))}
    if msg.get("tool_call_id"):
        a[f"{prefix}.message.tool_call_id"] = msg["tool_call_id"]
    if msg.get("name") and msg.get("role") == "tool":
        a[f"{prefix}.message.name"] = msg["name"]
    for j, c in enumerate(_calls(msg)):
        fn = c.get("function") or {}
        tc = f"{prefix}.message.tool_calls.{j}.tool_call"
        a.update({f"{tc}.id": c.get("id"), f"{tc}.function.name": fn.get("name"),
                  f"{tc}.function.arguments": fn.get("arguments")})
    return a


def _messages(inputs: list[Any], output: Any) -> Attrs:
    msgs = [m for m in inputs if isinstance(m, dict)]
    a: Attrs = {"gen_ai.input.messages": as_json([{"role": m.get("role"), "parts": _parts(m)} for m in msgs])}
    for i, m in enumerate(msgs):
        a.update(_oi_message(f"llm.input_messages.{i}", m))
    a["input.value"], a["input.mime_type"] = as_json(msgs), "application/json"
    if isinstance(output, dict):
        a["gen_ai.output.messages"] = as_json([{"role": "assistant", "parts": _parts(output)}])
        a.update(_oi_message("llm.output_messages.0", {"role": "assistant", **output}))
        text, calls = _text(output.get("content")), _calls(output)
        if calls and not text:
            a["output.value"], a["output.mime_type"] = as_json(calls), "application/json"
        else:
            a["output.value"], a["output.mime_type"] = text, "text/plain"
    return a


def _tool(e: TraceEvent, body: dict[str, Any] | None) -> Attrs:
    call_id = e.data.get("call_id")
    a: Attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": e.name, "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": call_id, "tool.name": e.name, "tool.id": call_id,
                "input.value": as_json(e.args), "input.mime_type": "application/json"}
    if body is not None:
        a["gen_ai.tool.call.arguments"] = as_json(e.args)
        if isinstance(body.get("result"), str):
            a["gen_ai.tool.call.result"] = body["result"]
            a["output.value"], a["output.mime_type"] = body["result"], "text/plain"
    return a


def _documents(prefix: str, hits: Any) -> Attrs:
    """The hits (doc ids and scores, no text) as OpenInference documents, and as the span's output."""
    a: Attrs = {}
    if isinstance(hits, list) and hits:
        a["output.value"], a["output.mime_type"] = as_json(hits), "application/json"
    for i, h in enumerate(hits if isinstance(hits, list) else []):
        if isinstance(h, dict) and isinstance(h.get("doc_id"), str):
            a[f"{prefix}.{i}.document.id"] = h["doc_id"]
            if isinstance(h.get("score"), int | float):
                a[f"{prefix}.{i}.document.score"] = float(h["score"])
    return a


def _retrieval(e: TraceEvent) -> Attrs:
    query = e.args.get("query")
    a: Attrs = {"gen_ai.operation.name": "retrieval", "gen_ai.retrieval.query.text": query,
                "input.value": query, "input.mime_type": "text/plain"}
    a.update(_documents("retrieval.documents", e.data.get("hits")))
    return a


def _rerank(e: TraceEvent) -> Attrs:
    a: Attrs = {"reranker.query": e.args.get("query"), "reranker.model_name": e.name,
                "input.value": e.args.get("query"), "input.mime_type": "text/plain"}
    a.update(_documents("reranker.output_documents", e.data.get("hits")))
    return a


def _value(v: Any) -> Any:
    """An OpenTelemetry attribute value: bool/int/float/str, a list of str, else JSON text."""
    if isinstance(v, bool | str):
        return v
    if isinstance(v, int):
        return v if -(2**63) <= v < 2**63 else str(v)
    if isinstance(v, float):
        return v if v == v and v not in (float("inf"), float("-inf")) else str(v)
    if isinstance(v, list) and v and all(isinstance(x, str) for x in v):
        return list(v)
    return as_json(v)


def clean(attrs: Attrs) -> Attrs:
    """Drop empty values (None, "", {}, []); make the rest valid attribute values."""
    return {k: _value(v) for k, v in attrs.items()
            if v is not None and not (isinstance(v, str | dict | list) and not v)}
