"""Mutation kill rate of the built-in scenarios, mutation-run timing, and the
cost of recording unreached code.

    python benchmarks/verdicts.py mutation [SCENARIO ...] [--mutant-executions N] [--workers N] [--json FILE]
    python benchmarks/verdicts.py coverage [SCENARIO ...] [--repeat N]
    python benchmarks/verdicts.py union OUT.json [OUT.json ...]

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
    ("*", "nap_state_lost"): "equivalent in the model: nothing reads nap_state_lost (the non-volatile register restore it guards is not modelled)",
    ("qemu_vcpu_thread", "vm[*].shutdown"): "equivalent with 1 vCPU (no other vCPU thread reads it); a gap of the scenario, read with 2 vCPUs",
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
    ("kvmppc_run_core", "vcore_state = 5"): "equivalent with one vCPU: EXITING only turns away a late joiner (the entry model runs one vCPU)",
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
    ("kvmppc_hv_entry", "lpid = -1"): "equivalent in the model: the reserved LPID is a transient value the same thread overwrites at its next store; it guards TLB entries made between the LPIDR and LPCR/SDR1 writes, which the model does not have",
    ("kvmppc_guest_exit", "lpid = -1"): "equivalent in the model: the reserved LPID is a transient value the same thread overwrites at its next store; it guards TLB entries made between the LPIDR and LPCR/SDR1 writes, which the model does not have",
    ("icp_ack_clear", "xirr"): "equivalent: the accept only keeps the presenter from presenting another IPI until the EOI two stores later, and the thread (real mode, EE off) takes no interrupt and does not nap in between",
    ("icp_ack_clear", "mfrr"): "equivalent as a swap: the MFRR clear moves past the EOI, and the thread (real mode, EE off) takes nothing in between; dropping it is killed (a nap that wakes at once, forever)",
    ("kvmppc_run_vcpu", "ret = 0, vcpu[*].trap = 0, vcpu[*].exit_reason = None"): "equivalent in the model: the runner stores ret and trap = 0 for every vCPU it ran (V1); a stale exit_reason reaches QEMU only with -EINTR or -EBUSY, where QEMU reads it only to delay for an hcall",
}


def classify(row: dict) -> str:
    if row["status"] == "equivalent":
        return "equivalent: a barrier under sc (not run)"
    what = row.get("what") or ""
    stored = re.findall(r"(?:^store |, )(\w+)\[[^\]]*\]\S* = ", what)  # the locations' kinds (a value may hold ", ")
    if what.startswith("store ") and stored and all(kind == "ghost" for kind in stored):
        return "equivalent: ghost state a monitor latches, not kernel state"
    for (fn, frag), note in SURVIVOR_NOTES.items():
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=("mutation", "coverage", "union"))
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("--mutant-executions", type=int, default=MUTANT_EXECUTIONS)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--sites", default=None, help="only mutants of these sites (as check --mutate --sites): re-check survivors after a change")
    a = ap.parse_args()
    if a.what == "union":
        run_union([Path(x) for x in a.scenarios])
    elif a.what == "mutation":
        run_mutation(a.scenarios or holds_scenarios(), a.mutant_executions, a.workers, a.json, a.sites)
    else:
        run_coverage(a.scenarios or ["stray-ipi@fixed", "hmi-tb-resync@split2-fixed", "signal-entry-race@fixed", "p8-idle-lockup@fixed"], a.repeat)


if __name__ == "__main__":
    sys.exit(main())
