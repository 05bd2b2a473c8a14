"""Swarm mode (merged runs, folded counterexamples) and the Ray path.

The Ray tests run against a local Ray instance and are skipped cleanly where
Ray is not installed (the default install; ``pip install -e '.[ray]'``)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from vcoresim.check.swarm import fold_key, merge, run_one, runs_for, swarm_local
from vcoresim.engine.strategies.base import Bounds
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


def test_ray_frontier_kvm(ray_local: Any) -> None:
    from vcoresim.check.parallel import parallel_search

    p = get_scenario("signal-entry-race@fixed").make({})
    dist = parallel_search(p, Bounds(2000), 2, ray="auto")
    local = parallel_search(p, Bounds(2000), 1)
    assert dist.violation is None and dist.complete
    # Every state of the one-process search, and more only where processes hash states differently.
    assert dist.stats.states >= local.stats.states
    bug = get_scenario("stray-ipi").make({})
    found = parallel_search(bug, Bounds(4000, 1), 2, ray="auto")
    assert found.violation is not None and found.violation.name == "no-host-code-in-guest"


def test_ray_swarm_equals_local(ray_local: Any) -> None:
    from vcoresim.check.swarm import swarm_ray

    runs = _runs("example/lost-update", range(4))
    a = merge(swarm_local(runs, 1))
    b = merge(swarm_ray("auto", runs))
    assert [(c.key, c.seeds) for c in a.counterexamples] == [(c.key, c.seeds) for c in b.counterexamples]
