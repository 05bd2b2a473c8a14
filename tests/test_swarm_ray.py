"""Swarm mode (merged runs, folded counterexamples) and the Ray path.

The Ray tests run against a local Ray instance and are skipped cleanly where
Ray is not installed (the default install; ``pip install -e '.[ray]'``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vcoresim.check.swarm import fold_key, merge, run_one, runs_for, swarm_local
from vcoresim.engine.strategies.base import Bounds, run_schedule
from vcoresim.scenarios.registry import get_scenario


def _runs(name: str, seeds: range, strategy: str = "pct", n: int = 300) -> list[dict[str, Any]]:
    p = get_scenario(name).make({})
    return runs_for([(p.name, p.config)], seeds, strategy, Bounds(max_executions=n))


def test_swarm_folds_duplicate_counterexamples() -> None:
    results = [run_one(r) for r in _runs("example/lost-update", range(6))]
    found = [r for r in results if r["trace"] is not None]
    assert len(found) >= 2  # PCT finds the lost update from most seeds
    merged = merge(results)
    assert merged.runs == 6 and merged.clean == 6 - len(found)
    assert sum(len(ce.seeds) for ce in merged.counterexamples) == len(found)
    assert len(merged.counterexamples) < len(found)  # the same race, folded
    for ce in merged.counterexamples:
        assert ce.key == fold_key(ce.invariant, ce.trace) and ce.invariant == "no-lost-update"


def test_swarm_folds_one_race_found_along_different_schedules() -> None:
    """Issue 15: 4 PCT seeds of stray-ipi used to give 4 'distinct' counterexamples
    (folded by schedule hash) of the one race; folded by the violating step's code: one."""
    results = [run_one(r) for r in _runs("stray-ipi", range(4), n=1000)]
    found = [r for r in results if r["trace"] is not None]
    assert len(found) >= 2
    assert len({json.dumps(r["trace"]["schedule"]) for r in found}) > 1  # different schedules...
    merged = merge(results)
    assert len(merged.counterexamples) == 1  # ...one race
    ce = merged.counterexamples[0]
    assert ce.invariant == "no-host-code-in-guest" and sorted(ce.seeds) == sorted(r["seed"] for r in found)
    assert len(ce.trace["schedule"]) == min(len(r["trace"]["schedule"]) for r in found)  # the shortest is kept


def test_swarm_local_processes_equal_inline() -> None:
    runs = _runs("example/lost-update", range(4))
    a = merge(swarm_local(runs, 1))
    b = merge(swarm_local(runs, 2))
    assert [(c.key, c.seeds) for c in a.counterexamples] == [(c.key, c.seeds) for c in b.counterexamples]


def test_swarm_cli(cli: Any, tmp_path: Any) -> None:
    r = cli("swarm", "example/lost-update", "example/peterson", "--runs", "3", "--strategy", "pct", "--max-executions", "300", "--json", "--out", str(tmp_path / "sw"))
    assert r.code == 1
    doc = json.loads(r.stdout)
    assert doc["runs"] == 6 and doc["distinct_counterexamples"]
    for ce in doc["distinct_counterexamples"]:
        assert ce["scenario"] == "example/lost-update"
        assert cli("replay", ce["trace"], "--quiet").code == 0
    assert cli("swarm", "no-such-scenario").code == 2


def test_ray_option_without_ray_is_one_line_error(cli: Any) -> None:
    try:
        import ray  # noqa: F401

        pytest.skip("Ray is installed")
    except ImportError:
        pass
    r = cli("check", "example/lost-update", "--ray", "auto")
    assert r.code == 2 and r.stderr_lines == ["vcoresim: error: --ray: Ray is not installed (pip install 'vcoresim[ray]')"]


# ------------------------------------------------------------------- Ray
@pytest.fixture(scope="module")
def ray_local() -> Any:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.parametrize("name", ["example/lost-update", "example/peterson", "example/store-buffering", "example/lock-order"])
def test_ray_frontier_same_verdict_as_serial(ray_local: Any, name: str) -> None:
    from vcoresim.check.parallel import parallel_search
    from vcoresim.engine.strategies.dpor import exhaustive

    p = get_scenario(name).make({})
    serial = exhaustive(p, Bounds())
    dist = parallel_search(p, Bounds(), 2, ray="auto")
    assert (serial.violation is None) == (dist.violation is None) and serial.complete == dist.complete
    assert dist.params["search"] == "frontier" and dist.params["workers"] == 2 and dist.params["ray"] == "auto"
    if serial.violation is not None:
        assert dist.violation is not None and dist.violation.name == serial.violation.name


def _serial_finals(monkeypatch: Any, program: Any, bounds: Bounds) -> tuple[Any, set[int]]:
    """Serial DPOR (the default search, no state cache: every Mazurkiewicz
    trace, so every final state) and the visited-set keys of the final states
    its executions end in (each replayed into an execution that keeps what the
    fingerprint needs)."""
    from vcoresim.engine.runtime import Execution
    from vcoresim.engine.strategies.dpor import exhaustive
    from vcoresim.engine.strategies.frontier import new_execution, state_key

    ends: list[list[tuple[int, int]]] = []
    finish = Execution.finish

    def recording(self: Any, bounded: bool) -> None:
        finish(self, bounded=bounded)
        if not bounded and self.violation is None:
            ends.append(list(self.schedule))

    monkeypatch.setattr(Execution, "finish", recording)
    serial = exhaustive(program, bounds)
    monkeypatch.setattr(Execution, "finish", finish)
    keys = set()
    for sched in ends:
        ex = new_execution(program, {})
        for q, alt in sched:
            ex.step(q, alt)
        assert not ex.enabled()
        keys.add(state_key(ex, None))
    return serial, keys


