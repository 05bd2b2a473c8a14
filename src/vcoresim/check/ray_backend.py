"""``--ray auto|ADDRESS``: swarm runs and the partitioned exhaustive search on Ray.

Optional: ``pip install 'vcoresim[ray]'``.  ``auto`` joins the cluster Ray
finds (``RAY_ADDRESS`` or a local ``ray start``) or, if there is none,
starts a local instance; ``ADDRESS`` joins that cluster (``HOST:PORT`` or
``ray://HOST:PORT``).  Tasks receive the scenario name and its effective
configuration (not the program: generators do not pickle) and rebuild it.

The partitioned search is the ``--workers`` protocol (``parallel``) with Ray
tasks as workers: a task runs DPOR on a work item and gives pending branches
away (to a small ``Board`` actor) while other tasks could run; races into
another item's prefix come back as branch items.
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

from vcoresim.engine.runtime import Violation
from vcoresim.engine.strategies.base import Bounds, Budget, Exploration, Progress, Stats
from vcoresim.engine.strategies.dpor import _params
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
    """Join the Ray cluster at ``address`` (``auto``: the one Ray finds, else a local
    instance).  Gives up with ``RayUnavailable`` when nothing listens at the address
    (``RAY_PROBE_SECONDS``) or Ray has not connected within ``timeout`` seconds;
    ``stop`` (Ctrl-C, SIGTERM) is polled while waiting (it raises ``KeyboardInterrupt``).
    ``ray.init`` runs in a helper thread, since it blocks signals while it retries."""
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
            if address == "auto":
                try:
                    ray.init(address="auto", logging_level="ERROR", log_to_driver=False)
                except (ConnectionError, RuntimeError):
                    ray.init(logging_level="ERROR", log_to_driver=False, include_dashboard=False)
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
        t = threading.Thread(target=init, name="vcoresim-ray-init", daemon=True)
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


def partitioned_ray(address: str, scenario: str, config: dict[str, Any], bounds: Bounds, *, progress: Progress | None = None, stop: Callable[[], bool] | None = None) -> Exploration:
    ray = connect(address)
    from vcoresim.check.parallel import ROOT, _add, branch_items

    @ray.remote
    class Board:
        """Where running tasks leave the branches they give away."""

        def __init__(self) -> None:
            self.items: list[dict[str, Any]] = []
            self.hungry = 0

        def give(self, item: dict[str, Any]) -> None:
            self.items.append(item)

        def take(self) -> list[dict[str, Any]]:
            out, self.items = self.items, []
            return out

        def set_hungry(self, n: int) -> None:
            self.hungry = n

        def get_hungry(self) -> int:
            return self.hungry

    @ray.remote
    def run(item: dict[str, Any], board: Any) -> dict[str, Any]:
        from vcoresim.check.parallel import run_item
        from vcoresim.scenarios.registry import program_for

        polls = [0]

        def donate() -> bool:
            polls[0] += 1
            return polls[0] % 16 == 0 and ray.get(board.get_hungry.remote()) > 0  # an RPC: not every execution

        def give(it: dict[str, Any]) -> None:
            ray.get(board.give.remote(it))

        return run_item(program_for(scenario, config), {"max_steps": bounds.max_steps, "max_preemptions": bounds.max_preemptions}, item, donate, give)

    budget = Budget(bounds)
    slots = max(int(ray.cluster_resources().get("CPU", 1)), 1)
    board = Board.remote()
    total = Stats()
    issued: set[tuple[Any, ...]] = set()
    cut = False
    violation: Violation | None = None
    schedule: list[tuple[int, int]] | None = None
    running: dict[Any, dict[str, Any]] = {run.remote(ROOT, board): ROOT}
    queued: list[dict[str, Any]] = []
    n_items = 1
    complete = True
    while running and violation is None:
        ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
        queued.extend(ray.get(board.take.remote()))
        for ref in ready:
            item = running.pop(ref)
            out = ray.get(ref)
            _add(total, Stats(**out["stats"]))
            cut = cut or bool(out["cut"])
            if "violation" in out:
                v = out["violation"]
                violation = Violation(v["kind"], v["invariant"], v["message"], v["step"])
                schedule = [(q, alt) for q, alt in out["schedule"]]
                break
            queued.extend(branch_items(item, [(k, qs) for k, qs in out["prefix_backtracks"]], issued))
            if progress is not None:
                total.seconds = budget.elapsed()
                progress(total)
        while queued and len(running) < slots:
            it = queued.pop(0)
            running[run.remote(it, board)] = it
            n_items += 1
        board.set_hungry.remote(max(slots - len(running), 0))
        if (stop is not None and stop()) or budget.exhausted(total):
            complete = False
            break
    for ref in running:
        ray.cancel(ref, force=True)
    total.seconds = budget.elapsed()
    params = _params(True, False, cut) | {"ray": address, "work_items": n_items}
    return Exploration("exhaustive", violation, schedule, total, complete and violation is None, True, params)
