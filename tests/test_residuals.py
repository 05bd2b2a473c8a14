"""The residual races of the secondary-thread history, found where they were
real and absent where fixed, release by release (issue 14).  Each found race
tells its story in the shrunk trace and carries its timing window.  The
"holds" side of each pair is a built-in scenario that ``vcoresim check`` runs
(CI); the slow marker keeps the long ones out of the default suite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vcoresim.check.driver import check, replay
from vcoresim.kvm.book3s_hv import GRAB_TIMEOUT_US
from vcoresim.scenarios.registry import get_scenario, program_for


def run(name: str, tmp_path: Path, preset: str | None = None, patches: dict[str, bool] | None = None):  # type: ignore[no-untyped-def]
    sc = get_scenario(name)
    overrides: dict[str, object] = {}
    if preset is not None:
        overrides["kernel"] = preset
    if patches:
        overrides["patches"] = patches
    return check(sc.make(overrides), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json")


def ops(res) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    doc = json.loads(Path(res.trace).read_text())
    return [(s["actor"], o["op"]) for s in doc["steps"] for o in s["ops"]]


# R1, v3.5-v3.7: the grab's -EBUSY is ignored; the runner enters the guest
# with a sibling still in the host kernel.  R3 is patched out so that the
# verdict is about R1 (the scenario's own kernel is v3.7 + idle-nap-real-mode).
@pytest.mark.parametrize("preset", ["v3.5", "v3.7"])
def test_r1_grab_timeout_found_on_v3_5_to_v3_7(tmp_path: Path, preset: str) -> None:
    res = run("stray-ipi@grab-timeout", tmp_path, preset, {"idle-nap-real-mode": True})
    assert res.verdict == "violation" and res.invariant == "no-host-code-in-guest"
    trace = ops(res)
    grab_failed = next(i for i, (a, o) in enumerate(trace) if a == "cpu0" and o.startswith("KVM: couldn't grab cpu 1"))
    # ...and the runner goes on into the guest: the partition switch comes after
    assert any(a == "cpu0" and o.startswith("store core[0].lpid") for a, o in trace[grab_failed:])
    # The window: the injected stall must hold cpu1 past the grab's timeout.
    (fault,) = [n for n in res.window["needs"] if n["kind"] == "fault"]
    assert fault["actor"] == "cpu1" and fault["ns"] >= GRAB_TIMEOUT_US * 1000
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["v3.8", "v3.19"])
def test_r1_fixed_from_v3_8_the_run_fails_with_ebusy(tmp_path: Path, preset: str) -> None:
    """7b444c6710c6: with the same stall the grab still times out, but the run
    is abandoned: no host code in the guest (random walk; the built-in
    @grab-timeout-fixed covers 1 preemption exhaustively)."""
    sc = get_scenario("stray-ipi@grab-timeout-fixed")
    from vcoresim.engine.strategies.base import Bounds

    res = check(sc.make({"kernel": preset}), strategy="random", bounds=Bounds(max_steps=4000, max_executions=300), seed=0)
    assert res.verdict == "sampled" and res.invariant is None  # no violation in 300 random walks


# R2, v3.5-v3.7: release before the wait for nap (v3.7 is the built-in
# smt-vcore@late-join, tests/test_kvm.py).
@pytest.mark.parametrize("preset", ["v3.5"])
def test_r2_late_join_found_on_v3_5_to_v3_7(tmp_path: Path, preset: str) -> None:
    res = run("smt-vcore@late-join", tmp_path, preset)
    assert res.verdict == "violation" and res.invariant == "no-wait-for-nap-timeout"


# R3, v3.5-v3.18: IN_NAP published with the MMU on (v3.5 is the built-in
# stray-ipi@guard-only, tests/test_kvm.py).
@pytest.mark.parametrize("scenario", ["stray-ipi@guard-only-v3.18"])
def test_r3_found_on_v3_5_and_v3_18(tmp_path: Path, scenario: str) -> None:
    res = run(scenario, tmp_path)
    assert res.verdict == "violation" and res.invariant == "no-host-code-in-guest"
    assert res.config["kernel"]["preset"] == "v3.18"


# H3, v3.1 only: the late join retried on every pass starts a vCPU twice.
def test_h3_double_start_found_on_v3_1(tmp_path: Path) -> None:
    res = run("smt-vcore@double-start", tmp_path)
    assert res.verdict == "violation" and res.invariant == "no-wait-for-nap-timeout"
    trace = ops(res)
    starts = [i for i, (_a, o) in enumerate(trace) if o.startswith("ipi -> cpu1") and "stray" not in o]
    assert len(starts) >= 2  # the same thread IPI'd twice in one run: n_woken counted twice
    woken = [o for _a, o in trace if "vcore[0].n_woken = 2" in o]
    assert woken
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


# R4, v3.5-v3.7: the vCPU pointer loaded before the IPI is consumed.
@pytest.mark.slow
def test_r4_vcpu_pointer_found_on_v3_7(tmp_path: Path) -> None:
    res = run("stray-ipi@vcpu-pointer", tmp_path)
    assert res.verdict == "violation" and res.invariant == "runnable-vcpu-dispatched"
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    "scenario",
    ["smt-vcore@late-join-fixed", "smt-vcore@double-start-fixed", "stray-ipi@grab-timeout-fixed", "stray-ipi@vcpu-pointer-fixed", "stray-ipi@fixed"],
)
def test_residual_fixed_kernels_hold(tmp_path: Path, scenario: str) -> None:
    res = run(scenario, tmp_path)
    assert res.verdict == "holds", res.message


@pytest.mark.slow
def test_r4_itself_with_only_the_nap_count_order_fixed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A what-if, not a release: v3.7 with only item (c) of 7b444c6710c6 (the
    pointer cleared before nap_count++), so that the race @vcpu-pointer shrinks
    to first is gone.  R4 proper is still found: a stray IPI wakes thread 1, it
    reads kvm_vcpu = NULL before the next run stores its vCPU, and its late
    clear in kvm_no_guest wipes it (about 47,000 executions: minutes)."""
    from vcoresim.engine.ops import Nap, Store, atomic_add, isync, lwsync
    from vcoresim.kvm import book3s_hv_rmhandlers as rm
    from vcoresim.kvm.state import KVM_HWTHREAD_IN_NAP, hstate, mfrr, vcore

    def secondary_nap_c_only(k, cpu, v):  # type: ignore[no-untyped-def]
        yield Store(hstate(cpu, "kvm_vcpu"), None)
        yield lwsync()
        yield Store(mfrr(cpu), rm.MFRR_NONE)
        yield lwsync()
        yield atomic_add(vcore(k.vcore_of(v), "nap_count"), 1)
        yield isync()
        yield Store(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_NAP)
        yield Nap("nap (kvm_no_guest)")

    monkeypatch.setattr(rm, "secondary_nap", secondary_nap_c_only)
    res = run("stray-ipi@vcpu-pointer", tmp_path)
    assert res.verdict == "violation" and res.invariant == "runnable-vcpu-dispatched"
    trace = ops(res)
    stray = next(i for i, (a, _o) in enumerate(trace) if a == "stray_ipi")
    read_null = next(i for i, (a, o) in enumerate(trace) if i > stray and a == "cpu1" and o == "load paca[1].kvm_hstate.kvm_vcpu")
    given = next(i for i, (a, o) in enumerate(trace) if i > read_null and a == "cpu0" and o.startswith("store paca[1].kvm_hstate.kvm_vcpu = 1"))
    assert trace[-1] == ("cpu1", "store paca[1].kvm_hstate.kvm_vcpu = None") and given < len(trace) - 1
