"""The KVM scenarios under the ``power`` memory model (docs/memory-models.md,
"Weak memory on the KVM model")."""

from __future__ import annotations

from vcoresim.check.driver import check
from vcoresim.engine.memory import WeakExecution, with_memory_model
from vcoresim.kvm.hmi import FLAGS, in_guest, mftb_seen
from vcoresim.machine.timebase import hmer, subcore, tb, tb_valid
from vcoresim.scenarios.registry import get_scenario


def test_timebase_registers_are_not_memory_under_power() -> None:
    # mftb/mtspr/mfspr touch per-core or per-thread registers: no store buffer,
    # no propagation.  The kernel's own memory (sibling_subcore_state) stays memory.
    program = with_memory_model(get_scenario("hmi-tb-resync@fixed").make({}), "power")
    ex = program.execution(program)  # type: ignore[misc]
    assert isinstance(ex, WeakExecution)
    for reg in (tb(0), tb_valid(0), subcore(0, "lpid"), subcore(0, "hdec_expired"), hmer(0), mftb_seen(0)):
        assert ex._uncached(reg), reg
    for word in (FLAGS, in_guest(0)):
        assert not ex._uncached(word), word


def test_hmi_fixed_power_holds_over_the_whole_space() -> None:
    sc = get_scenario("hmi-tb-resync@fixed-power")
    program = sc.make({})
    assert program.memory_model == "power"  # the scenario file's [check] memory_model
    assert sc.bounds.max_preemptions is None
    res = check(program, strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_dir=None, do_shrink=False)
    assert res.verdict == "holds", (res.invariant, res.message)
    assert res.coverage == "complete", res.coverage


def test_hmi_bug_is_still_found_under_power() -> None:
    # Declaring the registers uncached must not hide seed 002: the unfixed
    # kernel still leaves the host's TB behind the TOD under power.
    sc = get_scenario("hmi-tb-resync")
    program = with_memory_model(sc.make({}), "power")
    res = check(program, strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_dir=None, do_shrink=False)
    assert res.verdict == "violation" and res.invariant == "tb-host-reads-tod", (res.verdict, res.invariant)
