"""Ray, for batch work that outgrows one machine (the ``ray`` extra): connecting to a cluster or starting a local
one for a job, and stopping what was started.

``address``: ``"local"`` starts a Ray instance on this machine for the job (loopback only, no dashboard, its files
in a temporary folder) and stops it after; ``"auto"`` joins the cluster ``ray start`` runs here (``RAY_ADDRESS``);
``host:port`` or ``ray://host:port`` joins that one, after a TCP check that fails within seconds (Ray's own
connection attempt can wait for minutes). Workers get sleuth's environment (``SLEUTH_*``, ``HF_*``) so that they
find the same model server, caches and home; the corpus, index and model travel as paths and names, never as
pickled clients, so the corpus must be reachable at the same path on every node.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sleuth.errors import ClusterError, MissingExtraError

CHECK_TIMEOUT_S = 5.0
ENV_PREFIXES = ("SLEUTH_", "HF_", "TRANSFORMERS_", "OPENAI_", "ANTHROPIC_", "OTEL_")


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise MissingExtraError("ray", "ray", "--ray (batch work on a Ray cluster)") from None
    return ray


def _host_port(address: str) -> tuple[str, int] | None:
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_reachable(address: str, timeout_s: float = CHECK_TIMEOUT_S) -> None:
    """Raise :class:`ClusterError` unless something accepts TCP connections at ``address`` within ``timeout_s``."""
    hp = _host_port(address)
    if hp is None:
        raise ClusterError(f"not a Ray address: {address!r}",
                           hint="use local, auto, HOST:PORT (the GCS port, 6379 by default) or ray://HOST:PORT")
    try:
        with socket.create_connection(hp, timeout=timeout_s):
            pass
    except OSError as e:
        raise ClusterError(f"no Ray cluster answers at {address} within {timeout_s:g} s ({e.strerror or e})") from None


def connect(address: str) -> Any:
    """Ray, connected to ``address`` for the rest of this process (a tool called at every agent step joins once;
    ``local`` starts an instance that lives as long as the process). Already connected: as it is."""
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": worker_env()},
                 configure_logging=False)
        return ray
    if address != "auto":
        check_reachable(address)
    try:
        ray.init(address=address, log_to_driver=False, runtime_env={"env_vars": worker_env()}, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ClusterError(f"could not join the Ray cluster at {address}: {e}") from None
    return ray


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(ENV_PREFIXES)}


@contextmanager
def ray_cluster(address: str, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Connected to ``address`` (see the module) for the block; a local instance started here is stopped after."""
    ray = import_ray()
    if ray.is_initialized():  # the caller runs Ray already (a notebook, a test): use it as it is
        yield ray
        return
    runtime_env = {"env_vars": worker_env()}
    temp_dir = None
    try:
        if address == "local":
            temp_dir = tempfile.mkdtemp(prefix="sleuth-ray-", dir="/tmp" if os.path.isdir("/tmp") else None)
            ray.init(num_cpus=num_cpus, include_dashboard=False, log_to_driver=False, _temp_dir=temp_dir,
                     runtime_env=runtime_env, configure_logging=False)
        else:
            if address != "auto":
                check_reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, runtime_env=runtime_env, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise ClusterError(f"could not join the Ray cluster at {address}: {e}") from None
        yield ray
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def actor_map(ray: Any, actor_cls: type, init_args: tuple[Any, ...], items: list[Any], workers: int,
              on_done: Callable[[Any, Any], None], on_error: Callable[[Any, BaseException], None], *,
              cpus_per_worker: float = 1.0, max_restarts: int = 2,
              on_started: Callable[[list[Any]], None] | None = None) -> None:
    """Each item through ``actor.run(item)`` on ``workers`` actors of ``actor_cls(*init_args)``, one item in flight
    per actor (a dead actor loses only its own). ``on_done(item, result)`` / ``on_error(item, exception)`` run in
    this thread as each item ends, so the caller writes results in one place, as without Ray. A killed actor is
    restarted by Ray and its item run again (``max_restarts``); an actor dead for good is dropped, and when none
    is left :class:`ClusterError` says so (what is written stays, for a resume). ``on_started`` gets the actors'
    ``pid()`` when ``actor_cls`` has one (tests kill one)."""
    if not items:
        return
    remote_cls = ray.remote(num_cpus=cpus_per_worker, max_restarts=max_restarts,
                            max_task_retries=max_restarts)(actor_cls)
    actors = [remote_cls.remote(*init_args) for _ in range(min(workers, len(items)))]
    if on_started is not None:
        on_started(ray.get([a.pid.remote() for a in actors]))
    queue = iter(items)
    running: dict[Any, tuple[Any, Any]] = {}
    for actor in actors:
        item = next(queue, _END)
        if item is not _END:
            running[actor.run.remote(item)] = (actor, item)
    while running:
        ready, _ = ray.wait(list(running), num_returns=1)
        actor, item = running.pop(ready[0])
        try:
            result = ray.get(ready[0])
        except Exception as e:  # the item failed, or its actor died for good (or could not start)
            on_error(item, e)
            if isinstance(e, ray.exceptions.RayActorError):
                actors.remove(actor)
                if not actors:
                    raise ClusterError("every Ray worker died for good; what is not written yet is left for a "
                                       "resume", hint="see the workers' logs (`ray logs`), then run it again") from e
                continue
        else:
            on_done(item, result)
        nxt = next(queue, _END)
        if nxt is not _END:
            running[actor.run.remote(nxt)] = (actor, nxt)


_END = object()


class PidMixin:
    """``pid()`` for an actor class (which process serves it)."""

    def pid(self) -> int:
        return os.getpid()
