"""A sharded BM25 index whose shards are served by Ray actors (``serve_on_ray``; ``sleuth search --ray``), so that
a cluster holds postings no single machine holds. Each actor opens its shard from its path (the index must be at
the same path on every node, a shared file system) and answers the query methods the sharded index fans out to
(:class:`~sleuth.retrieval.bm25_shards.ShardedBM25Index`): the same calls, the same results, over the network.
The driver keeps the global statistics (vocabulary, document frequencies, the bigram keys) and merges.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from sleuth.cluster import PidMixin
from sleuth.retrieval.bm25 import BM25Index


class _ShardActor(PidMixin):
    """One shard on a Ray worker."""

    def __init__(self, folder: str, vocab_file: str) -> None:
        from sleuth.retrieval.df import DocFrequency

        vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        self.shard = BM25Index.load(folder, vocab=vocab)
        self.shard._resolved()
        self.df = DocFrequency(self.shard)

    def info(self) -> dict[str, Any]:
        return {"n_docs": self.shard.n_docs, "doc_ids": self.shard.doc_ids}

    def topk_ids(self, tok: np.ndarray, w: np.ndarray, k: int, mask: np.ndarray | None) -> Any:
        return self.shard.topk_ids(tok, w, k, mask)

    def tier_topk_keys(self, tok: np.ndarray, w: np.ndarray, keys: np.ndarray, bw: np.ndarray, k: int,
                       mask: np.ndarray | None) -> Any:
        return self.shard.tier_topk(tok, w, *local_bigrams(self.shard, keys, bw), k, mask)

    def score_vector(self, tok: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.shard.score_vector(tok, w)

    def tier_score_vector_keys(self, tok: np.ndarray, w: np.ndarray, keys: np.ndarray, bw: np.ndarray) -> np.ndarray:
        return self.shard.tier_score_vector(tok, w, *local_bigrams(self.shard, keys, bw))

    def text_of(self, i: int) -> str:
        return self.shard.text_of(i)

    def phrase_docs(self, ids: list[int]) -> int:
        return self.df._phrase_docs(self.shard, ids)


def local_bigrams(shard: BM25Index, keys: np.ndarray, bw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The shard's column ids of the global bigram ``keys`` it holds (with their weights), in query order."""
    tier = shard.bigrams
    if tier is None or not len(keys) or not len(tier):
        return np.zeros(0, np.int32), np.zeros(0, np.float32)
    at = np.searchsorted(tier.keys, keys)
    found = np.zeros(len(keys), dtype=bool)
    inside = at < len(tier)
    found[inside] = np.asarray(tier.keys[at[inside]]) == keys[inside]
    return at[found].astype(np.int32), np.asarray(bw)[found]


class RemoteShard:
    """Stands for a shard in :class:`ShardedBM25Index`: its query methods answered by its actor."""

    remote = True

    def __init__(self, ray: Any, actor: Any, folder: Path) -> None:
        self.ray, self.actor, self.path = ray, actor, folder
        info = ray.get(actor.info.remote())
        self.n_docs, self.doc_ids = int(info["n_docs"]), list(info["doc_ids"])
        self.corpus: Any = None

    def _resolved(self) -> None:
        return None

    def topk_ids(self, tok: np.ndarray, w: np.ndarray, k: int, mask: np.ndarray | None = None) -> Any:
        return self.ray.get(self.actor.topk_ids.remote(tok, w, k, mask))

    def tier_topk_keys(self, tok: np.ndarray, w: np.ndarray, keys: np.ndarray, bw: np.ndarray, k: int,
                       mask: np.ndarray | None = None) -> Any:
        return self.ray.get(self.actor.tier_topk_keys.remote(tok, w, keys, bw, k, mask))

    def score_vector(self, tok: np.ndarray, w: np.ndarray) -> np.ndarray:
        return self.ray.get(self.actor.score_vector.remote(tok, w))

    def tier_score_vector_keys(self, tok: np.ndarray, w: np.ndarray, keys: np.ndarray, bw: np.ndarray) -> np.ndarray:
        return self.ray.get(self.actor.tier_score_vector_keys.remote(tok, w, keys, bw))

    def text_of(self, i: int) -> str:
        return str(self.ray.get(self.actor.text_of.remote(i)))

    def phrase_docs(self, ids: list[int]) -> int:
        return int(self.ray.get(self.actor.phrase_docs.remote(list(ids))))


def serve_on_ray(index: Any, address: str = "auto") -> Any:
    """``index`` (a :class:`ShardedBM25Index`) with each shard served by a Ray actor at ``address``
    (:func:`sleuth.cluster.connect`); the local shards are dropped. Results are the local index's."""
    from sleuth.cluster import connect
    from sleuth.errors import ConfigError
    from sleuth.retrieval.bm25_shards import ROOT_FILES

    if not getattr(index, "sharded", False):
        raise ConfigError("only a sharded index is served on Ray",
                          hint="build it with `sleuth index CORPUS --shards N`")
    ray = connect(address)
    actor_cls = ray.remote(num_cpus=0, max_restarts=2, max_task_retries=2)(_ShardActor)
    vocab_file = str(index.path / ROOT_FILES["vocab"])
    folders = [Path(s.path) for s in index.shards]
    remote = [RemoteShard(ray, actor_cls.remote(str(f), vocab_file), f) for f in folders]
    if [r.n_docs for r in remote] != [s.n_docs for s in index.shards]:
        raise ConfigError("a Ray worker opened a shard other than the driver's (is the index at the same path on "
                          "every node?)")
    for r in remote:
        r.corpus = index.corpus
    index.shards = remote
    return index
