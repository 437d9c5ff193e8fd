"""Where an eval's questions run. The runner (:func:`sleuth.evals.runner.run_eval`) hands an executor the pending
questions and a ``write`` callback; whatever runs them, every finished question is written by the runner's
process, one row at a time, so the rows, resume semantics (a killed job loses at most the questions in flight)
and progress are the same.

* :class:`Threads` (the default): up to ``concurrency`` questions at once in this process.
* :class:`RayWorkers` (``--ray``): ``workers`` Ray actors, each building its own system and scorer from the run's
  options (:func:`sleuth.evals.build.worker_parts`: data, corpus and index opened from their paths, the model
  started for that worker; with ``--model local`` the workers of one machine share its one model server). A
  worker that dies is restarted by Ray and its question run again (``max_restarts``, ``max_task_retries``); a
  question that still fails is written as an error row, which ``--resume`` runs again.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Protocol

from sleuth.cluster import PidMixin
from sleuth.evals.datasets.base import EvalQuestion
from sleuth.evals.results import EvalRow
from sleuth.evals.scoring import Scorer
from sleuth.evals.systems import System
from sleuth.records import TraceEvent

Done = tuple[EvalRow, list[TraceEvent]]
Write = Callable[[Done], None]
RunOne = Callable[[System, Scorer, EvalQuestion], Done]


class Executor(Protocol):
    """Runs questions and hands each finished one to ``write`` (in the caller's thread)."""

    def describe(self) -> str: ...

    def run(self, pending: list[EvalQuestion], write: Write, run_one: RunOne) -> None: ...


class Threads:
    def __init__(self, system: System, scorer: Scorer, concurrency: int = 1) -> None:
        self.system, self.scorer, self.concurrency = system, scorer, concurrency

    def describe(self) -> str:
        return f"threads x{self.concurrency}"

    def run(self, pending: list[EvalQuestion], write: Write, run_one: RunOne) -> None:
        """Up to ``concurrency`` questions at once; each finished one is written before the next is submitted. On
        Ctrl-C the queued questions are cancelled and the interrupt propagates."""
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="sleuth-eval")
        interrupted = False
        try:
            queue = iter(pending)
            running: set[Future[Done]] = set()
            for q in queue:
                running.add(pool.submit(run_one, self.system, self.scorer, q))
                if len(running) >= self.concurrency:
                    break
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for f in finished:
                    write(f.result())
                    nxt = next(queue, None)
                    if nxt is not None:
                        running.add(pool.submit(run_one, self.system, self.scorer, nxt))
        except KeyboardInterrupt:
            interrupted = True
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=not interrupted, cancel_futures=True)


class _Worker(PidMixin):
    """One Ray actor: a system and a scorer built from a picklable ``build`` (never a pickled client)."""

    def __init__(self, build: Callable[[], tuple[System, Scorer]], run_one: RunOne) -> None:
        self.system, self.scorer = build()
        self.run_one = run_one

    def run(self, q: EvalQuestion) -> Done:
        return self.run_one(self.system, self.scorer, q)


class RayWorkers:
    """``workers`` Ray actors on the cluster at ``address`` (``local``, ``auto``, ``HOST:PORT``; :mod:`sleuth.cluster`).
    ``build()`` runs in each actor to make its system and scorer; it must be picklable (a module-level function
    and plain options: :func:`sleuth.evals.build.worker_parts` bound to the run's options)."""

    def __init__(self, build: Callable[[], tuple[System, Scorer]], address: str = "local", workers: int = 2,
                 cpus_per_worker: float = 1.0, on_started: Callable[[list[int]], None] | None = None) -> None:
        from sleuth.errors import ConfigError

        if workers < 1:
            raise ConfigError(f"--ray-workers must be at least 1, got {workers}")
        self.build, self.address, self.workers, self.cpus = build, address, workers, cpus_per_worker
        self.on_started = on_started  # the actors' pids once they are up (tests kill one)

    def describe(self) -> str:
        return f"ray {self.address} x{self.workers}"

    def run(self, pending: list[EvalQuestion], write: Write, run_one: RunOne) -> None:
        from sleuth.cluster import actor_map, ray_cluster

        if not pending:
            return

        def failed(q: EvalQuestion, e: BaseException) -> None:
            err = "".join(traceback.format_exception_only(e)).strip().splitlines()
            write((EvalRow(id=q.id, status="error", question=q.question, gold_answers=q.answers, seconds=0.0,
                           error=("ray worker: " + " ".join(err[-3:]))[:2000]), []))

        with ray_cluster(self.address, num_cpus=self.workers if self.address == "local" else None) as ray:
            actor_map(ray, _Worker, (self.build, run_one), pending, self.workers, lambda _q, done: write(done),
                      failed, cpus_per_worker=self.cpus, on_started=self.on_started)
