"""What the MCP server offers besides tools: the corpus's documents as resources, and prompts for sleuth's search
strategies (package data, ``sleuth/prompts/mcp_*.md``).

* Resources: every document is ``sleuth://doc/{id}`` (the doc id percent-encoded, ``/`` kept), listed by
  ``resources/list`` in pages of :data:`RESOURCE_PAGE` (the ``nextCursor`` is opaque), with the template in
  ``resources/templates/list``. The listing is the corpus's own (hidden files are never documents); a read goes
  through :meth:`~sleuth.corpus.Corpus.path_of`, exactly as the ``read`` tool does (no ``..``, no absolute path, no
  hidden file, no symlink out), and returns at most ``max_chars`` characters, with a note saying where it was cut.
  A bad URI, a refused or absent document is a JSON-RPC error (invalid params) with sleuth's message and hint.
* Prompts: ``answer`` (a question, and a strategy: react, iter-retgen or sira, sleuth's agents written as steps for
  the host's own model) and ``find-documents`` (a topic).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import codecs
from typing import Any
from urllib.parse import quote, unquote

from sleuth import prompts
from sleuth.errors import BinaryDocumentError, DocumentNotFoundError, SleuthError
from sleuth.integrations.mcp_calls import scrub_paths

DOC_SCHEME = "sleuth://doc/"
DOC_TEMPLATE = "sleuth://doc/{id}"
RESOURCE_PAGE = 100
MAX_URI_CHARS = 16_384
_SNIFF = 8192
_CHUNK = 1 << 16
MIME_TYPES = {".md": "text/markdown", ".markdown": "text/markdown", ".json": "application/json",
              ".jsonl": "application/jsonl", ".csv": "text/csv", ".html": "text/html", ".xml": "application/xml"}
STRATEGIES = {"react": "mcp_steps_react", "iter-retgen": "mcp_steps_iter_retgen", "sira": "mcp_steps_sira"}
STRATEGY_NAMES = {"react": "react (search, read, search again with what you learned)",
                  "iter-retgen": "iter-retgen (retrieve, write what you found, retrieve again with it)",
                  "sira": "sira (propose the answer's phrases, check them, one search)"}
DEFAULT_FIND_K = 10
MAX_PROMPT_ARG_CHARS = 10_000


def _invalid(message: str) -> Exception:
    import mcp_types as types
    from mcp.shared.exceptions import MCPError

    return MCPError(code=types.INVALID_PARAMS, message=scrub_paths(message))


def _sleuth_error(e: SleuthError) -> Exception:
    return _invalid(f"Error ({type(e).__name__}): {e.message}" + (f" (hint: {e.hint})" if e.hint else ""))


def doc_uri(doc_id: str) -> str:
    return DOC_SCHEME + quote(doc_id, safe="/")


def doc_id_of(uri: str) -> str:
    """The doc id a ``sleuth://doc/...`` URI names (percent-decoded); anything else is an invalid-params error."""
    if not isinstance(uri, str) or len(uri) > MAX_URI_CHARS:
        raise _invalid("not a sleuth resource URI (too long)")
    if not uri.startswith(DOC_SCHEME):
        raise _invalid(f"unknown resource {uri[:200]!r}; documents are {DOC_TEMPLATE}")
    raw = uri[len(DOC_SCHEME):].split("#", 1)[0]
    if "?" in raw:
        raise _invalid("a sleuth resource URI takes no query; documents are " + DOC_TEMPLATE)
    try:
        return unquote(raw, errors="strict") if raw else ""
    except UnicodeDecodeError:
        raise _invalid("the doc id in the URI is not UTF-8 once percent-decoded") from None


def mime_type(doc_id: str) -> str:
    dot = doc_id.rfind(".")
    return MIME_TYPES.get(doc_id[dot:].lower(), "text/plain") if dot > doc_id.rfind("/") else "text/plain"


