"""``--ray auto|ADDRESS``: swarm runs and the frontier search on Ray.

Optional: ``pip install 'vcoresim[ray]'``.  ``auto`` joins the cluster
``RAY_ADDRESS`` names or, without it, starts a local instance of its own
(never another run's); ``ADDRESS`` joins that cluster (``HOST:PORT`` or
``ray://HOST:PORT``).

The exhaustive search is the ``--workers`` one (check/parallel.py) with Ray
actors as its workers: each actor receives the scenario name and effective
configuration (not the program: generators do not pickle), rebuilds the
program and serves batches of the frontier search.  The workers share the
visited set: fingerprints are the same in every process, whatever its hash
seed (engine/stable.py; tests/test_parallel.py checks it).  Should a state
identity ever differ between processes, the result says
``fingerprints_agree: false`` (sound, but states are then explored once per
process that meets them).
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.frontier import Batch, BatchResult, Explorer
from vcoresim.errors import InputError
from vcoresim.files import excerpt, one_line

#: How long ``--ray ADDRESS`` waits for a TCP connection to the address (seconds).
RAY_PROBE_SECONDS = 5.0
#: How long ``--ray`` waits for ``ray.init`` to join (or, for ``auto``, start) a cluster.
RAY_CONNECT_SECONDS = 60.0


class RayUnavailable(InputError):
    """``--ray``: Ray is not installed or no cluster answers at the address (one line).
    ``stuck``: a connection attempt is still running in a helper thread (the process
    should exit without waiting for it)."""

    def __init__(self, message: str, stuck: bool = False) -> None:
        super().__init__(message)
        self.stuck = stuck


def _host_port(address: str) -> tuple[str, int] | None:
    a = address.removeprefix("ray://")
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def connect(address: str, *, stop: Callable[[], bool] | None = None, timeout: float = RAY_CONNECT_SECONDS) -> Any:
    """Join the Ray cluster at ``address`` (``auto``: ``RAY_ADDRESS``'s, else a local
    instance of this process's own).  Gives up with ``RayUnavailable`` when nothing listens at the address
    (``RAY_PROBE_SECONDS``) or Ray has not connected within ``timeout`` seconds;
    ``stop`` (Ctrl-C, SIGTERM) is polled while waiting (it raises ``KeyboardInterrupt``).
    For an address, ``ray.init`` runs in a helper thread, since it blocks
    signals while it retries; ``auto`` runs it in this thread (below)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--ray: Ray is not installed (pip install 'vcoresim[ray]')") from None
    if ray.is_initialized():
        return ray
    shown = excerpt(address, 80)
    if address != "auto":
        hp = _host_port(address)
        if hp is None:
            raise RayUnavailable(f"--ray: {shown} is not auto, HOST:PORT or ray://HOST:PORT")
        try:
            socket.create_connection(hp, timeout=RAY_PROBE_SECONDS).close()
        except OSError as e:
            raise RayUnavailable(f"--ray: no Ray cluster at {shown}: {e.strerror or e} (waited at most {RAY_PROBE_SECONDS:g} s)") from None
    outcome: dict[str, BaseException | None] = {}

    def init() -> None:
        try:
            # (No fixed PYTHONHASHSEED for the workers: fingerprints are the same
            # in every process, engine/stable.py.)
            if address == "auto" and os.environ.get("RAY_ADDRESS"):
                ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
            elif address == "auto":
                # A local instance of this run's own: Ray's own "auto" would join
                # any instance on the machine, another run's included, whose
                # end kills this run's actors.
                ray.init(address="local", logging_level="ERROR", log_to_driver=False, include_dashboard=False)
            else:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            outcome["error"] = None
        except BaseException as e:  # reported in the caller's thread
            outcome["error"] = e

    # Ray's C++ client logs its retries straight to file descriptor 2: keep them
    # out of the one-line error (and the terminal) while it connects.
    sys.stderr.flush()
    saved = os.dup(2)
    sink = tempfile.TemporaryFile()
    os.dup2(sink.fileno(), 2)
    try:
        if address == "auto":
            # Joining a local cluster, or starting one, needs no timeout; and Ray
            # (2.60 at least) must be initialised in the main thread: a driver
            # initialised in a helper thread loses the cluster (its GCS client
            # gives up after 60 s) at the first call from the main thread.
            init()
        t = threading.Thread(target=init, name="vcoresim-ray-init", daemon=True)
        if address != "auto":
            t.start()
        deadline = time.monotonic() + timeout
        while t.is_alive():
            t.join(0.2)
            if stop is not None and stop():
                raise KeyboardInterrupt
            if time.monotonic() > deadline:
                raise RayUnavailable(f"--ray: no Ray cluster answered at {shown} within {timeout:g} s", stuck=True)
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        sink.close()
    e = outcome.get("error")
    if e is not None:
        raise RayUnavailable(f"--ray: cannot join the Ray cluster at {shown}: {one_line(str(e), 160)}") from None
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

    def __init__(self, address: str, scenario: str, config: dict[str, Any], bounds: Bounds, workers: int | None = None, stop: Callable[[], bool] | None = None) -> None:
        self.ray = ray = connect(address, stop=stop)
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
