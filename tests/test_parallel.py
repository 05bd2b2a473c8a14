"""``--workers``: the frontier search on real processes gives the verdicts of
the serial search (the soundness of the search itself, with many simulated
workers and completion orders, is tested against the oracles in
test_frontier.py)."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path
from typing import Any

import pytest

from vcoresim.check.parallel import parallel_search
from vcoresim.engine import ops as O
from vcoresim.engine.runtime import ModelError
from vcoresim.engine.strategies.base import Bounds, run_schedule
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.strategies.frontier import InlineBackend, frontier_search
from vcoresim.engine.world import Body, Program, World
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import get_scenario


@pytest.mark.parametrize("name", ["lost-update", "peterson-broken", "lock-order", "peterson", "store-buffering"])
def test_workers_same_verdict_as_serial(name: str) -> None:
    prog = example_program(name)
    serial = exhaustive(prog, Bounds())
    par = parallel_search(prog, Bounds(), 2)
    assert (serial.violation is None) == (par.violation is None) and serial.complete == par.complete
    if serial.violation is not None:
        assert par.violation is not None and par.violation.name == serial.violation.name
        assert par.schedule is not None and run_schedule(prog, par.schedule).violation is not None
    assert par.params["search"] == "frontier" and par.params["workers"] == 2
    assert not mp.active_children()  # every worker is gone


@pytest.mark.parametrize("name", ["signal-entry-race@fixed", "signal-entry-race", "hmi-tb-resync@split2-fixed", "hmi-tb-resync@split2", "signal-entry-race@radix-nmi"])
def test_workers_kvm_same_verdict_as_serial(name: str) -> None:
    sc = get_scenario(name)
    prog = sc.make({})
    bounds = Bounds(sc.bounds.max_steps, sc.bounds.max_preemptions)
    serial = exhaustive(prog, bounds)
    par = parallel_search(prog, bounds, 2)
    assert (serial.violation is None) == (par.violation is None) and serial.complete == par.complete
    if serial.violation is not None:
        assert par.violation is not None and par.violation.name == serial.violation.name
    else:
        one = parallel_search(prog, bounds, 1)
        # The same states, however the work was split (the fingerprint is per process: forks agree).
        assert one.complete and one.stats.states == par.stats.states


def test_workers_cli_same_verdict(cli: Any, tmp_path: Path) -> None:
    one = cli("check", "example/lost-update", "--strategy", "exhaustive", "--json", "--trace-out", str(tmp_path / "a.json"))
    two = cli("check", "example/lost-update", "--strategy", "exhaustive", "--workers", "2", "--json", "--trace-out", str(tmp_path / "b.json"))
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert one.code == two.code == 1
    assert a["verdict"] == b["verdict"] == "violation" and a["invariant"] == b["invariant"]
    assert b["strategy"]["workers"] == 2 and b["strategy"]["search"] == "frontier"
    assert cli("replay", str(tmp_path / "b.json"), "--quiet").code == 0
    held = cli("check", "example/peterson", "--workers", "2", "--cache", "--json")
    doc = json.loads(held.stdout)
    assert held.code == 0 and doc["coverage"] == "complete" and doc["strategy"]["search"] == "frontier"


def test_workers_budget_writes_a_checkpoint_that_resumes(cli: Any, tmp_path: Path) -> None:
    cp = tmp_path / "c.json"
    part = cli("check", "signal-entry-race@fixed", "--strategy", "exhaustive", "--workers", "2", "--max-executions", "20", "--checkpoint", str(cp), "--json")
    assert part.code == 3 and json.loads(part.stdout)["coverage"] == "partial"
    state = json.loads(cp.read_text())["state"]["search"]
    assert state["kind"] == "parallel" and state["items"]
    for extra in ((), ("--workers", "2")):
        done = cli("check", "--resume", str(cp), "--json", "--checkpoint", str(tmp_path / "again.json"), *extra)
        doc = json.loads(done.stdout)
        assert done.code == 0 and doc["verdict"] == "holds" and doc["coverage"] == "complete"


def _broken() -> Program:
    def body() -> Body:
        yield O.Store("x", 1)
        yield "not an operation"  # type: ignore[misc]

    def build(w: World) -> None:
        w.loc("x", 0)
        w.spawn("P0", body())

    return Program("broken", build)


def test_model_error_in_a_worker_reaches_the_caller() -> None:
    with pytest.raises(ModelError, match="not an operation"):
        parallel_search(_broken(), Bounds(), 2)
    assert not mp.active_children()


# A seeded random walk on each program, printing the visited-set key
# (``state_key``, built on ``Execution.fingerprint``) of every state it meets.
_WALK = r"""
import json, random, sys
from vcoresim.engine.memory import with_memory_model
from vcoresim.engine.strategies.frontier import new_execution, state_key
from vcoresim.scenarios.registry import get_scenario
out = []
for name, model in json.loads(sys.argv[1]):
    prog = get_scenario(name).make({})
    if model != "sc":
        prog = with_memory_model(prog, model)
    rng, shared = random.Random(7), {}
    for _ in range(3):
        ex = new_execution(prog, shared)
        for _ in range(200):
            en = ex.enabled()
            if ex.violation is not None or not en:
                break
            q = en[rng.randrange(len(en))]
            ex.step(q, rng.randrange(ex.alternatives(q)))
            out.append(state_key(ex, None))
            out.append(state_key(ex, q))
