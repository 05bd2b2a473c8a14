"""The serial search's shortcuts change nothing it reports.

Each shortcut of the `speed` work (benchmarks/README.md, "Cost per state")
is compared with the computation it replaces: coverage not recorded on
replayed prefixes, liveness monitors evaluated only after steps that write
what they read, and the first world's monitors installed in later worlds.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from vcoresim.engine.coverage import Coverage, covering
from vcoresim.engine.ops import Load, Store
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.world import Body, Liveness, Program, World
from vcoresim.scenarios.registry import get_scenario


def _coverage(program: Program, bounds: Bounds) -> tuple[Any, ...]:
    cov = Coverage()
    res = exhaustive(covering(program, cov), bounds, cache=True)
    return res.stats.executions, res.stats.states, cov.points, cov.changed, cov.armed


@pytest.mark.parametrize("name", ["stray-ipi@fixed", "smt-vcore"])
def test_replays_add_no_coverage(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The search's own replays record nothing: recording them too finds
    exactly the same yield points, changed locations and armed properties."""
    sc = get_scenario(name)
    bounds = Bounds(sc.bounds.max_steps, None, 40, None)
    shortcut = _coverage(sc.make({}), bounds)
    monkeypatch.setattr(Execution, "replaying", property(lambda self: False, lambda self, value: None))
    full = _coverage(sc.make({}), bounds)
    assert shortcut[0] == full[0] == 40 and shortcut[1] == full[1]
    assert shortcut[2] == full[2] and shortcut[3] == full[3] and shortcut[4] == full[4]
    assert len(full[2]) > 50  # (the comparison has something to compare)


def _walk_both(program: Program, seed: int, steps: int) -> int:
    """Run the same random schedule with the shortcut and with every liveness
    monitor evaluated after every step; the clocks and verdicts must agree.
    Returns how many steps the shortcut skipped an evaluation on."""
    fast, full = Execution(program), Execution(program)
    skipped = 0
    evaluate = full._check_liveness
    full.liveness_after = lambda a, writes, replayed=False: evaluate()  # type: ignore[method-assign]
    counted = fast._check_liveness

    def count(evaluate: bool = True) -> None:
        nonlocal skipped
        skipped += not evaluate
        counted(evaluate)

    fast._check_liveness = count  # type: ignore[method-assign]
    rng = random.Random(seed)
    for _ in range(steps):
        en = fast.enabled()
        assert en == full.enabled()
        if not en or fast.violation is not None:
            break
        q = rng.choice(en)
        alt = rng.randrange(fast.alternatives(q))
        fast.step(q, alt)
        full.step(q, alt)
        assert fast._live_armed == full._live_armed
        assert (fast.violation is None) == (full.violation is None)
    return skipped


def _liveness_program(bound: int) -> Program:
    def requester() -> Body:
        yield Store("req", 1)
        for _ in range(3):
            yield Store("x", 1)
        yield Store("req", 0)
        yield Store("ack", 1)

    def noise() -> Body:
        for i in range(6):
            v = yield Load("y")
            yield Store("y", v + i)

    def build(w: World) -> None:
        for loc in ("req", "ack", "x", "y"):
            w.loc(loc, 0)
        w.spawn("R", requester())
        w.spawn("N", noise())
        w.add_liveness(Liveness("ack-follows-req", "req is acked", ("req", "ack"), lambda ex: ex.mem["req"] == 1, lambda ex: ex.mem["ack"] == 1, bound))

    return Program("liveness", build)


@pytest.mark.parametrize("bound", [2, 4, 100])
def test_liveness_shortcut_keeps_clocks_and_verdicts(bound: int) -> None:
    skipped = sum(_walk_both(_liveness_program(bound), seed, 40) for seed in range(30))
    assert skipped > 0


def test_liveness_shortcut_on_a_kvm_scenario() -> None:
    program = get_scenario("stray-ipi@fixed").make({})
    assert Execution(program).world.liveness  # vcpus-complete
    skipped = sum(_walk_both(program, seed, 400) for seed in range(5))
    assert skipped > 100


def test_later_worlds_get_the_first_worlds_monitors() -> None:
    """The vcore model builds its monitors once per program; a world built
    without that memo has monitors of the same names, reads and groups."""
    from vcoresim.kvm import model
    from vcoresim.kvm.patches import resolve_kernel
    from vcoresim.scenarios.builtin import config_from_doc

    sc = get_scenario("stray-ipi@fixed")
    program = sc.make({})
    first, second = program.new_world(), program.new_world()
    assert [id(i) for i in first.invariants] == [id(i) for i in second.invariants]
    cfg = config_from_doc(program.config)
    fresh = World()
    model.build_world(fresh, cfg, resolve_kernel(cfg.kernel.preset, cfg.kernel.patches, "kernel"))

    def shape(w: World) -> Any:
        keep = {i.name for i in second.invariants} | {lv.name for lv in second.liveness}
        return (
            [(i.name, i.reads, i.groups, i.program_order) for i in w.invariants if i.name in keep],
            [(lv.name, lv.reads, lv.bound) for lv in w.liveness if lv.name in keep],
            sorted(w.mode_facets),
            w.check_deadlock or "no-deadlock" not in keep,
        )

    assert shape(second) == shape(fresh)
    # and they judge the same state the same way
    ex = Execution(program)
    for inv_memo, inv_fresh in zip(second.invariants, [i for i in fresh.invariants if i.name in {x.name for x in second.invariants}]):
        assert inv_memo.check(ex) == inv_fresh.check(ex)
