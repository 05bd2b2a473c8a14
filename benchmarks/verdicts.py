"""Mutation kill rate of the built-in scenarios, mutation-run timing, and the
cost of recording unreached code.

    python benchmarks/verdicts.py mutation [SCENARIO ...] [--mutant-executions N] [--workers N] [--json FILE]
    python benchmarks/verdicts.py coverage [SCENARIO ...] [--repeat N]
    python benchmarks/verdicts.py union OUT.json [OUT.json ...]
    python benchmarks/verdicts.py retable docs/mutation-survivors.md NEW.json [...] --prior-relevant N
    python benchmarks/verdicts.py sites docs/mutation-survivors.md [--files kvm/hmi.py,...]

``mutation``: for each scenario (default: every built-in scenario whose
expected verdict is ``holds``), ``check --mutate`` with every mutation kind
and the given per-mutant execution budget; prints sites, mutants, killed,
survived (in a complete check / within the budget), equivalent, kill rate
and wall time per scenario, and the totals.  ``--json FILE`` keeps every
outcome (what the issue-17 work reads to raise the kill rate).

``union``: the whole check's kill rate over the scenarios of several
``mutation --json`` files (runs with different budgets may be combined; a
mutant of a model line is killed if any scenario kills it), and its
survivors, one line each.

``retable``: a survivor table (docs/mutation-survivors.md) re-checked
against new ``mutation --sites`` runs of other scenarios: the rows they kill
leave it, the rest are reclassified; prints the new whole-check figures.
``sites``: the ``--sites`` pattern of a survivor table's open rows (not
classified, or a gap), to re-run them on other scenarios.

``coverage``: each scenario's check with and without ``unreached`` recording,
alternating, ``--repeat`` times; prints the median wall times and their
ratio (the machine is shared: medians, not single runs).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vcoresim.check.driver import check
from vcoresim.check.mutation import MUTANT_EXECUTIONS, mutate
from vcoresim.engine.strategies.base import Bounds
from vcoresim.scenarios.registry import builtin_scenarios, get_scenario

console = Console(width=160)


def holds_scenarios() -> list[str]:
    return [n for n, sc in builtin_scenarios().items() if sc.expected == "holds"]


def run_mutation(names: list[str], mutant_executions: int, workers: int, out: Path | None, sites: str | None = None) -> None:
    t = Table(title=f"check --mutate, {mutant_executions:,} executions per mutant, {workers} process(es)", title_justify="left")
    for col in ("scenario", "sites", "mutants", "killed", "survived (complete)", "survived (budget)", "equivalent", "kill rate", "wall s"):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    total = {"mutants": 0, "killed": 0, "survived_complete": 0, "survived_budget": 0, "equivalent": 0, "seconds": 0.0}
    docs = []
    for name in names:
        sc = get_scenario(name)
        b = sc.bounds
        start = time.perf_counter()
        run = mutate(
            sc.make({}),
            strategy=sc.strategy,
            bounds=b,
            mutant_bounds=Bounds(b.max_steps, b.max_preemptions, mutant_executions, None),
            seed=sc.seed,
            trace_dir=None,
            workers=workers,
            sites=sites,
        )
        wall = time.perf_counter() - start
        complete = sum(1 for o in run.outcomes if o.status == "survived" and o.result is not None and o.result.verdict == "holds")
        killed = run.count("killed") + run.count("crashed")
        row = {
            "scenario": name,
            "baseline": run.baseline.verdict,
            "sites": run.sites,
            "mutants": len(run.outcomes),
            "killed": killed,
            "survived_complete": complete,
            "survived_budget": run.count("survived") - complete,
            "equivalent": run.count("equivalent"),
            "kill_rate": run.kill_rate,
            "seconds": round(wall, 1),
        }
        docs.append({**row, "outcomes": [o.as_dict(timing=True) for o in run.outcomes]})
        if out is not None:  # after every scenario: a long run keeps what it measured
            out.write_text(json.dumps({"mutant_executions": mutant_executions, "scenarios": docs}, indent=1))
        for k in ("mutants", "killed", "survived_complete", "survived_budget", "equivalent"):
            total[k] += row[k]  # type: ignore[operator]
        total["seconds"] += wall
        rate = "-" if run.kill_rate is None else f"{100 * run.kill_rate:.0f}%"
        t.add_row(name, str(run.sites), str(row["mutants"]), str(killed), str(complete), str(row["survived_budget"]), str(row["equivalent"]), rate, f"{wall:.0f}")
        console.print(f"{name}: {run.summary()} ({wall:.0f} s)", markup=False)
    union = whole_check(docs)
    if out is not None:
        out.write_text(json.dumps({"mutant_executions": mutant_executions, "scenarios": docs, "total": total, "whole_check": union}, indent=1))
    console.print(
        f"whole check (a mutant of a model line is killed if any scenario kills it): {union['killed']} of {union['relevant']} non-equivalent mutants killed"
        + (f" ({100 * union['killed'] / union['relevant']:.0f}%)" if union["relevant"] else "")
        + f"; {union['survived']} survived, {union['equivalent']} equivalent in every scenario that ran them",
        markup=False,
    )
    relevant = total["mutants"] - total["equivalent"]
    rate = f"{100 * total['killed'] / relevant:.0f}%" if relevant else "-"
    t.add_row("total", "", str(total["mutants"]), str(total["killed"]), str(total["survived_complete"]), str(total["survived_budget"]), str(total["equivalent"]), rate, f"{total['seconds']:.0f}")
    console.print(t)
    if out is not None:
        out.write_text(json.dumps({"mutant_executions": mutant_executions, "scenarios": docs, "total": total}, indent=1))


def whole_check(docs: list[dict]) -> dict:
    """The kill rate of ``vcoresim check`` as a whole: the same mutant (kind and
    model source line) reached by several scenarios is one mutant, killed if
    any of them kills it, equivalent if every one that has it calls it so."""
    by_key: dict[tuple, list[dict]] = {}
    for d in docs:
        for o in d["outcomes"]:
            key = (o["kind"], o["file"], o["line"])
            by_key.setdefault(key, []).append({**o, "scenario": d["scenario"]})
    rows = []
    for (kind, file, line), outs in sorted(by_key.items(), key=lambda kv: (kv[0][1], kv[0][2], kv[0][0])):
        killed = [o for o in outs if o["status"] in ("killed", "crashed")]
        if killed:
            status = "killed"
        elif all(o["status"] == "equivalent" for o in outs):
            status = "equivalent"
        else:
            status = "survived"
        rows.append({
            "kind": kind, "file": file, "line": line, "function": outs[0]["function"], "what": outs[0].get("what"),
            "status": status, "caught_by": killed[0]["caught_by"] if killed else None, "killed_in": [o["scenario"] for o in killed],
            "scenarios": [o["scenario"] for o in outs],
            # survived a complete check of some scenario: not a sample artefact
            "complete": status == "survived" and any(o.get("coverage") == "complete" for o in outs),
        })
    n = {s: sum(1 for r in rows if r["status"] == s) for s in ("killed", "survived", "equivalent")}
    return {**n, "mutants": len(rows), "relevant": len(rows) - n["equivalent"], "mutants_detail": rows}


def run_coverage(names: list[str], repeat: int) -> None:
    t = Table(title=f"check with and without unreached-code recording (median of {repeat})", title_justify="left")
    for col in ("scenario", "executions", "plain s", "recording s", "ratio", "places unreached"):
        t.add_column(col, justify="left" if col == "scenario" else "right")
    for name in names:
        sc = get_scenario(name)
        plain, rec = [], []
        n_unreached = execs = 0
        for _ in range(repeat):
            for coverage, times in ((False, plain), (True, rec)):
                start = time.perf_counter()
                r = check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, coverage=coverage)
                times.append(time.perf_counter() - start)
                execs = r.stats.executions
                if coverage and r.extra.get("unreached"):
                    n_unreached = len(r.extra["unreached"]["unreached"])
        p, c = statistics.median(plain), statistics.median(rec)
        t.add_row(name, f"{execs:,}", f"{p:.2f}", f"{c:.2f}", f"{c / p:.2f}", str(n_unreached))
    console.print(t)


#: Survivors whose reason was worked out by reading the model and the kernel
#: (function, what the operation does) -> class: reason.  Anything else is
#: listed as not classified.
SURVIVOR_NOTES: dict[tuple[str, str], str] = {
    ("*", "nap_state_lost"): "gap of the model: nothing in the model reads nap_state_lost (the kernel's wake-up restores the non-volatile registers by it, which the model does not have)",
    ("qemu_vcpu_thread", "vm[*].shutdown"): "gap of the scenarios: with 1 vCPU no other vCPU thread reads it; with 2 (smt-vcore, sampled) the other thread reads it only after its own KVM_RUN returns, one operation later either way",
    ("stray_ipi_source", "ipi"): "equivalent by construction: the fault source (not kernel code); without the stray IPI the fixed kernel holds too",
    ("signal_source", "thread_done"): "equivalent by construction: the fault source's early stop (not kernel code)",
    ("kvm_no_guest", "hwthread_state = 1"): "equivalent: a grab waits only while hwthread_state is IN_KERNEL, so a thread napping with IN_KVM is grabbed the same",
    ("kvm_start_guest", "hwthread_state = 2"): "equivalent in effect: IN_KERNEL while in real-mode KVM code only makes a grab wait; kvm_no_guest publishes IN_NAP before the nap",
    ("local_irq_disable", "soft_enabled = 0"): "equivalent: hard_irq_disable stores the same value next; an interrupt in between is handled at once, and what it flagged is tested after",
    ("masked_interrupt", "mfrr"): "equivalent under the model's approximation: a masked IPI is replayed either way (the kernel leaves the source asserted)",
    ("kvmppc_vcpu_run_hv", "exit_reason"): "equivalent: QEMU's loop treats a None and an INTR exit reason alike",
    ("chiptod_recover_tb_errors", "tb_valid = 1"): "equivalent in the model: the TB is reloaded twice (each thread's opal_handle_hmi and the leader's resync); either one suffices",
    ("opal_resync_timebase", "tb_valid = 1"): "equivalent in the model: the TB is reloaded twice (each thread's opal_handle_hmi and the leader's resync); either one suffices",
    ("tb_error_source", ""): "equivalent by construction: the fault source (not kernel code)",
    ("prepare_threads", "BUSY_IN_HOST"): "equivalent: kvmppc_run_vcpu's loop sees the signal next and stores the same values (V2)",
    ("hard_irq_disable", "soft_enabled = 0"): "equivalent while EE is off: nothing is masked lazily with interrupts hard-disabled, and the replay stores soft_enabled = 1 anyway",
    ("kvmppc_run_core", "vcore_state = 5"): "gap of the scenarios: EXITING only turns away a late joiner, and the entry model runs one vCPU",
    ("kvmppc_run_core", "vcore_state = 0"): "equivalent: on the back-out path the vcore is still INACTIVE; on the exit path the store is under vc->lock, so moving it past the next operation is invisible (dropping it there is killed)",
    ("post_guest_process", "trap = 0"): "equivalent: kvmppc_run_vcpu resets trap at the next KVM_RUN (V1)",
    ("kvm_vcpu_thread", "sigpending = 0"): "gap of the budget: KVM_RUN then returns -EINTR forever (a livelock the step bound reports in a complete check, which 400 executions did not reach)",
    ("kick_process", "sigpending = 1"): "gap: the signal is lost (the IPI still exits the guest); a liveness property 'every signal sent reaches QEMU' would catch it",
    ("kvmppc_handle_exit_hv", "exit_reason"): "gap: the shutdown exit reason is what ends the workload; dropping it is a livelock the step bound should report within a complete check",
    # issue 17, third session (the vcore scenarios re-run at 200-1,000 executions per mutant)
    ("kvmppc_run_core", "vcore_running = 2"): "equivalent in the model: a late join also tests VCORE_IS_EXITING (the exit half of entry_exit_count, set from the first exit until the next run resets it), so no vCPU joins once the exit began either way",
    ("kvmppc_run_core", "vcore_running = 0"): "equivalent: stored under vc->lock, and the operation it moves past is a load of the runnable list under the same lock (dropping it is killed)",
    ("kvmppc_run_core", "preempt_count"): "equivalent: preempt_count is the runner's own per-CPU count; moved past one operation it is still set before the entry stores in_guest = 1 and cleared before the vcore goes INACTIVE (dropping either is killed by vcore-state-consistent)",
    ("qemu_vcpu_thread", "thread_done"): "equivalent: QEMU's last store, moved past do_exit's first operation; vcpus-complete reads it when the run ends (dropping it is killed)",
    ("kvm_vcpu_thread", "thread_done"): "equivalent: QEMU's last store, moved past do_exit's first operation; vcpus-complete reads it when the run ends (dropping it is killed)",
    ("guest_run", "guest_rounds"): "equivalent by construction: the guest's own workload counter (guest code, not kernel code; a guest that stops early is a legal guest; dropping it, a guest that never stops, is killed)",
    ("guest_run", "hcall"): "equivalent by construction: the guest's hcall number (guest code, not kernel code), read by the host only after the exit",
    ("kvmppc_hv_entry", "lpid = -1"): "gap of the model: the reserved LPID is a transient value the same thread overwrites at its next store; it guards TLB entries made between the LPIDR and LPCR/SDR1 writes, which the model does not have",
    ("kvmppc_guest_exit", "lpid = -1"): "gap of the model: the reserved LPID is a transient value the same thread overwrites at its next store; it guards TLB entries made between the LPIDR and LPCR/SDR1 writes, which the model does not have",
    ("icp_ack_clear", "xirr"): "equivalent: the accept only keeps the presenter from presenting another IPI until the EOI two stores later, and the thread (real mode, EE off) takes no interrupt and does not nap in between",
    ("icp_ack_clear", "mfrr"): "equivalent as a swap: the MFRR clear moves past the EOI, and the thread (real mode, EE off) takes nothing in between; dropping it is killed (a nap that wakes at once, forever)",
    ("kvmppc_run_vcpu", "ret = 0, vcpu[*].trap = 0, vcpu[*].exit_reason = None"): "equivalent in the model: the runner stores ret and trap = 0 for every vCPU it ran (V1); a stale exit_reason reaches QEMU only with -EINTR or -EBUSY, where QEMU reads it only to delay for an hcall",
    ("invert-load kvmppc_run_vcpu", "load vcpu[*].ret"): "equivalent in effect: the inverted ret only chooses between returning to QEMU, which calls KVM_RUN again (exit_reason, not ret, decides what QEMU does), and a spurious block of the vCPU until its DEC timer fires",
    ("drop-store kvmppc_vcpu_block", "BUSY_IN_HOST"): "equivalent: the vCPU stays BLOCKED and counted in n_blocked, which is the original's state between the task's wake-up and kvmppc_vcpu_unblocked; kvmppc_run_vcpu makes a BLOCKED vCPU runnable and decrements n_blocked itself; a DEC timer left armed only adds a spurious wake-up",
    ("invert-load kvmppc_run_core", "sigpending"): "equivalent in effect: a spurious -EINTR sends QEMU round and back into KVM_RUN; a missed one is seen by kvmppc_run_vcpu's own signal test on its next pass",
    ("invert-load kvmppc_h_cede", "prodded"): "equivalent in effect, and a gap of the scenarios: a cede that returns at once without napping is legal (the guest runs or cedes again); no scenario prods a vCPU (prodded is never 1), so the prod path is not exercised",
    ("swap kvmppc_h_cede", "napping = 1"): "equivalent: moved past the lwsync to the entry_exit_count load, still before the nap (dropping it is killed by kvm-nap-routable)",
    ("drop-store kvm_do_nap", "lpcr_pece1 = 1"): "gap: the cede nap no longer wakes on the guest's decrementer, only on an IPI; every scenario ends the cede with the exit's IPI. A liveness property 'a ceded vCPU wakes when its DEC expires' with a cede nothing else ends would catch it",
    ("swap kvm_do_nap", "lpcr_pece1 = 1"): "equivalent: a swap is not moved past a nap, and the nap is the next operation: the order is unchanged",
    ("swap power7_nap", "saved_r1"): "equivalent: moved past the nap_state_lost store; saved_r1 is read only by this thread's wake-up, after the nap",
    ("swap pnv_powersave_common", "saved_r1"): "equivalent: moved past the nap_state_lost store; saved_r1 is read only by this thread's wake-up, after the nap",
    ("swap power7_nap", "hwthread_state = 1"): "equivalent: a swap is not moved past a nap, and the nap is the next operation: the order is unchanged",
    ("swap pnv_enter_arch207_idle_mode", "hwthread_state = 1"): "equivalent: a swap is not moved past a nap, and the nap is the next operation: the order is unchanged",
    ("swap pnv_powersave_wakeup", "hwthread_state = 0"): "gap of the budget: moved past the sync to the hwthread_req load, it breaks the store-buffering pair grab-sound describes (G1-G3 against S2-S4); only a grab racing with a wake-up (stray-ipi@p8-fixed's stray IPI) shows it, and its per-mutant checks are samples",
    ("swap dec_timer_source", "dec_timer = 0"): "equivalent: the timer's store is delayed past the first operation of the wake-up it precedes; the woken task reads dec_timer only after it runs",
    # issue 17, fourth session (branch kill17b): the survivors of a complete
    # check read against the model and the kernel.  "KIND FUNCTION": that kind only.
    # seed 002 (kvm/hmi.py, machine/opal.py)
    ("swap kvmppc_hv_entry", "subcore[*].lpid = 1"): "equivalent: the LPIDR matters only while guest code runs or host code runs with the MMU on (subcore-partition); moved past E3's TB load it is still set before the hrfid",
    ("swap kvmppc_hv_entry", "core[*].tb[*] = 16777216"): "equivalent: moved past E5's in_guest = 1; a thread that sees in_guest set waits (R2/K4) and leaves the TB alone, and one already past its wait races with the TB add the same way in both orders",
    ("swap kvmppc_hv_entry", "subcore[*].lpid = 0"): "equivalent: moved past the exit path's next operation (K2's test-and-set or X6's TB load), still in real mode: nothing translates with the LPIDR before the rfid",
    ("swap kvmppc_hv_entry", "core[*].tb[*] = 0"): "gap of the timebase abstraction: X6 moved past X7 lets a host thread's OPAL reload the TB between them and the subtract write back a TB read before the reload (seed 002's race itself); the model keeps TB - TOD and no time passes while checking, so the stale value equals the reload's. A TB that runs during the check (or one not kept relative to the TOD) would catch it",
    ("swap kvmppc_hv_entry", "sibling_subcore_state.in_guest[*] = 0"): "equivalent: moved past X8's store to the subcore's own HDEC, which only its guest reads; the waiters (R2/K4) see in_guest clear one step later, a subset of the original's interleavings",
    ("drop-store kvmppc_hv_entry", "subcore[*].hdec_expired = 0"): "equivalent in effect: a stale expired HDEC only makes the subcore's next guest entry exit at once (a spurious HDEC exit, which the kernel resumes from); no invariant is about timeslice lengths",
    ("swap kvmppc_hv_entry", "subcore[*].hdec_expired = 0"): "equivalent: moved past the host code's TB read; only the subcore's guest reads its HDEC",
    ("invert-load opal_handle_hmi", "tb_valid"): "equivalent in the model: with hmi-subcore-sync the leader's opal_resync_timebase reloads the TB unconditionally once every subcore is out, so a skipped reload is redone; an extra reload of a valid TB happens only after the R2/K4 waits (no subcore in a guest) and writes what the host TB holds",
    ("swap opal_handle_hmi", "hmer_tfac = 0"): "equivalent: HMER is the thread's own register, read only by its own HMI delivery, and the thread is in the handler (real mode) across the unlock the clear moves past",
    # seed 004 (kvm/entry_p9.py): the runner's own real-mode / EE-off sequence
    ("swap local_irq_enable", "soft_enabled = 1"): "equivalent: both callers (the back-out and the replay after the exit) run it hard-disabled (EE off), so no interrupt can see soft_enabled between the store and the irq_happened load it moves past",
    ("swap host_interrupt_handler", "mfrr = 255"): "equivalent in effect: moved past the handler's next operation with EE off; a second IPI stored in that window would be lost, but every modelled IPI carries a flag (sigpending, need_resched) the fixed entry path rechecks before the guest (C6')",
    ("swap kvmppc_run_vcpu", "'BUSY_IN_HOST', vcpu[*].ret = -4"): "equivalent in effect: the next operation loads ret, which then reads the previous run's value: KVM_RUN returns it instead of -EINTR, QEMU does not clear the signal, and the next KVM_RUN's signal test returns -EINTR at once (one round trip more)",
    ("swap kvmppc_run_core", "vcore_state = 4"): "equivalent: RUNNING and preempt_count = 1 are both stored under vc->lock before the unlock; nothing reads either in between",
    ("swap kvmppc_handle_exit_hv", "exit_reason"): "equivalent as a swap: the store still precedes QEMU's read after KVM_RUN returns (dropping it is killed: the livelock)",
    ("drop-store kvmppc_prepare_radix_vcpu", "prev_cpu"): "equivalent in effect: prev_cpu only decides whether the next entry flushes the old core's TLB; a stale value makes an extra flush (a cross-call made with interrupts on, safe)",
    ("swap kvmppc_prepare_radix_vcpu", "prev_cpu"): "equivalent: prev_cpu is read only by this vCPU's next entry",
    ("drop-store smp_call_function_single", "csd_lock = 1"): "gap: the sender no longer waits for the remote TLB flush to finish before the guest runs; no invariant says the flush completed (a ghost 'flush done' read at guest entry would catch it)",
    # the host scheduler (kvm/host.py): rq->lock sections and the sleep / wake-up pair
    ("swap send_signal", "sigpending = 1"): "equivalent: moved past the rq->lock acquire; a lock-free reader sees the flag one step later (as if the signal came later), and schedule()'s signal test runs under the lock the sender then holds",
    ("swap try_to_wake_up", "state = 'R'"): "equivalent: under rq->lock, moved past the queue load; the only lock-free writer of the state is the task itself (set_current_state), and a state it stores in the window is overwritten by RUNNING: a spurious wake-up, which every wait loop re-checks",
    ("drop-store try_to_wake_up", "state = 'R'"): "gap of the bounds (argued): a woken task that has set its state but not yet slept (ttwu_runnable: not queued) then sleeps in schedule() and is never woken; the window needs the waker to run between the sleeper's set_current_state and its schedule()",
    ("swap set_current_state", "state = 'X'"): "gap of the bounds (argued): moved past smp_mb to the sleeper's condition test, it breaks the store-buffering pair with try_to_wake_up (a lost wake-up); visible only with the waker inside the window (smt-vcore@1p, 1 preemption, sampled)",
    ("swap try_to_wake_up_many", "rq[*].queue"): "gap of the bounds: a store under rq->lock moved past the unlock; the same shape in try_to_wake_up is killed by smt-vcore@1p (1 preemption), here only samples ran",
    ("swap schedule", "rq[*].queue = ()"): "gap of the bounds: a store under rq->lock moved past the unlock; the same shape in try_to_wake_up is killed by smt-vcore@1p (1 preemption), here only samples ran",
    ("swap schedule", "rq[*].curr"): "gap of the bounds: a store under rq->lock moved past the unlock (see try_to_wake_up's, killed by smt-vcore@1p)",
    ("drop-store schedule", "rq[*].curr"): "gap of the bounds (argued): rq->curr still names the task that left the CPU, so a wake-up of it is taken for ttwu_runnable and not queued (a lost wake-up) when it is woken while another task runs there; not reached within the scenarios' preemption bounds",
    ("swap kvmppc_vcpu_block", "BLOCKED"): "gap of the bounds: a store under vc->lock moved past the unlock (when no wake-up follows); a runner taking the lock in the window counts n_blocked without this vCPU; the same shape in try_to_wake_up is killed by smt-vcore@1p",
    ("swap generic_smp_call_function_single_interrupt", "mfrr = 255"): "gap of the scenario: moved past csd_unlock, the MFRR clear could erase a second IPI sent to the target once the sender is released; the scenario makes one cross-call (a second flush, or another IPI source on the target's core, would show it)",
    ("swap generic_smp_call_function_single_interrupt", "csd_lock = 0"): "equivalent: csd_unlock only releases the sender's csd_lock_wait; delayed past the target's next operation it keeps every other order (a subset of the original's interleavings)",
    ("swap kvmppc_start_thread", "kvm_hstate.kvm_vcpu = 0"): "equivalent: the runner's own PACA fields, read by its exit path and the guest-context check, both after the operation it moves past",
    ("swap __kvmppc_vcore_entry", "host_msr"): "equivalent: only this thread reads host_msr, at X2",
    ("swap kvmppc_hv_entry", "core[*].lpid = 1"): "equivalent: LPIDR and in_guest are both stored in real mode with EE off before the hrfid; nothing reads either in between",
    ("swap kvmppc_interrupt_hv", "trap = 1280"): "equivalent: moved past the next store of the same real-mode exit path (EE off); the guest has stopped and nothing reads trap or in_guest before the return",
    ("swap kvmppc_interrupt_hv", "lpid = 0"): "equivalent: moved past X2's host_msr load, still before the mtmsrd that returns to host code",
    # seeds 000, 001, 003 (kvm/book3s_hv.py, kvm/book3s_hv_rmhandlers.py)
    ("qemu_vcpu_thread", "sigpending = 0"): "gap of the scenarios: the only signal a vCPU thread gets there is QEMU's shutdown signal, after which it reads vm.shutdown = 1 and exits; with a signal that is not a shutdown (smt-vcore@double-start-fixed has one) the dropped clear makes every KVM_RUN return -EINTR, and the swap loses a second signal racing with it",
    ("kvmppc_vcpu_run", "exit_reason = 'KVM_EXIT_INTR'"): "equivalent: QEMU branches on exit_reason only for PAPR_HCALL (a delay) and SHUTDOWN (after which the thread never calls KVM_RUN again, so it is never stale); with -EINTR a stale reason at most adds the hcall delay",
    ("swap kvmppc_run_vcpu", "state = 'RUNNABLE'"): "equivalent: stored under vc->lock and moved past this thread's next load of other fields under the same lock",
    ("drop-store kvmppc_run_vcpu", "store vcpu[*].ret = -4"): "equivalent in effect: KVM_RUN returns the 0 stored at its start instead of -EINTR; QEMU calls it again (or reads vm.shutdown first) and kvmppc_vcpu_run's signal test returns -EINTR for the still-pending signal",
    ("swap kvmppc_run_vcpu", "store vcpu[*].ret = -4"): "equivalent: under vc->lock, moved past the load of the vCPU's state only; ret is loaded after it",
    ("swap kvmppc_remove_runnable", "BUSY_IN_HOST"): "equivalent: under vc->lock, moved past the caller's next operation under the same lock, which touches none of these fields",
    ("swap kvmppc_run_core", "ret = 1, vcpu[*].trap = 0"): "equivalent: the vCPU's task reads ret and trap only after the runner wakes it, later, under vc->lock",
    ("swap kvmppc_start_thread", "n_woken"): "equivalent: stored by the runner under vc->lock; kvmppc_wait_for_nap and the counters read it under the same lock",
    ("swap kvmppc_release_hwthread", "hwthread_req = 0"): "equivalent: delays one sibling's release past the next sibling's release (or the runner's lock); each sibling reads only its own PACA, so each sees a state the original has (released later)",
    ("kvmppc_handle_exit", "exit_reason = None"): "equivalent: a store of the value the location holds: kvmppc_run_vcpu stored exit_reason = None at this KVM_RUN's start and every other store to it ends the run first",
    ("swap kvmppc_handle_exit", "KVM_EXIT_PAPR_HCALL"): "equivalent: the vCPU's task reads exit_reason only after KVM_RUN returns, after the runner wakes it",
    ("secondary_nap", "kvm_vcpu = None"): "gap of the scenario: kvmppc_release_hwthread clears the same pointer before the vcore leaves RUNNING; only a wake-up between the nap and the release (a stray IPI, as in stray-ipi@p8-fixed, sampled there) would run the finished vCPU again (interleaving C of seed 000)",
    ("swap kvmppc_hv_entry", "vcore[*].in_guest = 1"): "equivalent: moved past the primary's own kvm_hstate.in_guest store, before its hrfid; the secondaries waiting on it (E4) are released one step later, a subset of the original's interleavings",
    ("swap kvmppc_guest_exit", "kvm_hstate.in_guest = 0"): "equivalent: moved past the trap store of the same real-mode exit path; guest-mode-flag reads the flag only while the thread runs guest code or host code with the MMU on",
    ("swap kvmppc_guest_exit", "trap = 3072"): "gap of the bounds: moved past the lwsync and the exit count, the primary could see every exit counted before the trap is stored and read a stale trap; visible only if the secondary is preempted across the whole of the primary's exit (beyond 0 preemptions; stray-ipi@fixed, unbounded, samples it)",
    ("kvmppc_guest_exit", "hdec_expired = 1"): "gap: the first thread out no longer fires the core's HDEC, so the others stay in the guest until their own timeslice ends; a bound on how long a run takes to exit once it began (idle-wakeup-lockup.md section 5, liveness 7) would catch it",
    ("invert-load kvmppc_guest_exit", "napping_threads"): "gap: the first thread out IPIs the wrong threads (or none), so a ceded thread naps until its own DEC; a bound on how long a run takes to exit once it began (liveness 7) would catch it",
    ("skip-ipi kvmppc_guest_exit", ""): "gap: a ceded thread is not woken for the exit and naps until its own DEC; a bound on how long a run takes to exit once it began (liveness 7) would catch it",
    ("swap kvmppc_guest_exit", "core[*].lpid = 0"): "equivalent in the model: moved past vc->in_guest = 0, the secondaries it releases go to nap in real mode (secondary_nap), so none runs host code with the MMU on before the primary's store",
    ("swap kvmppc_guest_exit", "vcore[*].in_guest = 0"): "equivalent: moved past the clear of the core's HDEC, which only guest code reads, and every thread has counted its exit",
    ("drop-store kvmppc_guest_exit", "core[*].hdec_expired = 0"): "equivalent in effect: a stale expired HDEC only makes the next run's guests exit at once (a spurious HDEC exit); no invariant is about timeslice lengths",
    ("swap kvmppc_guest_exit", "core[*].hdec_expired = 0"): "equivalent: the core's HDEC is read only by guest code, and no thread is in the guest",
    ("kvmppc_h_cede", "ceded"): "gap of the model: nothing in the model reads vcpu->arch.ceded (the kernel reads it in the host's run loop, n_ceded / kvmppc_vcore_check_block, and in kvmppc_fast_vcpu_kick, which the model does not have)",
    ("kvm_cede_cleanup", "ceded"): "gap of the model: nothing in the model reads vcpu->arch.ceded (the kernel reads it in the host's run loop, n_ceded / kvmppc_vcore_check_block, and in kvmppc_fast_vcpu_kick, which the model does not have)",
    ("swap kvm_cede_cleanup", "napping = 0"): "equivalent: moved past the ceded store, still before the thread re-enters the guest or takes the exit path (dropping it is killed by napping-truthful)",
    ("kvm_cede_cleanup", "lpcr_pece1 = 0"): "equivalent in the kernel's terms: kvm_end_cede does not clear LPCR[PECE1] (the model's clear is its own bookkeeping, see kvm_cede_cleanup); the stale dec_expired half matters only to a later nap of the same thread with PECE1 set, which no scenario reaches (a gap of the bounds: a second cede)",
    ("swap kvmppc_h_cede", "host_r1"): "equivalent: moved past kvm_do_nap's hwthread_req store, still before the nap; only kvm_end_cede reads host_r1, after the wake-up",
    ("swap kvm_do_nap", "hwthread_req = 1"): "equivalent: moved past the LPCR store, still before the nap; the request matters only to this thread's wake-up",
}


def classify(row: dict) -> str:
    if row["status"] == "equivalent":
        return "equivalent: a barrier under sc (not run)"
    what = row.get("what") or ""
    stored = re.findall(r"(?:^store |, )(\w+)\[[^\]]*\]\S* = ", what)  # the locations' kinds (a value may hold ", ")
    if what.startswith("store ") and stored and all(kind == "ghost" for kind in stored):
        return "equivalent: ghost state a monitor latches, not kernel state"
    # "KIND FUNCTION" keys (one mutation kind only) first, then function-wide ones.
    for specific in (True, False):
        for (key, frag), note in SURVIVOR_NOTES.items():
            kind, _, fn = key.rpartition(" ")
            if bool(kind) != specific or (kind and kind != row["kind"]):
                continue
            if (fn == "*" or fn == row["function"]) and frag in what:
                return note
    if row.get("complete"):
        return "not classified: survived a complete check (equivalent there, or a gap), not read yet"
    if row["kind"] == "swap":
        return "not classified: a store moved after the thread's next operation, unobserved within the budget (under sc most such swaps are invisible)"
    return "not classified: not caught within the budget (equivalent here, or a gap)"


def run_union(files: list[Path]) -> None:
    docs = [d for f in files for d in json.loads(f.read_text())["scenarios"]]
    union = whole_check(docs)
    rel = union["relevant"]
    console.print(f"{len(docs)} scenarios: {', '.join(d['scenario'] for d in docs)}", markup=False)
    rate = f" ({100 * union['killed'] / rel:.0f}%)" if rel else ""
    console.print(f"whole check: {union['killed']} of {rel} non-equivalent mutants killed{rate}; {union['survived']} survived; {union['equivalent']} equivalent", markup=False)
    print("| kind | site | operation | scenarios | class |")
    print("| --- | --- | --- | --- | --- |")
    for r in union["mutants_detail"]:
        if r["status"] != "killed":
            what = (r["what"] or "").replace("|", "\\|")
            print(f"| {r['kind']} | `{r['function']}` {r['file']}:{r['line']} | {what} | {', '.join(r['scenarios'])} | {classify(r)} |")


def _table_rows(table: Path) -> list[dict]:
    """The survivor table of docs/mutation-survivors.md, one dict per row."""
    rows = []
    for line in table.read_text().splitlines():
        if not line.startswith("| ") or line.startswith(("| kind", "| ---")):
            continue
        kind, site, what, scenarios, cls = (c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1])
        m = re.match(r"`(\S+)` (\S+):(\d+)$", site)
        if m is None:
            continue
        rows.append({
            "kind": kind, "function": m.group(1), "file": m.group(2), "line": int(m.group(3)), "what": what.replace("\\|", "|"),
            "scenarios": list(dict.fromkeys(scenarios.split(", "))), "status": "equivalent" if cls.startswith("equivalent: a barrier under sc") else "survived",
            "complete": "survived a complete check" in cls,
        })
    return rows


def run_retable(table: Path, files: list[Path], prior_relevant: int) -> None:
    """Re-check a survivor table against new ``mutation --json`` runs (typically
    ``--sites`` runs of other scenarios): a row a new run kills leaves the table;
    the others keep their rows, with the new scenarios added and the class
    recomputed (SURVIVOR_NOTES).  ``prior_relevant``: the non-equivalent mutants
    the table's whole check counted (its headline), killed ones included."""
    rows = _table_rows(table)
    outs: dict[tuple, list[dict]] = {}
    for f in files:
        for d in json.loads(f.read_text())["scenarios"]:
            for o in d["outcomes"]:
                outs.setdefault((o["kind"], o["file"], o["line"]), []).append({**o, "scenario": d["scenario"]})
    survivors = [r for r in rows if r["status"] == "survived"]
    prior_killed = prior_relevant - len(survivors)
    newly = []
    kept = []
    for r in rows:
        new = outs.get((r["kind"], r["file"], r["line"]), [])
        killed = [o for o in new if o["status"] in ("killed", "crashed")]
        if r["status"] == "survived" and killed:
            newly.append((r, killed[0]))
            continue
        r["scenarios"] = list(dict.fromkeys(r["scenarios"] + [o["scenario"] for o in new]))
        r["complete"] = r["complete"] or any(o.get("coverage") == "complete" for o in new)
        kept.append(r)
    killed_total = prior_killed + len(newly)
    left = [r for r in kept if r["status"] == "survived"]
    classes = [classify(r) for r in left]
    n_con = sum(c.startswith("equivalent by construction") for c in classes)
    n_eq = sum(c.startswith("equivalent") for c in classes)
    n_gap = sum(c.startswith("gap") for c in classes)
    n_open = sum(c.startswith("not classified") for c in classes)
    console.print(f"{len(newly)} survivors killed by the new runs:", markup=False)
    for r, o in newly:
        console.print(f"  {r['kind']} {r['function']} {r['file']}:{r['line']} {r['what'][:60]} <- {o['scenario']} ({o['caught_by']})", markup=False)
    console.print(
        f"whole check: {killed_total} of {prior_relevant} non-equivalent mutants killed ({100 * killed_total / prior_relevant:.0f}%); "
        f"{len(left)} survived: {n_eq} equivalent (argued; {n_con} of them by construction: fault sources, guest code), {n_gap} gaps, {n_open} not classified; "
        f"without the argued equivalents: {killed_total} of {prior_relevant - n_eq} ({100 * killed_total / (prior_relevant - n_eq):.0f}%)",
        markup=False,
    )
    print("| kind | site | operation | scenarios | class |")
    print("| --- | --- | --- | --- | --- |")
    for r in kept:
        what = r["what"].replace("|", "\\|")
        print(f"| {r['kind']} | `{r['function']}` {r['file']}:{r['line']} | {what} | {', '.join(r['scenarios'])} | {classify(r)} |")