@pytest.mark.parametrize("name", ["example/peterson", "example/store-buffering", "signal-entry-race@fixed", "signal-entry-race@radix-fixed", "hmi-tb-resync@split2-fixed"])
def test_ray_frontier_same_states_as_serial(ray_local: Any, monkeypatch: Any, name: str) -> None:
    """Three Ray worker processes sharing one visited set reach the final
    states serial DPOR reaches, and exactly the states one process reaches:
    their fingerprints agree, so no state is counted once per process."""
    from vcoresim.check.parallel import parallel_search

    p = get_scenario(name).make({})
    bounds = Bounds(get_scenario(name).bounds.max_steps)
    serial, finals = _serial_finals(monkeypatch, p, bounds)
    assert serial.violation is None and serial.complete and finals
    local = parallel_search(p, bounds, 1, finals=True)
    dist = parallel_search(p, bounds, 3, ray="auto", finals=True)
    assert dist.violation is None and dist.complete and dist.params["workers"] == 3
    assert "fingerprints_agree" not in dist.params
    assert set(dist.params["final_states"]) == set(local.params["final_states"]) == finals
    assert dist.stats.states == local.stats.states


def test_ray_frontier_kvm_violation(ray_local: Any) -> None:
    from vcoresim.check.parallel import parallel_search
    from vcoresim.engine.strategies.dpor import exhaustive

    for name, bounds in (("stray-ipi", Bounds(4000, 1)), ("signal-entry-race", Bounds(2000))):
        p = get_scenario(name).make({})
        serial = exhaustive(p, bounds)
        found = parallel_search(p, bounds, 3, ray="auto")
        assert serial.violation is not None and found.violation is not None
        assert found.violation.name == serial.violation.name
        assert found.schedule is not None and run_schedule(p, found.schedule).violation is not None


def test_ray_swarm_equals_local(ray_local: Any) -> None:
    from vcoresim.check.swarm import swarm_ray

    runs = _runs("example/lost-update", range(4))
    a = merge(swarm_local(runs, 1))
    b = merge(swarm_ray("auto", runs))
    assert [(c.key, c.seeds) for c in a.counterexamples] == [(c.key, c.seeds) for c in b.counterexamples]


@pytest.mark.slow
def test_ray_cli_checkpoint_resumes_on_ray(tmp_path: Any) -> None:
    """``check --ray auto`` (Ray started by the command, in the main thread)
    cut by a budget writes the frontier checkpoint, and ``--resume --ray``
    finishes it with every state of a one-process search."""
    import subprocess
    import sys

    pytest.importorskip("ray")
    from vcoresim.check.parallel import parallel_search

    cp = tmp_path / "cp.json"

    def run(*args: str) -> tuple[int, dict[str, Any]]:
        p = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", *args, "--json", "--no-unreached"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
        return p.returncode, json.loads(p.stdout or "null") or {"stderr": p.stderr}

    code, part = run("signal-entry-race@radix-fixed", "--strategy", "exhaustive", "--ray", "auto", "--workers", "3", "--max-executions", "20", "--checkpoint", str(cp))
    assert code == 3 and part["coverage"] == "partial", part
    state = json.loads(cp.read_text())["state"]["search"]
    assert state["kind"] == "parallel" and state["items"] and state["probe"] is not None
    code, done = run("--resume", str(cp), "--ray", "auto", "--workers", "2")
    assert code == 0 and done["verdict"] == "holds" and done["coverage"] == "complete", done
    assert done["strategy"]["ray"] == "auto" and done["strategy"]["workers"] == 2
    p = get_scenario("signal-entry-race@radix-fixed").make({})
    assert done["stats"]["states"] == parallel_search(p, Bounds(2000), 1).stats.states


def test_ray_cli_auto_starts_ray_and_searches(tmp_path: Any) -> None:
    """``check --ray auto`` starts Ray itself (in the main thread: a driver
    initialised in a helper thread lost its cluster after 60 s with Ray 2.60)."""
    import subprocess
    import sys

    pytest.importorskip("ray")
    p = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", "example/peterson", "--ray", "auto", "--workers", "2", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False)
    doc = json.loads(p.stdout)
    assert p.returncode == 0 and doc["verdict"] == "holds" and doc["coverage"] == "complete", p.stderr
    assert doc["strategy"]["ray"] == "auto" and doc["strategy"]["workers"] == 2


def test_ray_budget_checkpoint_resumes_on_ray(ray_local: Any) -> None:
    """A Ray search cut by a budget leaves the frontier checkpoint (pending
    items, visited set, the initial state's fingerprint); resumed on Ray it
    reaches every state of a one-process search, counting its statistics once."""
    from vcoresim.check.parallel import parallel_search

    p = get_scenario("signal-entry-race@radix-fixed").make({})
    part = parallel_search(p, Bounds(2000, None, 20), 3, ray="auto")
    assert not part.complete and part.checkpoint is not None
    state = json.loads(json.dumps(part.checkpoint))
    assert state["kind"] == "parallel" and state["items"] and state["visited"] and state["probe"] is not None
    done = parallel_search(p, Bounds(2000), 2, ray="auto", resume=state)
    local = parallel_search(p, Bounds(2000), 1)
    assert done.complete and done.violation is None
    assert done.stats.states == local.stats.states
    assert done.stats.executions >= part.stats.executions