def _cursor_after(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (UnicodeError, ValueError, binascii.Error):
        raise _invalid("bad cursor: pass back the nextCursor of the previous page") from None


def list_resources(corpus: Any, cursor: str | None, page: int = RESOURCE_PAGE) -> Any:
    import mcp_types as types

    after = _cursor_after(cursor)
    ids = corpus.doc_ids()
    start = bisect.bisect_right(ids, after) if after is not None else 0
    chunk = ids[start:start + page]
    resources = []
    for doc_id in chunk:
        try:
            size = (corpus.root / doc_id).stat().st_size
        except OSError:
            size = None
        resources.append(types.Resource(uri=doc_uri(doc_id), name=doc_id, mime_type=mime_type(doc_id), size=size))
    more = start + page < len(ids)
    next_cursor = base64.urlsafe_b64encode(chunk[-1].encode("utf-8")).decode("ascii") if more and chunk else None
    return types.ListResourcesResult(resources=resources, next_cursor=next_cursor)


def list_templates() -> Any:
    import mcp_types as types

    return types.ListResourceTemplatesResult(resource_templates=[types.ResourceTemplate(
        uri_template=DOC_TEMPLATE, name="document",
        description="A document of the corpus by doc id (its path relative to the corpus root, as the tools show it).",
    )])


def read_document(corpus: Any, doc_id: str, max_chars: int) -> tuple[str, bool, int]:
    """``(text, cut, size_bytes)``: at most ``max_chars`` characters of the document, streamed (memory stays
    bounded), confined to the corpus as the ``read`` tool is."""
    path = corpus.path_of(doc_id)  # the read tool's rule: PathOutsideCorpusError, DocumentNotFoundError
    try:
        size = path.stat().st_size
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DocumentNotFoundError(f"cannot open {doc_id!r} ({type(e).__name__})") from e
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    parts: list[str] = []
    n = 0
    with fh:
        data = fh.read(_SNIFF)
        if b"\x00" in data:
            raise BinaryDocumentError(f"{doc_id!r} is a binary file")
        while data and n <= max_chars:
            try:
                piece = decoder.decode(data)
            except UnicodeDecodeError as e:
                raise BinaryDocumentError(f"{doc_id!r} is not valid UTF-8") from e
            parts.append(piece)
            n += len(piece)
            data = fh.read(_CHUNK)
        cut = n > max_chars or bool(data)
    text = "".join(parts)
    return (text[:max_chars], True, size) if cut else (text, False, size)


def read_resource(corpus: Any, uri: str, max_chars: int) -> Any:
    import mcp_types as types

    doc_id = doc_id_of(uri)
    try:
        text, cut, size = read_document(corpus, doc_id, max_chars)
    except SleuthError as e:
        raise _sleuth_error(e) from None
    meta: dict[str, Any] = {"size_bytes": size}
    if cut:
        next_line = text.count("\n") + 1
        text += (f"\n[truncated: the first {len(text):,} characters of {size:,} bytes; read on with the read tool: "
                 f"doc_id={doc_id!r}, start_line={next_line}]")
        meta["truncated"] = True
    return types.ReadResourceResult(contents=[types.TextResourceContents(
        uri=doc_uri(doc_id), mime_type=mime_type(doc_id), text=text, _meta={"sleuth": meta})])


# --- prompts ---------------------------------------------------------------------------------------------------


def list_prompts() -> Any:
    import mcp_types as types

    return types.ListPromptsResult(prompts=[
        types.Prompt(
            name="answer",
            description="Answer a question from the documents with sleuth's tools, following one of sleuth's "
            "search strategies.",
            arguments=[
                types.PromptArgument(name="question", description="The question to answer.", required=True),
                types.PromptArgument(name="strategy", description="react (default), iter-retgen or sira: "
                                     "search step by step, retrieve-generate-retrieve, or one search with "
                                     "proposed evidence phrases.", required=False),
            ],
        ),
        types.Prompt(
            name="find-documents",
            description="List the documents about a topic, best first, with a line on each.",
            arguments=[
                types.PromptArgument(name="topic", description="What the documents should be about.", required=True),
                types.PromptArgument(name="k", description=f"At most this many (default {DEFAULT_FIND_K}).",
                                     required=False),
            ],
        ),
    ])


def get_prompt(name: str, arguments: dict[str, str] | None, tool_names: list[str]) -> Any:
    import mcp_types as types

    args = {k: (v or "").strip() for k, v in (arguments or {}).items()}
    if any(len(v) > MAX_PROMPT_ARG_CHARS for v in args.values()):
        raise _invalid(f"a prompt argument is longer than {MAX_PROMPT_ARG_CHARS:,} characters")
    tools = ", ".join(tool_names) or "none"
    if name == "answer":
        question = args.get("question", "")
        if not question:
            raise _invalid("the answer prompt needs a question")
        strategy = args.get("strategy") or "react"
        if strategy not in STRATEGIES:
            raise _invalid(f"unknown strategy {strategy[:80]!r}; use one of: {', '.join(STRATEGIES)}")
        text = prompts.load("mcp_answer").format(question=question, tools=tools, strategy=STRATEGY_NAMES[strategy],
                                                 steps=prompts.load(STRATEGIES[strategy]))
        description = f"Answer with the {strategy} strategy"
    elif name == "find-documents":
        topic = args.get("topic", "")
        if not topic:
            raise _invalid("the find-documents prompt needs a topic")
        k_text = args.get("k") or str(DEFAULT_FIND_K)
        if not k_text.isdigit() or not 1 <= int(k_text) <= 100:
            raise _invalid(f"k must be a whole number from 1 to 100, not {k_text[:40]!r}")
        text = prompts.load("mcp_find_documents").format(topic=topic, k=int(k_text), tools=tools)
        description = "Find the documents about a topic"
    else:
        raise _invalid(f"unknown prompt {str(name)[:80]!r}; prompts: answer, find-documents")
    return types.GetPromptResult(description=description, messages=[
        types.PromptMessage(role="user", content=types.TextContent(text=text))])
