"""Options and resolution shared by the command modules: the corpus (no implicit default), the model and the
server it is reached at (``--model``, ``--api-base``, ``--api-key-env``), and whether a command may write an
index into a folder. Cheap to import: heavy modules are imported inside the functions."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

CORPUS_OPTION = typer.Option(
    None, "--corpus", "-c", help="The corpus folder (default: $SLEUTH_CORPUS, else [corpus] path in config.toml)."
)
STATE_DIR_OPTION = typer.Option(
    None, "--state-dir", help="Keep (or find) the indexes here instead of CORPUS/.sleuth (e.g. for a read-only corpus)."
)
BUILD_INDEX_OPTION = typer.Option(
    False, "--index", help="Build a missing index into a folder that has none yet (without it: an error, or a "
    "question on a terminal)."
)
API_BASE_OPTION = typer.Option(
    None, "--api-base", help="URL of an OpenAI-compatible server for --model (vLLM, llama.cpp, Ollama), e.g. "
    "http://127.0.0.1:8000/v1 (default: $SLEUTH_API_BASE, else config.toml)."
)
API_KEY_ENV_OPTION = typer.Option(
    None, "--api-key-env", help="Name of the environment variable holding the server's API key (default: "
    "$SLEUTH_API_KEY_ENV, else config.toml, else the provider's own, e.g. OPENAI_API_KEY; none for a keyless server)."
)
ITER_RETGEN_ANSWER_OPTION = typer.Option(
    None, "--iter-retgen-answer", help="How iter-retgen answers: last-generation (default; the paper's form as "
    "FlashRAG runs it: the T-th generation is the answer, no citations) or separate-call (sleuth's earlier form: a "
    "JSON answer call over the last passages and draft, citing doc ids)."
)
ITER_RETGEN_STEPS_OPTION = typer.Option(
    None, "--iter-retgen-steps", min=1, help="Iter-RetGen's T: retrieve-generate rounds (default 3, the paper's)."
)
CHUNK_SIZE_OPTION = typer.Option(
    None, "--chunk-size", help="Passage size in characters (default 1000: sized for MiniLM's 256-piece window)."
)
CHUNK_OVERLAP_OPTION = typer.Option(None, "--chunk-overlap", help="Passage overlap in characters (default 0).")


def chunking(size: int | None, overlap: int | None) -> dict[str, int] | None:
    """``--chunk-size``/``--chunk-overlap`` as the ``chunking`` option of the retrievers (None: the defaults)."""
    if size is None and overlap is None:
        return None
    from sleuth.retrieval.chunking import DEFAULT_OVERLAP, DEFAULT_SIZE

    return {"size": DEFAULT_SIZE if size is None else size, "overlap": DEFAULT_OVERLAP if overlap is None else overlap}


RERANK_OPT_OPTION = typer.Option(
    None, "--rerank-opt", help="A reranker option KEY=VALUE (repeatable), e.g. variant=sleuth-best, "
    "fallback=listwise, window=10, prompt=single-turn; values are read as JSON where they parse (10, true), else as "
    "text."
)


def parse_options(pairs: list[str] | None, flag: str = "--rerank-opt") -> dict[str, Any]:
    """``["variant=sleuth-best", "window=10"]`` -> ``{"variant": "sleuth-best", "window": 10}``."""
    import json

    from sleuth.errors import ConfigError

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag} {pair!r} is not KEY=VALUE", hint=f"e.g. {flag} variant=sleuth-best")
        try:
            value: Any = json.loads(raw)
        except ValueError:
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def resolve_corpus(path: Path | None) -> Path:
    """``--corpus`` > ``SLEUTH_CORPUS`` > ``[corpus] path``; never the current folder by accident."""
    if path is not None:
        return path
    from sleuth.config import default_corpus
    from sleuth.errors import ConfigError

    found = default_corpus()
    if found is None:
        raise ConfigError("no corpus given", hint="pass --corpus DIR (or set SLEUTH_CORPUS, or [corpus] path in "
                          "config.toml); `sleuth corpus import SRC DEST` creates one")
    return found


def open_corpus(path: Path | None, state_dir: Path | None = None) -> Any:
    from sleuth.corpus import Corpus

    return Corpus(resolve_corpus(path), state_dir=state_dir)


def state_dir_of(corpus: Any, state_dir: Path | None) -> Path:
    from sleuth.corpus import STATE_DIRNAME

    return Path(state_dir).resolve() if state_dir else corpus.root / STATE_DIRNAME


def _interactive(as_json: bool) -> bool:
    return not as_json and sys.stdin.isatty() and sys.stderr.isatty()


def allow_index_build(corpus: Any, state_dir: Path | None, build: bool, as_json: bool) -> None:
    """Refuse to create an index folder in a folder that has none yet unless asked (``--index`` or yes to a
    question on a terminal); a read-only corpus gets told where else to build one. An indexed corpus (its
    state folder exists: built or imported before) is fine: its indexes are kept up to date there."""
    import os

    from sleuth.errors import IndexMissingError

    target = state_dir_of(corpus, state_dir)
    if target.is_dir():
        return
    parent = next((p for p in target.parents if p.exists()), corpus.root)
    if not os.access(parent, os.W_OK):
        raise IndexMissingError(
            f"{corpus.root} has no index and {parent} is read-only",
            hint=f"build one elsewhere: `sleuth index {corpus.root} --state-dir DIR`, then pass --state-dir DIR",
        )
    if build or state_dir is not None:  # asked for, or a folder named for it
        return
    if _interactive(as_json):
        if typer.confirm(f"{corpus.root} has no index yet. Build one in {target}?", default=False, err=True):
            return
        raise IndexMissingError(f"{corpus.root} has no index (not built)",
                                hint=f"`sleuth index {corpus.root}` builds one, or pass --index")
    raise IndexMissingError(
        f"{corpus.root} has no index yet, and sleuth writes {target} only when asked",
        hint=f"run `sleuth index {corpus.root}` first, or pass --index (or --state-dir DIR to keep it elsewhere)",
    )


def get_model(model: str | None, api_base: str | None = None, api_key_env: str | None = None, **kw: Any) -> Any:
    """The chat model for ``--model``/``--api-base``/``--api-key-env`` (order: flag > environment > config)."""
    from sleuth.llm import get_model as _get

    return _get(model, api_base=api_base, api_key_env=api_key_env, **kw)


def cli_progress(as_json: bool, quiet: bool = False) -> bool:
    """Progress of long jobs goes to stderr, so it is on for people and for ``--json`` alike (stdout stays one
    JSON object); ``--quiet`` turns it off. On a terminal it is a bar, otherwise a plain line now and then."""
    return not quiet
