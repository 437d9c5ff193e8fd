"""The embedding step of a dense index on Ray workers (``sleuth index --dense --ray ADDRESS``): an
:class:`~sleuth.retrieval.embeddings.Embedder` whose ``embed`` sends batches of texts to actors that each load the
embedder named by ``spec`` (the model travels as its name, never as a pickled object). It has the wrapped
embedder's name, dimension and window, so the index it builds is the one the local path builds (the same vectors
in the same rows), and the index build itself (hashes, reuse of unchanged documents' vectors, the lock, the atomic
write) stays :func:`sleuth.retrieval.dense.build_dense_index`'s."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sleuth.cluster import PidMixin
from sleuth.retrieval.embeddings import Embedder, get_embedder

BATCH = 256


class _EmbedWorker(PidMixin):
    def __init__(self, spec: str | None) -> None:
        self.embedder = get_embedder(spec)

    def run(self, batch: tuple[int, list[str]]) -> tuple[int, np.ndarray]:
        start, texts = batch
        return start, np.asarray(self.embedder.embed(texts), dtype=np.float32)


class RayEmbedder:
    """``spec``'s embedder, its ``embed`` run on ``workers`` Ray actors at ``address`` (:mod:`sleuth.cluster`)."""

    def __init__(self, spec: str | None = None, address: str = "local", workers: int = 2, batch: int = BATCH,
                 local: Embedder | None = None) -> None:
        self.spec, self.address, self.workers, self.batch = spec, address, workers, batch
        self.local = local or get_embedder(spec)  # its name, dimension and window (and queries, embedded here)
        self.name, self.max_tokens = self.local.name, self.local.max_tokens

    @property
    def dim(self) -> int:
        return self.local.dim

    def embed(self, texts: Sequence[str], *, progress: bool | None = False) -> np.ndarray:
        from sleuth.cluster import actor_map, ray_cluster
        from sleuth.progress import progress_bar

        if len(texts) <= self.batch:  # one batch (a query): no cluster for it
            return self.local.embed(texts, progress=progress)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = [(i, list(texts[i: i + self.batch])) for i in range(0, len(texts), self.batch)]

        def failed(batch: tuple[int, list[str]], e: BaseException) -> None:
            raise e  # an embedding that failed fails the build: nothing is written

        with progress_bar(len(texts), f"embed on ray ({self.workers} workers)", progress) as bar, \
                ray_cluster(self.address, num_cpus=self.workers if self.address == "local" else None) as ray:

            def done(_batch: tuple[int, list[str]], result: tuple[int, np.ndarray]) -> None:
                start, vectors = result
                out[start: start + len(vectors)] = vectors
                bar.advance(len(vectors))

            actor_map(ray, _EmbedWorker, (self.spec,), batches, self.workers, done, failed)
        return out