def run_sites(table: Path, files: str | None) -> None:
    """The ``--sites`` pattern of a survivor table's open rows (not classified,
    or a gap), optionally only those of the model files named (comma-separated)."""
    want = None if files is None else {f.strip() for f in files.split(",")}
    pats = [
        f"{r['kind']} {r['function']} {r['file']}[:]{r['line']}"
        for r in _table_rows(table)
        if r["status"] == "survived" and classify(r).startswith(("not classified", "gap")) and (want is None or r["file"] in want)
    ]
    print(",".join(pats))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("mutation", "coverage", "union", "retable", "sites"))
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--mutant-executions", type=int, default=MUTANT_EXECUTIONS)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sites", default=None, help="only mutants of these sites (as check --mutate --sites): re-check survivors after a change")
    ap.add_argument("--prior-relevant", type=int, default=None, help="retable: the non-equivalent mutants of the table's headline")
    ap.add_argument("--files", default=None, help="sites: only rows of these model files (comma-separated, e.g. kvm/hmi.py)")
    a = ap.parse_args()
    if a.what == "sites":
        run_sites(Path(a.scenarios[0]), a.files)
    elif a.what == "retable":
        if a.prior_relevant is None or not a.scenarios:
            ap.error("retable needs the survivor table, the new --json files and --prior-relevant")
        run_retable(Path(a.scenarios[0]), [Path(x) for x in a.scenarios[1:]], a.prior_relevant)
    elif a.what == "union":
        run_union([Path(x) for x in a.scenarios])
    elif a.what == "mutation":
        run_mutation(a.scenarios or holds_scenarios(), a.mutant_executions, a.workers, a.json, a.sites)
    else:
        run_coverage(a.scenarios or ["stray-ipi@fixed", "hmi-tb-resync@split2-fixed", "signal-entry-race@fixed", "p8-idle-lockup@fixed"], a.repeat)


if __name__ == "__main__":
    sys.exit(main())