import vcoresim
print(json.dumps({"package": vcoresim.__file__, "keys": out}))
"""

#: Built-ins of every model family, and the weak memory models (their store buffers hold location names).
_WALKED = [
    ("stray-ipi@fixed", "sc"),
    ("smt-vcore", "sc"),
    ("p8-idle-lockup@fixed", "sc"),
    ("hmi-tb-resync@split2-fixed", "sc"),
    ("signal-entry-race@radix-fixed", "sc"),
    ("p8-idle-lockup@fixed-tso", "sc"),
    ("stray-ipi@fixed", "pso"),
    ("stray-ipi@fixed", "power"),
    ("example/store-buffering", "power"),
    ("example/peterson", "tso"),
]


def test_fingerprints_are_the_same_in_every_process(tmp_path: Path) -> None:
    """Ray's workers are separate interpreters, each with its own string hash
    seed and, on another node, its own copy of the package: they share a
    visited set only if the same state gets the same fingerprint in each.  Two
    fresh processes with different PYTHONHASHSEED, the second running a copy
    of the package in another directory, walk the same schedules and must
    agree on every state's key (and the keys must tell states apart: a
    constant would agree too)."""
    import os
    import shutil
    import subprocess
    import sys

    import vcoresim

    copy = tmp_path / "elsewhere"
    shutil.copytree(Path(vcoresim.__file__).parent, copy / "vcoresim", ignore=shutil.ignore_patterns("__pycache__"))
    outs = []
    for seed, path in (("1", None), ("2", str(copy))):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        if path is not None:
            env["PYTHONPATH"] = path
        p = subprocess.run([sys.executable, "-c", _WALK, json.dumps(_WALKED)], capture_output=True, text=True, env=env, check=True, timeout=300)
        outs.append(json.loads(p.stdout))
    assert outs[1]["package"].startswith(str(copy)) and not outs[0]["package"].startswith(str(copy))
    a, b = (o["keys"] for o in outs)
    assert len(a) == len(b) > 1500
    assert len(set(a)) > len(a) // 20
    assert a == b


# ------------------------------------------------ interruptions and resumes
class _SecondCtrlC(InlineBackend):
    """A backend in this process on which a ``KeyboardInterrupt`` (the CLI's
    second Ctrl-C) lands in the middle of the ``at``-th batch."""

    def __init__(self, program: Program, bounds: Bounds, at: int) -> None:
        super().__init__(program, bounds)
        self.calls, self.at = 0, at

    def results(self, timeout: float) -> list[tuple[int, Any]]:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().results(timeout)


@pytest.mark.parametrize("at", [1, 2, 7])
def test_a_second_ctrl_c_in_the_search_leaves_a_checkpoint_that_resumes_to_every_state(at: int) -> None:
    p = get_scenario("signal-entry-race@radix-fixed").make({})
    bounds = Bounds(2000)
    full = frontier_search(p, bounds, InlineBackend(p, bounds), finals=True, batch_steps=300, split_steps=300)
    cut = frontier_search(p, bounds, _SecondCtrlC(p, bounds, at), batch_steps=300, split_steps=300)
    assert not cut.complete and cut.checkpoint is not None and cut.checkpoint["items"]
    done = frontier_search(p, bounds, InlineBackend(p, bounds), resume=json.loads(json.dumps(cut.checkpoint)), finals=True)
    assert done.complete and done.violation is None
    assert done.stats.states == full.stats.states
    # (the final states reached after the resume are among those of the whole run)
    assert set(done.params["final_states"]) <= set(full.params["final_states"])


def test_resumed_frontier_search_counts_its_statistics_once() -> None:
    """A checkpoint's statistics are the search's so far; the resumed run
    adds only what it does: in one process (deterministic) the totals are
    the uninterrupted run's, however often it is cut."""
    p = get_scenario("signal-entry-race@radix-fixed").make({})
    full = parallel_search(p, Bounds(2000), 1)
    state = parallel_search(p, Bounds(2000, None, 20), 1).checkpoint
    for _ in range(3):
        assert state is not None
        part = parallel_search(p, Bounds(2000, None, 60), 1, resume=json.loads(json.dumps(state)))
        state = part.checkpoint
    assert state is not None and not part.complete
    done = parallel_search(p, Bounds(2000), 1, resume=json.loads(json.dumps(state)))
    assert done.complete
    assert (done.stats.executions, done.stats.states, done.stats.pruned) == (full.stats.executions, full.stats.states, full.stats.pruned)
