"""Issue 17's scenarios that exercise each mechanism away from the seeds'
original setups: a vcore on core 1 (``vm.pin``), stray IPIs on POWER8, cede
and idle in one run, the SMT vcore within 1 preemption.  The unpatched side
is found and replays; the fixed side's verdicts are pinned in the slow tests
(``vcoresim check`` runs them in CI)."""

from __future__ import annotations

from dataclasses import replace
import json
from pathlib import Path

import pytest
from conftest import Cli

from vcoresim.check.driver import check, replay
from vcoresim.scenarios.registry import get_scenario, program_for


def run(name: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    sc = get_scenario(name)
    return check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, trace_out=tmp_path / "t.json")


def test_stray_ipi_on_core1_is_found_on_core1_and_replays(tmp_path: Path) -> None:
    res = run("stray-ipi@core1", tmp_path)
    assert res.verdict == "violation" and res.invariant == "no-host-code-in-guest"
    # the vcore ran on core 1 (pinned runner on cpu 4), the stray IPI hit one of its threads
    assert "core 1 is in partition 1" in res.message and any(f"cpu{c} " in res.message for c in (5, 6, 7))
    doc = json.loads(Path(res.trace).read_text())
    assert any(s["actor"] == "cpu4" and o["op"].startswith("store core[1].lpid") for s in doc["steps"] for o in s["ops"])
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


PINNED = """
name = "pinned"
[machine]
cpu = "POWER7"
cores = 2
[[vm]]
vcpus = [0]
pin = %s
"""


@pytest.mark.parametrize(
    ("pin", "field"),
    [("[0, 4]", "pin: one host CPU per vCPU"), ("[5]", "vm[0].pin: cpu5 is not an online CPU")],
)
def test_pin_errors_name_the_field(cli: Cli, tmp_path: Path, pin: str, field: str) -> None:
    (tmp_path / "p.toml").write_text(PINNED % pin)
    r = cli("check", "p.toml", "--max-executions", "1")
    assert r.code != 0 and len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith("vcoresim: error:")
    assert field in r.stderr_lines[0], r.stderr


def test_pin_is_refused_by_the_entry_model(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "e.toml").write_text('name = "e"\nmodel = "entry"\n[machine]\ncpu = "POWER9"\n[[vm]]\nvcpus = [0]\npin = [0]\n')
    r = cli("check", "e.toml", "--max-executions", "1")
    assert r.code != 0 and "vm.pin" in r.stderr and "Traceback" not in r.stderr


def test_hmi_after_a_normal_exit_and_reentry(tmp_path: Path) -> None:
    """2 guest rounds: the fixed kernel holds with the TB error in either run
    (among them after the first run's HDEC exit); v4.7 still fails."""
    assert run("hmi-tb-resync@reentry", tmp_path).verdict == "violation"
    res = run("hmi-tb-resync@reentry-fixed", tmp_path)
    assert res.verdict == "holds"


def test_hmis_raised_apart_reach_the_e3_gap_without_the_rendezvous(tmp_path: Path) -> None:
    res = run("hmi-tb-resync@per-thread-no-rendezvous", tmp_path)
    assert res.verdict == "violation" and res.invariant == "tb-guest-reads-offset"
    doc = json.loads(Path(res.trace).read_text())
    ops = [(s["actor"], o["op"]) for s in doc["steps"] for o in s["ops"]]
    raised = [op for a, op in ops if a == "tb_error" and op.startswith("store paca[")]
    assert raised == ["store paca[4].hmer_tfac = 1"], raised  # only the host thread's HMI was raised
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["hmi-tb-resync@per-thread-fixed", "hmi-tb-resync@two-guests-per-thread-fixed", "stray-ipi@core1-fixed", "stray-ipi@p8-fixed", "smt-vcore@cede-idle-fixed", "smt-vcore@1p"],
)
def test_fixed_variants_hold_complete(tmp_path: Path, name: str) -> None:
    res = run(name, tmp_path)
    assert res.verdict == "holds", res


def test_host_tick_sets_need_resched_in_its_handler(tmp_path: Path) -> None:
    """Before the fix a tick taken after the last need_resched test lets the
    guest run out its timeslice; with it the tick is latched and replayed."""
    res = run("signal-entry-race@tick", tmp_path)
    assert res.verdict == "violation" and res.invariant == "signal-exits-guest"
    doc = json.loads(Path(res.trace).read_text())
    ops = [o["op"] for s in doc["steps"] for o in s["ops"]]
    assert not any("sendipi" in op.lower() or op.startswith("ipi") for op in ops)  # no IPI, no flag before it
    assert any(op.startswith("store task[qemu-vcpu0].need_resched = 1") for op in ops)
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]
    fixed = run("signal-entry-race@tick-fixed", tmp_path)
    assert fixed.verdict == "holds"


