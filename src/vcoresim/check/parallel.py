"""``--workers N``: the frontier search (engine/strategies/frontier.py) on N processes.

Each worker is a forked process holding an ``Explorer`` (it inherits the
program: generators and closures do not pickle) and its copy of the visited
set; the coordinator in this process sends it batches over a pipe and reads
back what it explored, claimed and left.  ``--ray`` runs the same explorers
as Ray actors (check/ray_backend.py); with one worker the search runs in this
process.  Workers ignore Ctrl-C (the coordinator stops them), exit when
their pipe closes and die with the coordinator (``PR_SET_PDEATHSIG``), so
they never outlive it.  A budget or Ctrl-C ends the search with a checkpoint
(kind ``parallel``: the pending items, the visited set) that resumes it.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import signal
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from multiprocessing.connection import Connection, wait
from typing import Any

from vcoresim.engine.strategies.base import Bounds, Exploration, Progress
from vcoresim.engine.strategies.frontier import Backend, Batch, BatchResult, Explorer, InlineBackend, frontier_search
from vcoresim.engine.world import Program


class ProcessBackend:
    """``workers`` forked processes, one pipe each."""

    def __init__(self, program: Program, bounds: Bounds, workers: int) -> None:
        ctx = mp.get_context("fork")
        self.workers = workers
        self.conns: list[Connection] = []
        self.procs: list[Any] = []
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_serve, args=(program, bounds, theirs, mine), daemon=True)
            proc.start()
            theirs.close()
            self.conns.append(mine)
            self.procs.append(proc)

    def submit(self, worker: int, batch: Batch) -> None:
        self.conns[worker].send(batch)

    def results(self, timeout: float) -> list[tuple[int, BatchResult]]:
        out = []
        for conn in wait(self.conns, timeout):
            w = self.conns.index(conn)  # type: ignore[arg-type]
            try:
                kind, value = conn.recv()  # type: ignore[union-attr]
            except EOFError:
                raise RuntimeError(f"--workers: worker {w} (pid {self.procs[w].pid}) died") from None
            if kind == "error":
                raise value
            out.append((w, value))
        return out

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
        for proc in self.procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs:
            proc.join()


def worker_signals() -> None:
    """In a worker process: Ctrl-C is the parent's to handle (the terminal sends it
    to the whole process group), SIGTERM kills, and the worker dies with its
    parent (Linux ``PR_SET_PDEATHSIG``), so no worker outlives it or keeps its
    output open."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(1)


def _serve(program: Program, bounds: Bounds, conn: Connection, parents: Connection) -> None:
    """A worker: run each batch the pipe brings, send back its result (or the model's error)."""
    worker_signals()
    parents.close()  # the coordinator's end, inherited by the fork: else EOF never comes
    explorer = Explorer(program, bounds)
    # A thread keeps the pipe drained: the coordinator queues a second batch
    # while this one runs, and neither side may block the other on a full pipe.
    inbox: queue.Queue[Batch | None] = queue.Queue()

    def pump() -> None:
        while True:
            try:
                inbox.put(conn.recv())
            except (EOFError, OSError):
                inbox.put(None)
                return

    threading.Thread(target=pump, daemon=True).start()
    while True:
        batch = inbox.get()
        if batch is None:
            return
        try:
            out: tuple[str, Any] = ("result", explorer.run(batch))
        except Exception as e:  # noqa: BLE001 - a model error ends the search in the coordinator
            out = ("error", e)
        try:
            conn.send(out)
        except (BrokenPipeError, OSError):  # the coordinator is gone or closed the pipe: nothing to report to
            return


def parallel_search(
    program: Program,
    bounds: Bounds,
    workers: int,
    *,
    ray: str | None = None,
    progress: Progress | None = None,
    stop: Callable[[], bool] | None = None,
    resume: dict[str, Any] | None = None,
    finals: bool = False,
    shield: Callable[[], AbstractContextManager[Any]] | None = None,
) -> Exploration:
    """The frontier search on ``workers`` processes, on Ray (``ray``: ``auto``
    or an address; ``workers`` Ray workers, 0: one per CPU of the cluster),
    or, for one worker, in this process."""
    backend: Backend
    label: dict[str, Any] = {}
    if ray is not None:
        from vcoresim.check.ray_backend import RayBackend

        backend = RayBackend(ray, program.name, program.config, bounds, workers or None, stop=stop)
        label["ray"] = ray
    elif workers > 1:
        backend = ProcessBackend(program, bounds, workers)
    else:
        backend = InlineBackend(program, bounds)
    return frontier_search(program, bounds, backend, progress=progress, stop=stop, resume=resume, label=label, finals=finals, shield=shield)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
