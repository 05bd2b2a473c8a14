"""Issue 17's invariants, pinned both ways: a broken copy of the model (a
patched model function, or the kernel that shipped with the residual) violates
each one, and the fixed kernels hold it (the built-in scenarios that enable
it, checked by the scenario's own strategy and bounds)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from vcoresim.check.driver import check, replay
from vcoresim.engine import ops as O
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Body
from vcoresim.kvm import book3s_hv, book3s_hv_rmhandlers, entry_p9, idle
from vcoresim.kvm.catalog import MODEL_INVARIANTS
from vcoresim.kvm.state import LPID_RESERVED, VCORE_EXITING, core, hstate, vcore
from vcoresim.scenarios.registry import get_scenario, program_for

SEED000 = ["hwthread-state-truthful", "grab-sound", "siblings-requested-at-switch", "release-after-switch-back", "no-stale-vcpu"]
SEED001 = ["vcore-state-consistent", "rendezvous-counters", "ptid-unique"]


def _intercept(orig: Callable[..., Body], rewrite: Callable[[Any, tuple[Any, ...]], Iterable[Any] | None]) -> Callable[..., Body]:
    """``orig`` with each operation ``op`` it yields replaced by ``rewrite(op, args)``
    (None: unchanged; a list of operations or generators to run instead)."""

    def wrapped(*args: Any) -> Body:
        gen = orig(*args)
        value: Any = None
        exc: BaseException | None = None
        while True:
            try:
                op = gen.throw(exc) if exc is not None else gen.send(value)
            except StopIteration as stop:
                return stop.value
            exc = None
            repl = rewrite(op, args)
            try:
                if repl is None:
                    value = yield op
                    continue
                value = None
                for r in repl:
                    if isinstance(r, O.Op):
                        value = yield r
                    else:
                        value = yield from r
            except GeneratorExit:
                gen.close()
                raise
            except BaseException as e:  # noqa: BLE001  (an interrupt thrown into the code, GuestInterrupt: the original handles it)
                exc = e

    return wrapped


def _violates(tmp_path: Path, scenario: str, invariant: str, n: int = 400, max_preemptions: int | None = None) -> None:
    """The scenario's program, checking only ``invariant``, violates it (and the trace replays)."""
    sc = get_scenario(scenario)
    config = {**sc.make({}).config, "invariants": [invariant]}
    program = program_for(scenario, config)
    if max_preemptions is not None:
        res = check(program, strategy="auto", bounds=Bounds(max_steps=4000, max_preemptions=max_preemptions), seed=sc.seed, trace_out=tmp_path / "t.json", do_shrink=False)
    else:
        res = check(program, strategy="random", bounds=Bounds(max_steps=4000, max_executions=n), seed=sc.seed, trace_out=tmp_path / "t.json", do_shrink=False)
    assert res.verdict == "violation", res.verdict
    assert res.invariant == invariant, (res.invariant, res.message)
    assert replay(tmp_path / "t.json", program_for).reproduced  # type: ignore[arg-type]


# --------------------------------------------------------------- seed 000
def test_state_truthful_catches_in_nap_published_with_the_mmu_on(tmp_path: Path) -> None:
    # The kernel seed 000 shipped in (v3.3, residual R3) is the broken copy.
    _violates(tmp_path, "stray-ipi@guard-only", "hwthread-state-truthful", n=50)


def test_grab_sound_catches_a_wakeup_that_ignores_the_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def wakeup_ignores_req(k: Any, cpu: int, reason: str) -> Body:
        yield O.Store(hstate(cpu, "hwthread_state"), 0)  # IN_KERNEL, then straight back to the host
        yield from idle.power7_wakeup_noloss(k, cpu)

    monkeypatch.setattr(idle, "system_reset_pSeries", wakeup_ignores_req)
    _violates(tmp_path, "stray-ipi@fixed-2vcpu", "grab-sound", n=50)