def test_a_tick_while_soft_disabled_is_latched_and_replayed(tmp_path: Path) -> None:
    """The fixed kernel's back-out path: the tick is masked (PACA_IRQ_DEC) and
    replayed by local_irq_enable; coverage shows both ran."""
    from vcoresim.check.driver import check as run_check

    sc = get_scenario("signal-entry-race@tick-fixed")
    res = run_check(sc.make({}), strategy="exhaustive", bounds=sc.bounds, seed=0, coverage=True, trace_dir=tmp_path)
    assert res.verdict == "holds"
    unreached = res.extra["unreached"]["unreached"]
    never = {u["function"] for u in unreached if u["kind"] == "function"}
    assert not never & {"masked_interrupt", "decrementer_common", "timer_interrupt", "local_irq_enable"}, never
    assert not [u for u in unreached if "PACA_IRQ_DEC" in u["text"]]  # the masked tick's branch ran


def test_doorbell_signal_found_before_the_fix_and_replayed_after(tmp_path: Path) -> None:
    """Edge-triggered doorbells: the unpatched kernel still loses the race;
    with the fix a doorbell taken while soft-disabled is latched in
    irq_happened (the doorbell itself consumed) and replayed."""
    res = run("signal-entry-race@doorbell", tmp_path)
    assert res.verdict == "violation" and res.invariant == "signal-exits-guest"
    doc = json.loads(Path(res.trace).read_text())
    ops = [o["op"] for s in doc["steps"] for o in s["ops"]]
    assert any("thread[0].dbell" in op for op in ops) and not any("mfrr" in op and "= 5" in op for op in ops)
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]
    from vcoresim.check.driver import check as run_check

    sc = get_scenario("signal-entry-race@doorbell-fixed")
    fixed = run_check(sc.make({}), strategy="exhaustive", bounds=sc.bounds, seed=0, coverage=True, trace_dir=tmp_path)
    assert fixed.verdict == "holds"
    unreached = fixed.extra["unreached"]["unreached"]
    never = {u["function"] for u in unreached if u["kind"] == "function"}
    assert not never & {"h_doorbell_common", "masked_interrupt", "local_irq_enable"}, never


def test_a_backout_that_leaves_interrupts_off_is_a_liveness_violation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Broken copy: local_irq_enable only soft-enables (no replay, MSR[EE] stays
    off).  The runner backs out on the latched tick again and again; without
    latched-irq-replayed the check only runs into max_steps (bounded; with the
    state cache: holds, with the cycles it closed counted and said, see
    tests/test_state_cache.py), with it the livelock is a violation with a
    trace; with the built-in's whole list lazy-irq-consistent sees it first."""
    from vcoresim.engine.ops import Store
    from vcoresim.kvm import entry_p9

    def local_irq_enable_broken(k, cpu):  # type: ignore[no-untyped-def]
        yield Store(entry_p9.paca(cpu, "soft_enabled"), 1)

    monkeypatch.setattr(entry_p9, "local_irq_enable", local_irq_enable_broken)
    sc = get_scenario("signal-entry-race@tick-fixed")
    # The built-in's whole list: lazy-irq-consistent (a safety invariant) sees it first.
    res0 = check(sc.make({}), strategy="dfs", bounds=sc.bounds, seed=0, trace_out=tmp_path / "t0.json")
    assert res0.verdict == "violation" and res0.invariant == "lazy-irq-consistent", res0.message
    from vcoresim.scenarios import builtin

    cfg = builtin.variant_config(builtin.builtin_config("signal-entry-race"), "tick-fixed")  # type: ignore[arg-type]
    liveness_only = builtin.scenario_for(replace(cfg, invariants=["signal-exits-guest", "latched-irq-replayed", "no-deadlock"])).make({})
    res = check(liveness_only, strategy="dfs", bounds=sc.bounds, seed=0, trace_out=tmp_path / "t.json")
    assert res.verdict == "violation" and res.invariant == "latched-irq-replayed", res.message
    without = builtin.scenario_for(replace(cfg, invariants=["signal-exits-guest", "no-deadlock"])).make({})
    res2 = check(without, strategy="dfs", bounds=sc.bounds, seed=0, cache=False, do_shrink=False, trace_dir=tmp_path)
    assert res2.verdict == "bounded", res2.verdict
