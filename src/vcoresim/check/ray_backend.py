"""``--ray auto|ADDRESS``: swarm runs and the frontier search on Ray.

Optional: ``pip install 'vcoresim[ray]'``.  ``auto`` joins the cluster Ray
finds (``RAY_ADDRESS`` or a local ``ray start``) or, if there is none,
starts a local instance; ``ADDRESS`` joins that cluster (``HOST:PORT`` or
``ray://HOST:PORT``).

The exhaustive search is the ``--workers`` one (check/parallel.py) with Ray
actors as its workers: each actor receives the scenario name and effective
configuration (not the program: generators do not pickle), rebuilds the
program and serves batches of the frontier search.  A visited set shared
between processes prunes only if they compute the same fingerprints for the
same state; the result says ``fingerprints_agree: false`` when they do not
(sound, but states are then explored once per process that meets them).
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.frontier import Batch, BatchResult, Explorer


class RayUnavailable(Exception):
    pass


def connect(address: str) -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray: Ray is not installed (pip install 'vcoresim[ray]')") from None
    if not ray.is_initialized():
        # String hashes then agree between the workers Ray starts (the fingerprint hashes names).
        env = {"env_vars": {"PYTHONHASHSEED": "0"}}
        if address == "auto":
            try:
                ray.init(address="auto", logging_level="ERROR", log_to_driver=False, runtime_env=env)
            except (ConnectionError, RuntimeError):
                ray.init(logging_level="ERROR", log_to_driver=False, include_dashboard=False, runtime_env=env)
        else:
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False, runtime_env=env)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise RayUnavailable(f"--ray: cannot join the Ray cluster at {address}: {e}") from None
    return ray


class RayExplorer:
    """A frontier-search worker as a Ray actor (one process, its own visited set)."""

    def __init__(self, scenario: str, config: dict[str, Any], bounds: Bounds) -> None:
        from vcoresim.scenarios.registry import program_for

        self.explorer = Explorer(program_for(scenario, config), bounds)

    def run(self, batch: Batch) -> BatchResult:
        return self.explorer.run(batch)


class RayBackend:
    """``workers`` Ray actors (default: one per CPU of the cluster)."""

    def __init__(self, address: str, scenario: str, config: dict[str, Any], bounds: Bounds, workers: int | None = None) -> None:
        self.ray = ray = connect(address)
        cpus = max(int(ray.cluster_resources().get("CPU", 1)), 1)
        self.workers = workers or cpus
        # More workers than CPUs share them (else the extra actors would never start).
        actor = ray.remote(num_cpus=min(1.0, cpus / self.workers))(RayExplorer)
        self.actors = [actor.remote(scenario, config, bounds) for _ in range(self.workers)]
        self.running: dict[Any, int] = {}

    def submit(self, worker: int, batch: Batch) -> None:
        self.running[self.actors[worker].run.remote(batch)] = worker

    def results(self, timeout: float) -> list[tuple[int, BatchResult]]:
        if not self.running:
            return []
        ready, _ = self.ray.wait(list(self.running), num_returns=1, timeout=timeout)
        return [(self.running.pop(ref), self.ray.get(ref)) for ref in ready]

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.running.clear()