def test_siblings_requested_catches_a_grab_that_does_not_ask(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def grab_skips_unused(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        k, cpu = args
        if k.thread_of(cpu) != k.threads_per_vcore - 1:
            return None
        if isinstance(op, O.Store) and op.loc == hstate(cpu, "hwthread_req"):
            return []  # the last thread is never asked
        if isinstance(op, O.StoreN) and any(loc == hstate(cpu, "hwthread_req") for loc, _ in op.items):
            # 7b444c6710c6 (v3.8 on) stores the request and clears kvm_vcpu together
            return [O.StoreN({loc: val for loc, val in op.items if loc != hstate(cpu, "hwthread_req")})]
        return None

    monkeypatch.setattr(book3s_hv, "kvmppc_grab_hwthread", _intercept(book3s_hv.kvmppc_grab_hwthread, grab_skips_unused))
    _violates(tmp_path, "stray-ipi@fixed", "siblings-requested-at-switch", n=50)


def test_release_after_switch_back_catches_an_early_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orig_release = book3s_hv.kvmppc_release_hwthread

    def release_before_switch(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        k, cpu, _v, ptid, _trap = args
        if ptid == 0 and isinstance(op, O.Store) and op.loc == core(k.core_of(cpu), "lpid") and op.value == LPID_RESERVED:
            return [*(orig_release(k, cpu + i) for i in range(1, k.threads_per_vcore)), op]
        return None

    monkeypatch.setattr(book3s_hv_rmhandlers, "kvmppc_guest_exit", _intercept(book3s_hv_rmhandlers.kvmppc_guest_exit, release_before_switch))
    _violates(tmp_path, "stray-ipi@fixed", "release-after-switch-back", n=50)


def test_no_stale_vcpu_catches_a_release_that_keeps_the_pointer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def keeps_pointer(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        _k, cpu = args
        if isinstance(op, O.StoreN):
            return [O.StoreN({loc: val for loc, val in op.items if loc != hstate(cpu, "kvm_vcpu")})]
        return None

    monkeypatch.setattr(book3s_hv, "kvmppc_release_hwthread", _intercept(book3s_hv.kvmppc_release_hwthread, keeps_pointer))
    _violates(tmp_path, "stray-ipi@fixed", "no-stale-vcpu", n=50)


# --------------------------------------------------------------- seed 001
def test_state_consistent_catches_a_vcore_marked_exiting_too_early(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orig_entry = book3s_hv.__dict__["__kvmppc_vcore_entry"]

    def exiting_first(k: Any, cpu: int, v: int) -> Body:
        yield O.Store(vcore(k.vcore_of(v), "vcore_running"), VCORE_EXITING)
        return (yield from orig_entry(k, cpu, v))

    monkeypatch.setitem(book3s_hv.__dict__, "__kvmppc_vcore_entry", exiting_first)
    _violates(tmp_path, "smt-vcore", "vcore-state-consistent", n=50)


def test_rendezvous_counters_catch_an_uncounted_wakeup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def forgets_n_woken(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".n_woken"):
            return []
        return None

    monkeypatch.setattr(book3s_hv, "kvmppc_start_thread", _intercept(book3s_hv.kvmppc_start_thread, forgets_n_woken))
    _violates(tmp_path, "smt-vcore", "rendezvous-counters")


def test_ptid_unique_catches_a_removal_that_does_not_renumber(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_renumber(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.StoreN):
            return [O.StoreN({loc: val for loc, val in op.items if not loc.endswith(".ptid")})]
        return None

    monkeypatch.setattr(book3s_hv, "kvmppc_remove_runnable", _intercept(book3s_hv.kvmppc_remove_runnable, no_renumber))
    _violates(tmp_path, "smt-vcore", "ptid-unique", n=1000)


@pytest.mark.parametrize(("value", "what"), [(1, "has preemption enabled"), (0, "has preemption disabled but runs no vcore")])
def test_state_consistent_catches_a_run_that_forgets_preempt_disable_or_enable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: int, what: str) -> None:
    # kvmppc_run_core without its preempt_disable (guest code runs while the runner
    # may be preempted) or without its preempt_enable (left off after the run);
    # both survived the mutation run before this clause: nothing read preempt_count.
    def drops(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".preempt_count") and op.value == value:
            return []
        return None

    monkeypatch.setattr(book3s_hv, "kvmppc_run_core", _intercept(book3s_hv.kvmppc_run_core, drops))
    _violates(tmp_path, "stray-ipi@fixed", "vcore-state-consistent", n=50)
    doc = (tmp_path / "t.json").read_text()
    assert what in doc


# ------------------------------------------------------------ fixed kernels hold
def test_every_new_invariant_is_known_and_enabled_on_a_fixed_scenario() -> None:
    for name in SEED000 + SEED001:
        assert name in MODEL_INVARIANTS["vcore"]
    for scenario in ("stray-ipi@fixed", "stray-ipi@fixed-2vcpu", "p8-idle-lockup@fixed", "smt-vcore@late-join-fixed"):
        program = get_scenario(scenario).make({})
        assert set(SEED000 + SEED001) <= set(program.select or ()), scenario
    # Seed 001's kernel has no interlock: only the rendezvous invariants apply.
    select = set(get_scenario("smt-vcore").make({}).select or ())
    assert set(SEED001) <= select and not select & set(SEED000)


@pytest.mark.parametrize("scenario", ["stray-ipi@fixed", pytest.param("smt-vcore", marks=pytest.mark.slow)])
def test_fixed_kernel_holds_every_new_invariant_non_vacuously(scenario: str) -> None:
    # Within 1 preemption here (seconds); `vcoresim check` runs the scenarios' own bounds.
    sc = get_scenario(scenario)
    res = check(sc.make({}), strategy="exhaustive", bounds=Bounds(max_steps=4000, max_preemptions=1 if scenario.startswith("stray") else 0), seed=sc.seed, coverage=True)
    assert res.verdict == "holds", (res.invariant, res.message)
    vacuous = {v["name"] for v in res.extra["unreached"]["vacuous"]}
    applies = SEED000 + SEED001 if scenario == "stray-ipi@fixed" else SEED001
    assert not vacuous & set(applies), vacuous


# ------------------------------------------------- weak memory in the default check
@pytest.mark.parametrize("function", ["kvmppc_grab_hwthread", "system_reset_pSeries"])
def test_default_check_notices_a_dropped_interlock_barrier_under_tso(tmp_path: Path, function: str) -> None:
    from vcoresim.check.mutation import discover_sites
    from vcoresim.engine.memory import with_memory_model

    sc = get_scenario("stray-ipi@fixed-tso")
    program = sc.make({})
    assert program.memory_model == "tso"  # the scenario file's [check] memory_model
    (site,) = [s for s in discover_sites(program, executions=30) if s.function == function and s.kind in ("smp_mb", "sync")]
    broken = with_memory_model(program, "tso", frozenset({site.key}))
    res = check(broken, strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json", do_shrink=False)
    assert res.verdict == "violation", res.verdict
    assert res.invariant in ("grab-sound", "hwthread-state-truthful", "no-host-code-in-guest", "req-honoured")
    assert replay(tmp_path / "t.json", program_for).reproduced  # type: ignore[arg-type]


def test_bookkeeping_invariants_wait_for_buffered_stores_under_power() -> None:
    # Under power, cpu0's run-start stores (vcore state RUNNING, the thread's
    # kvm_vcpu) commit in either order: no thread sees the mix, so checking
    # no-stale-vcpu between the two commits reported a monitor artefact in the
    # second sampled execution.  Checked once the stores have committed, the
    # fixed kernel shows none in the same sample.
    program = program_for("stray-ipi@fixed", {**get_scenario("stray-ipi@fixed").make({}).config, "memory_model": "power"})
    res = check(program, strategy="auto", bounds=Bounds(max_steps=4000, max_preemptions=0, max_executions=60), seed=0, trace_dir=None, do_shrink=False)
    assert res.verdict == "incomplete", (res.invariant, res.message)


# --------------------------------------------------------------- seed 000, invariant 8
def test_ipi_hygiene_catches_an_accepted_ipi_never_eoied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.machine.xics import xirr

    def no_eoi(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        _k, cpu = args
        if isinstance(op, O.Store) and op.loc == xirr(cpu) and op.value == 0:
            return []  # the MFRR is cleared, the stwcix XIRR (EOI) forgotten
        return None

    monkeypatch.setattr(book3s_hv_rmhandlers, "icp_ack_clear", _intercept(book3s_hv_rmhandlers.icp_ack_clear, no_eoi))
    _violates(tmp_path, "stray-ipi@fixed-2vcpu", "ipi-hygiene", n=50)


# --------------------------------------------------------------- seed 003
def test_no_stale_frame_return_catches_the_ceded_primary_of_v4_16(tmp_path: Path) -> None:
    # The kernel seed 003 shipped in (8c1c7fb0b5ec without 6db6d3658a3b) is the broken copy.
    _violates(tmp_path, "p8-idle-lockup@buggy", "no-stale-frame-return", n=100)


# --------------------------------------------------------------- seed 002
def test_in_guest_truthful_catches_an_exit_that_keeps_the_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import hmi

    def keeps_flag(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        _k, _cpu, s = args
        if isinstance(op, O.Store) and op.loc == hmi.in_guest(s) and op.value == 0:
            return []  # X7 (kvmppc_subcore_exit_guest) dropped
        return None

    monkeypatch.setattr(hmi, "kvmppc_hv_entry", _intercept(hmi.kvmppc_hv_entry, keeps_flag))
    _violates(tmp_path, "hmi-tb-resync@fixed", "in-guest-truthful", n=100)


def test_tb_resync_one_leader_catches_every_primary_resyncing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.engine.ops import clear_bit
    from vcoresim.kvm import hmi
    from vcoresim.machine.opal import opal_handle_hmi, opal_resync_timebase

    def every_one_leads(k: Any, cpu: int, s: int) -> Body:
        # kvmppc_tb_resync_required()'s result ignored: every primary resyncs
        yield hmi.test_and_set_bit(hmi.FLAGS, hmi.CORE_TB_RESYNC_REQ_BIT)
        yield O.Store(hmi.in_guest(s), 0)
        yield from hmi.wait_for_subcore_guest_exit(k, cpu)
        yield from opal_handle_hmi(cpu, s, k.scope(s), **k.opal_hmi)
        yield O.Store(hmi.resync_leader(cpu), 1)
        yield from opal_resync_timebase(cpu, s, k.scope(s))
        yield O.Store(hmi.resync_leader(cpu), 0)
        yield clear_bit(hmi.FLAGS, hmi.CORE_TB_RESYNC_REQ_BIT)

    monkeypatch.setattr(hmi, "kvmppc_realmode_hmi_handler", every_one_leads)
    _violates(tmp_path, "hmi-tb-resync@two-guests-fixed", "tb-resync-one-leader", n=400)


def test_tb_resync_completes_catches_a_leader_that_never_clears_the_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import hmi

    def never_clears(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.RMW) and op.loc == hmi.FLAGS and "clear" in op.what:
            return []  # kvmppc_tb_resync_done forgotten
        return None

    monkeypatch.setattr(hmi, "kvmppc_realmode_hmi_handler", _intercept(hmi.kvmppc_realmode_hmi_handler, never_clears))
    _violates(tmp_path, "hmi-tb-resync@fixed", "tb-resync-completes", n=100)


# --------------------------------------------------------------- seed 004
def test_lazy_irq_consistent_catches_a_hard_disable_that_leaves_ee_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import entry_p9

    def soft_only(k: Any, cpu: int) -> Body:
        yield O.Store(entry_p9.paca(cpu, "soft_enabled"), 0)  # no __hard_irq_disable: MSR[EE] stays on
        yield entry_p9.atomic_or(entry_p9.paca(cpu, "irq_happened"), entry_p9.PACA_IRQ_HARD_DIS)

    monkeypatch.setattr(entry_p9, "hard_irq_disable", soft_only)
    _violates(tmp_path, "signal-entry-race@fixed", "lazy-irq-consistent", n=100)


def _flagless_host_ipi(monkeypatch: pytest.MonkeyPatch) -> None:
    """The reschedule source sends its IPI with no flag set first (a host interrupt,
    such as a timer, whose work the entry path's flag tests cannot see)."""
    from vcoresim.kvm import entry_p9

    def ipi_only(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".need_resched"):
            return []
        return None

    monkeypatch.setattr(entry_p9, "resched_source", _intercept(entry_p9.resched_source, ipi_only))


def test_irq_replayed_before_guest_catches_an_entry_that_ignores_lazy_irq_pending(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import entry_p9

    def never_pending(k: Any, cpu: int) -> Body:
        yield O.Load(entry_p9.paca(cpu, "irq_happened"))
        return False

    _flagless_host_ipi(monkeypatch)
    monkeypatch.setattr(entry_p9, "lazy_irq_pending", never_pending)
    _violates(tmp_path, "signal-entry-race@resched-fixed", "irq-replayed-before-guest", n=200)


def test_irq_replayed_before_guest_holds_for_a_flagless_ipi_on_the_fixed_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    _flagless_host_ipi(monkeypatch)
    sc = get_scenario("signal-entry-race@resched-fixed")
    res = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_dir=None, do_shrink=False)
    assert res.verdict == "holds", (res.invariant, res.message)


def test_entry_guest_context_catches_a_guest_entered_without_in_guest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import entry_p9

    def no_in_guest(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".in_guest") and op.value == 1:
            return []
        return None

    monkeypatch.setattr(entry_p9, "kvmppc_hv_entry", _intercept(entry_p9.kvmppc_hv_entry, no_in_guest))
    _violates(tmp_path, "signal-entry-race@fixed", "entry-guest-context", n=50)


def test_entry_vcore_state_catches_a_run_left_exiting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm import entry_p9

    def stays_exiting(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".vcore_state") and op.value == entry_p9.VCORE_INACTIVE:
            return []
        return None

    monkeypatch.setattr(entry_p9, "kvmppc_run_core", _intercept(entry_p9.kvmppc_run_core, stays_exiting))
    _violates(tmp_path, "signal-entry-race@fixed", "entry-vcore-state", n=50)


NEW_TIMEBASE = ["in-guest-truthful", "tb-resync-one-leader", "tb-resync-completes"]
NEW_ENTRY = ["irq-replayed-before-guest", "lazy-irq-consistent", "entry-guest-context", "entry-vcore-state", "vcpus-complete"]


@pytest.mark.parametrize(
    ("scenario", "names"),
    [
        ("hmi-tb-resync@split2-fixed", NEW_TIMEBASE),
        ("hmi-tb-resync@two-guests-fixed", NEW_TIMEBASE),
        ("signal-entry-race@fixed", NEW_ENTRY),
        ("signal-entry-race@radix-fixed", NEW_ENTRY),
    ],
)
def test_fixed_kernels_hold_the_seed_002_and_004_invariants_non_vacuously(scenario: str, names: list[str]) -> None:
    sc = get_scenario(scenario)
    program = sc.make({})
    assert set(names) <= set(program.select or ()), scenario
    res = check(program, strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, coverage=True)
    assert res.verdict == "holds", (res.invariant, res.message)
    vacuous = {v["name"] for v in res.extra["unreached"]["vacuous"]}
    assert not vacuous & set(names), vacuous


def test_ipi_hygiene_is_enabled_and_not_vacuous_on_the_stray_ipi_fix() -> None:
    sc = get_scenario("stray-ipi@fixed")
    program = sc.make({})
    assert {"ipi-hygiene", "no-stale-frame-return"} <= set(program.select or ())
    res = check(program, strategy="exhaustive", bounds=Bounds(max_steps=4000, max_preemptions=0), seed=sc.seed, coverage=True)
    assert res.verdict == "holds", (res.invariant, res.message)
    vacuous = {v["name"] for v in res.extra["unreached"]["vacuous"]}
    assert "ipi-hygiene" not in vacuous


def test_primary_req_released_catches_a_release_loop_from_thread_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    orig = book3s_hv.kvmppc_release_hwthread

    def skips_the_primary(k: Any, cpu: int) -> Body:
        if not k.online(cpu):
            yield from orig(k, cpu)

    monkeypatch.setattr(book3s_hv, "kvmppc_release_hwthread", skips_the_primary)
    _violates(tmp_path, "p8-idle-lockup@fixed", "primary-req-released", n=100)


def test_guest_mode_flag_catches_an_exit_that_leaves_the_flag_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from vcoresim.kvm.state import KVM_GUEST_MODE_NONE

    def keeps_flag(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".in_guest") and op.value == KVM_GUEST_MODE_NONE:
            return []  # X1 forgotten: the host runs with kvm_hstate.in_guest = KVM_GUEST_MODE_GUEST
        return None

    monkeypatch.setattr(book3s_hv_rmhandlers, "kvmppc_guest_exit", _intercept(book3s_hv_rmhandlers.kvmppc_guest_exit, keeps_flag))
    _violates(tmp_path, "stray-ipi@fixed", "guest-mode-flag", n=50)


def test_napping_truthful_catches_a_cede_that_leaves_napping_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kvm_end_cede (C8) forgets `stb r0, HSTATE_NAPPING(r13)`: the primary goes back
    # into the guest (or out through the exit path to the host) still marked as
    # napping for H_CEDE, so its next wake-up would be routed into kvm_end_cede.
    def keeps_napping(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".napping") and op.value == 0:
            return []
        return None

    monkeypatch.setattr(book3s_hv_rmhandlers, "kvm_cede_cleanup", _intercept(book3s_hv_rmhandlers.kvm_cede_cleanup, keeps_napping))
    _violates(tmp_path, "p8-idle-lockup@fixed", "napping-truthful", n=60)


def test_kvm_nap_routable_catches_a_cede_that_does_not_mark_its_nap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # kvmppc_h_cede forgets C4's `stb NAPPING_CEDE, HSTATE_NAPPING(r13)`: the ceded
    # primary naps with its request set, and its wake-up would run kvm_start_guest's
    # secondary path instead of kvm_end_cede.
    def no_napping(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.endswith(".napping") and op.value != 0:
            return []
        return None

    monkeypatch.setattr(book3s_hv_rmhandlers, "kvmppc_h_cede", _intercept(book3s_hv_rmhandlers.kvmppc_h_cede, no_napping))
    _violates(tmp_path, "p8-idle-lockup@fixed", "kvm-nap-routable", n=60)


def test_the_cede_invariants_hold_on_the_fixed_cede_path() -> None:
    # The unbroken model on the sample where the broken copies above fail (the
    # complete check is the scenario's own, in `vcoresim check`, which enables both).
    sc = get_scenario("p8-idle-lockup@fixed")
    program = sc.make({})
    names = ["napping-truthful", "kvm-nap-routable"]
    assert set(names) <= set(program.select or ())
    config = {**program.config, "invariants": names}
    res = check(program_for("p8-idle-lockup@fixed", config), strategy="random", bounds=Bounds(max_steps=4000, max_executions=25), seed=sc.seed, do_shrink=False)
    assert res.invariant is None, (res.invariant, res.message)


# --------------------------------------------------- seed 004, the radix flush
def test_xcall_done_before_guest_catches_a_cross_call_that_does_not_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # smp_call_function_single forgets csd_lock: its csd_lock_wait returns at once,
    # so the vCPU enters the guest before the old core has taken the flush IPI
    # (the survivor `drop-store smp_call_function_single`, docs/mutation-survivors.md).
    def no_csd_lock(op: Any, args: tuple[Any, ...]) -> list[Any] | None:
        if isinstance(op, O.Store) and op.loc.startswith("cfd[") and op.value == 1:
            return []
        return None

    monkeypatch.setattr(entry_p9, "smp_call_function_single", _intercept(entry_p9.smp_call_function_single, no_csd_lock))
    _violates(tmp_path, "signal-entry-race@radix-fixed", "xcall-done-before-guest", max_preemptions=0)


def test_xcall_done_before_guest_holds_on_the_fixed_radix_kernel() -> None:
    # A complete check (the scenario's own bounds); `vcoresim check` also runs it on @radix.
    for name in ("signal-entry-race@radix-fixed",):
        sc = get_scenario(name)
        program = sc.make({})
        assert "xcall-done-before-guest" in (program.select or ())
        config = {**program.config, "invariants": ["xcall-done-before-guest"]}
        res = check(program_for(name, config), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, do_shrink=False)
        assert res.verdict == "holds", (name, res.verdict, res.invariant, res.message)


# ------------------------------------------- the exit rendezvous (X7's pokes)
def _rm_mutant(kind: str, function: str, text: str) -> Any:
    """The mutation harness's mutant of the book3s_hv_rmhandlers line of ``function``
    holding ``text`` (the model itself, mutated at run time: exit-pokes-guest-threads
    locates X8 by function name, which a wrapped copy would hide)."""
    import inspect

    from vcoresim.engine.mutants import Mutant, Site

    lines, first = inspect.getsourcelines(getattr(book3s_hv_rmhandlers, function))
    (line,) = [first + i for i, src in enumerate(lines) if text in src]
    return Mutant(kind, Site("kvm/book3s_hv_rmhandlers.py", function, line))


def _guest_exit_mutant(kind: str, text: str) -> Any:
    return _rm_mutant(kind, "kvmppc_guest_exit", text)


def _violates_mutated(tmp_path: Path, scenario: str, invariant: str, mutant: Any) -> None:
    from vcoresim.engine.mutants import mutated

    sc = get_scenario(scenario)
    program = mutated(program_for(scenario, {**sc.make({}).config, "invariants": [invariant]}), mutant)
    res = check(program, strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json", do_shrink=False)
    assert res.verdict == "violation", res.verdict
    assert res.invariant == invariant, (res.invariant, res.message)
    assert replay(tmp_path / "t.json", program_for).reproduced  # type: ignore[arg-type]


def test_exit_pokes_catches_a_first_exit_that_does_not_wake_a_ceded_thread(tmp_path: Path) -> None:
    # X7 forgets the IPI to threads napping in H_CEDE (survivor `skip-ipi kvmppc_guest_exit` :249).
    m = _guest_exit_mutant("skip-ipi", "SendIPI(")
    _violates_mutated(tmp_path, "p8-idle-lockup@fixed", "exit-pokes-guest-threads", m)


def test_exit_pokes_holds_on_the_fixed_cede_path() -> None:
    # The unbroken model on a sample (`vcoresim check` runs the complete checks).
    sc = get_scenario("p8-idle-lockup@fixed")
    program = sc.make({})
    assert "exit-pokes-guest-threads" in (program.select or ())
    config = {**program.config, "invariants": ["exit-pokes-guest-threads"]}
    res = check(program_for("p8-idle-lockup@fixed", config), strategy="random", bounds=Bounds(max_steps=4000, max_executions=25), seed=sc.seed, do_shrink=False)
    assert res.invariant is None, (res.invariant, res.message)


def test_cede_wakes_on_dec_catches_a_cede_nap_without_pece1(tmp_path: Path) -> None:
    # kvm_do_nap forgets LPCR[PECE1] (survivor `drop-store kvm_do_nap` :325): only an IPI ends the cede.
    m = _rm_mutant("drop-store", "kvm_do_nap", "Store(lpcr_pece1(cpu), 1)")
    _violates_mutated(tmp_path, "p8-idle-lockup@fixed", "cede-wakes-on-dec", m)


def test_cede_wakes_on_dec_holds_on_the_fixed_cede_path() -> None:
    sc = get_scenario("p8-idle-lockup@fixed")
    program = sc.make({})
    assert "cede-wakes-on-dec" in (program.select or ())
    config = {**program.config, "invariants": ["cede-wakes-on-dec"]}
    res = check(program_for("p8-idle-lockup@fixed", config), strategy="random", bounds=Bounds(max_steps=4000, max_executions=25), seed=sc.seed, do_shrink=False)
    assert res.invariant is None, (res.invariant, res.message)
