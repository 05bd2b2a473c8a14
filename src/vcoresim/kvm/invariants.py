"""Generic invariants of the machine and the vcore protocol.

Each is a statement about state (memory, MSR bits, what a thread is doing),
never about which patches are in force: a bug is found when the unpatched
model reaches a state that breaks one of them.
"""

from __future__ import annotations

from collections import ChainMap
from typing import TYPE_CHECKING, Any

from vcoresim.engine import ops as O
from vcoresim.engine.msr import MSR_HV, in_host_virtual_mode, msr_str
from vcoresim.engine.world import NAP, RUN, Invariant, Liveness, World
from vcoresim.errors import ConfigError
from vcoresim.kvm.state import (
    BLOCKED,
    KVM_GUEST_MODE_GUEST,
    KVM_GUEST_MODE_NONE,
    KVM_HWTHREAD_IN_KERNEL,
    LPID_HOST,
    LPID_RESERVED,
    NAPPING_CEDE,
    RUNNABLE,
    STOPPED,
    VCORE_EXIT_SHIFT,
    VCORE_EXITING,
    VCORE_RUNNING,
    core,
    grabbed,
    hstate,
    stale_frame,
    vcore,
    vcpu,
    vcpu_started,
    woke_with_req,
    xirr,
)
from vcoresim.machine.thread import dec_expired, lpcr_pece1
from vcoresim.machine.xics import MFRR_NONE, mfrr

if TYPE_CHECKING:
    from vcoresim.engine.runtime import Execution
    from vcoresim.kvm.context import Kvm

#: Seed 000's interlock invariants: checked by default only on a kernel that has the interlock.
INTERLOCK_INVARIANTS = ("hwthread-state-truthful", "grab-sound", "siblings-requested-at-switch", "release-after-switch-back", "no-stale-vcpu")

#: The vcore model's invariants (seeds 000, 001, 003); ``kvm.catalog.INVARIANTS`` lists every model's.
INVARIANTS: dict[str, str] = {
    "no-host-code-in-guest": "safety: while a core is in a guest partition, none of its threads executes host kernel code in virtual mode (MSR[HV]=1, IR=1)",
    "req-honoured": "safety: a thread that wakes from nap while its hwthread_req is set reaches kvm_start_guest before running host code with the MMU on while the request stands",
    "vcpu-on-one-thread": "safety: a vCPU runs guest code on at most one hardware thread at a time",
    "vcpu-on-its-thread": "safety: a vCPU runs only on thread pcpu + ptid of its vcore's core",
    "core-one-partition": "safety: guest code runs only while its core is in that guest's partition, and a core runs one vcore at a time",
    "vcore-counters": "safety: with vc->lock free, n_runnable and n_blocked agree with the vCPU states and the runnable list",
    "runnable-vcpu-dispatched": "safety: while a vcore runs (its exit not begun) and vc->lock is free, every runnable vCPU the run owes a thread (runnable when it began, or a late join) has its thread pcpu + ptid pointing at it: a vCPU handed to a thread is not lost",
    "no-wait-for-nap-timeout": "safety: the runner leaves only after every woken secondary has napped (kvmppc_wait_for_nap never times out)",
    "no-grab-timeout": "safety: kvmppc_grab_hwthread never gives up (-EBUSY, 'couldn't grab cpu')",
    # Seed 000 (stray-ipi.md section 5, invariants 3-7): the hwthread_req / hwthread_state interlock.
    "hwthread-state-truthful": "safety: a host-offline secondary runs host code with the MMU on only while its own hwthread_state says IN_KERNEL: it stores IN_KERNEL (S2) before it turns the MMU on and publishes IN_NAP/IN_KVM only in real mode, so a runner that reads anything else may rely on it (checks residual R3: power7_nap storing IN_NAP in virtual mode)",
    "grab-sound": "safety: once kvmppc_grab_hwthread(T) has returned 0 and until kvmppc_release_hwthread(T), T runs no host code with the MMU on: the runner's hwthread_req=1; smp_mb; load hwthread_state (G1-G3) and the thread's hwthread_state=IN_KERNEL; sync; load hwthread_req (S2-S4) are a store-buffering pair, so one of them sees the other",
    "siblings-requested-at-switch": "safety: while a core is outside the host partition and its vcore's exit has not begun, every sibling thread of the vcore (pcpu+1 .. pcpu+threads-1) has hwthread_req = 1 in memory: kvmppc_run_core grabs each used thread in kvmppc_start_thread and each unused one (P1) before __kvmppc_vcore_entry switches LPIDR, so any later wake-up of a sibling goes to kvm_start_guest",
    "release-after-switch-back": "safety: once the vcore's exit has begun, no sibling's hwthread_req is cleared until the core is back in the host partition: kvmppc_release_hwthread (P4) runs only after __kvmppc_vcore_entry returns, i.e. after the primary stored LPIDR = host; a sibling woken in between must still be kept out of the host kernel",
    "no-stale-vcpu": "safety: a thread's kvm_hstate.kvm_vcpu points at a vCPU only while that vCPU's vcore is RUNNING: kvmppc_start_thread stores it during the run and kvmppc_release_hwthread (and kvm_no_guest) clear it before the run leaves RUNNING, so a secondary enters kvmppc_hv_entry only with a vCPU stored by the current run (interleaving C of seed 000: a stale pointer runs a finished vCPU)",
    # Seed 001 (smt-vcores.md): the vcore's run state and its rendezvous counters.
    "vcore-state-consistent": "safety: the vcore state machine (INACTIVE -> RUNNING -> EXITING -> INACTIVE) agrees with the threads: guest code of a vcore runs only while it is RUNNING and its runner (vc->pcpu) has preemption disabled, a CPU has preemption disabled only while a vcore it runs is RUNNING or EXITING (kvmppc_run_core's preempt_disable before __kvmppc_vcore_entry, preempt_enable once the exit is done: a runner preempted with its siblings in the guest would leave the core in the guest partition under another task), and with vc->lock free a vcore that is not RUNNING has in_guest = 0 and every thread that entered has counted its exit (entry_exit_count entries = exits)",
    "rendezvous-counters": "safety: the run's counters agree: exits <= entries (entry_exit_count) at every step, and with vc->lock free nap_count <= n_woken (only a woken secondary counts itself napped, once), entries <= n_woken + 1 (the primary and the threads kvmppc_start_thread IPI'd), and a vcore that is not RUNNING has nap_count = n_woken unless kvmppc_wait_for_nap timed out",
    "ptid-unique": "safety: with vc->lock free, the runnable vCPUs of a vcore have distinct ptids in 0 .. n_runnable-1 (kvmppc_run_vcpu gives a new vCPU ptid = n_runnable; kvmppc_remove_runnable moves the later ones down): two vCPUs never share a hardware thread",
    # Seed 000 invariant 8 (stray-ipi.md section 5) and seed 003 (idle-wakeup-lockup.md section 5, 1b).
    "ipi-hygiene": "safety: a thread that goes back to nap has EOI'd every interrupt it accepted: kvm_start_guest's wake-up path "
    "accepts the IPI (lwzcix XIRR), clears its MFRR and EOIs it (stwcix XIRR) before it runs a vCPU or naps again in "
    "kvm_no_guest; an accepted, un-EOI'd IPI keeps the presenter's CPPR at the IPI priority, so the next start IPI "
    "(kvmppc_start_thread) would never wake the thread (the MFRR half of hygiene, a nap with the MFRR still set, "
    "is a wake-up at once, forever: a livelock the step bound reports)",
    "no-stale-frame-return": "safety: no thread returns through a saved frame whose call has already returned: a host wake-up "
    "(power7_wakeup_noloss / pnv_wakeup_noloss) resumes the PACAR1 frame its own idle entry saved and that has not "
    "been resumed since, and kvm_end_cede the host_r1 frame its H_CEDE saved (seed 003: a ceded primary that "
    "skipped the hwthread_req test returned through a dead PACAR1 frame)",
    "guest-mode-flag": "safety: a thread's kvm_hstate.in_guest says KVM_GUEST_MODE_GUEST whenever it runs guest code and "
    "KVM_GUEST_MODE_NONE whenever it runs host code with the MMU on: the interrupt vectors (KVMTEST) route an interrupt "
    "to KVM's exit path by this flag, so a guest running without it would have its interrupt handled by the host on "
    "guest state, and a host thread with it set would be sent into the guest exit path (kvmppc_hv_entry stores it "
    "before the hrfid, kvmppc_interrupt_hv clears it first thing on the exit)",
    "primary-req-released": "safety: an online (host) thread has its own hwthread_req set only while a vcore it runs (pcpu) is RUNNING or "
    "EXITING: kvm_do_nap sets it for a ceded primary's nap, and kvmppc_run_core's release loop, which starts at thread 0, "
    "clears it before the vcore goes INACTIVE and the thread returns to the host; a host nap with the request still set "
    "would wake into kvm_start_guest instead of the host (seed 003's setting)",
    "napping-truthful": "safety: a thread whose kvm_hstate.napping is set, or whose bit is set in its vcore's "
    "napping_threads, runs neither guest code nor host code with the MMU on: kvmppc_h_cede sets the bit (C3) and "
    "napping = NAPPING_CEDE (C4) only on its way to the cede nap, and kvm_end_cede (C8, or the C4 exit branch that "
    "joins it) clears both before the thread re-enters the guest or takes the exit path.  The kernel relies on both: "
    "kvm_start_guest routes a wake-up by napping (a stale NAPPING_CEDE sends the thread's next wake-up into "
    "kvm_end_cede on an old host_r1), and the first thread to exit IPIs exactly the threads in napping_threads "
    "(idle-wakeup-lockup.md section 5, invariant 5)",
    "cede-wakes-on-dec": "safety: a thread napping for H_CEDE (kvm_hstate.napping = NAPPING_CEDE) would be woken by its "
    "guest's decrementer: PAPR's H_CEDE lasts until an external or a decrementer interrupt, so kvm_do_nap sets LPCR "
    "PECE0 | PECE1 before it naps (C6); a cede that only an IPI ends loses the guest's timer tick, and a vcore whose "
    "threads all cede with nothing else to wake them stays asleep (the cede's wake-up is the DEC the guest armed)",
    "exit-pokes-guest-threads": "safety: once every thread of a core on its way out of the guest waits at the exit "
    "rendezvous (X8 of kvmppc_guest_exit: the primary for entry count == exit count, a secondary for vc->in_guest == 0; "
    "the first one out has then done X7), no thread of the core naps in H_CEDE (kvm_hstate.napping = NAPPING_CEDE) "
    "without an IPI pending: the first thread out IPIs every thread in napping_threads but itself, because the HDEC "
    "it fires does not wake a nap, and a thread ceding later sees the exit count after setting its bit (lwarx/stwcx., "
    "lwsync, load) and does not nap. Without the IPI the rendezvous waits for the ceded thread's own decrementer, or for "
    "whatever unrelated IPI comes next (smt-vcores.md section 5, 10: the bounded exit, checked as safety)",
    "kvm-nap-routable": "safety: an online thread (a primary) that naps with its own hwthread_req set has kvm_hstate.napping != 0: "
    "kvm_start_guest routes a wake-up with the request set by napping (NAPPING_CEDE to kvm_end_cede, which resumes the KVM "
    "entry frame saved in host_r1); with napping = 0 it takes the thread for a secondary and runs whatever kvm_vcpu holds, "
    "abandoning the ceded primary's frame (idle-wakeup-lockup.md section 5, invariant 4; kvmppc_h_cede stores NAPPING_CEDE "
    "(C4) before kvm_do_nap sets the request (C6))",
    "vcpus-complete": "liveness: every vCPU thread runs its guest to the end and exits (checked when the run ends)",
    "no-deadlock": "liveness: no hard lock-up: when nothing can move, no CPU is stuck in a wait and every task has finished",
}


def _partition(lpid: Any) -> str:
    """``partition 2``, or what the reserved LPID means (an invariant's message)."""
    if lpid == LPID_RESERVED:
        return f"partition {lpid} (the reserved LPID, loaded while the partition is being switched)"
    return f"partition {lpid}"


def _threads_in_guest(ex: Execution, k: Kvm, cpus: range | list[int]) -> list[tuple[int, Any]]:
    out = []
    for cpu in cpus:
        a = ex.actors[cpu]
        if a.status == RUN and not (a.msr & MSR_HV):
            out.append((cpu, ex.mem[hstate(cpu, "kvm_vcpu")]))
    return out


def install_monitors(w: World, k: Kvm, selected: list[str] | None) -> None:
    want = set(INVARIANTS) if selected is None else set(selected)
    unknown = want - set(INVARIANTS)
    if unknown:
        raise ConfigError("invariants", f"unknown invariant {sorted(unknown)[0]!r} for the vcore model (known: {', '.join(INVARIANTS)})")
    # A thread's mode, as the monitors see it (World.mode_facets, set below).
    w.mode_facets["host-virt"] = lambda status, msr: status == RUN and in_host_virtual_mode(msr)
    w.mode_facets["guest"] = lambda status, msr: status == RUN and not (msr & MSR_HV)
    w.mode_facets["nap"] = lambda status, msr: status == NAP

    def host_virt(cpu: int) -> str:
        return f"cpu:cpu{cpu}:host-virt"

    def guest(cpu: int) -> str:
        return f"cpu:cpu{cpu}:guest"

    host_locs = tuple(host_virt(cpu) for cpu in k.cpus)
    guest_locs = tuple(guest(cpu) for cpu in k.cpus)
    core_threads = {c: [k.pcpu_of_core(c) + t for t in range(k.threads_per_core)] for c in range(k.ncores)}

    def no_host_code_in_guest(ex: Execution) -> str | None:
        for c, cpus in core_threads.items():
            lpid = ex.mem[core(c, "lpid")]
            if lpid == LPID_HOST:
                continue
            for cpu in cpus:
                a = ex.actors[cpu]
                if a.status == RUN and in_host_virtual_mode(a.msr):
                    return f"cpu{cpu} executes host kernel code [{msr_str(a.msr)}] while core {c} is in {_partition(lpid)}"
        return None

    def req_honoured(ex: Execution) -> str | None:
        for cpu in k.cpus:
            if ex.mem[woke_with_req(cpu)] and ex.mem[hstate(cpu, "hwthread_req")]:  # still requested
                a = ex.actors[cpu]
                if a.status == RUN and in_host_virtual_mode(a.msr):
                    return f"cpu{cpu} woke with hwthread_req set and runs host kernel code [{msr_str(a.msr)}] without reaching kvm_start_guest"
        return None

    def vcpu_on_one_thread(ex: Execution) -> str | None:
        seen: dict[Any, int] = {}
        for cpu, v in _threads_in_guest(ex, k, k.cpus):
            if v in seen:
                return f"vcpu {k.vcpu_label(v)} runs on cpu{seen[v]} and cpu{cpu}"
            seen[v] = cpu
        return None

    def vcpu_on_its_thread(ex: Execution) -> str | None:
        for cpu, v in _threads_in_guest(ex, k, k.cpus):
            if v is None:
                return f"cpu{cpu} runs guest code with no vCPU"
            want_cpu = ex.mem[vcore(k.vcore_of(v), "pcpu")] + ex.mem[vcpu(v, "ptid")]
            if cpu != want_cpu:
                return f"vcpu {k.vcpu_label(v)} runs on cpu{cpu}, not on pcpu + ptid = cpu{want_cpu}"
        return None

    def core_one_partition(ex: Execution) -> str | None:
        for c, cpus in core_threads.items():
            lpid = ex.mem[core(c, "lpid")]
            vcores = set()
            for cpu, v in _threads_in_guest(ex, k, cpus):
                if v is None:
                    continue
                vc = k.vcore_of(v)
                vcores.add(vc)
                want = k.vcores[vc].lpid  # the guest's LPID, as assigned when the VM was made
                if want != lpid:
                    return f"cpu{cpu} runs vcpu {k.vcpu_label(v)} of LPID {want} while core {c} is in {_partition(lpid)}"
            if len(vcores) > 1:
                return f"core {c} runs vcores {sorted(vcores)} at once"
        return None

    vcore_locs: list[str] = []
    for vc in k.vcores.values():
        vcore_locs += [vcore(vc.index, f) for f in ("lock", "n_runnable", "n_blocked", "runnable_threads")]
        vcore_locs += [vcpu(v, "state") for v in vc.vcpus]

    def vcore_counters(ex: Execution) -> str | None:
        m = ex.mem
        for vc in k.vcores.values():
            if m[vcore(vc.index, "lock")]:
                continue
            states = [m[vcpu(v, "state")] for v in vc.vcpus]
            n_run, n_blk, lst = m[vcore(vc.index, "n_runnable")], m[vcore(vc.index, "n_blocked")], m[vcore(vc.index, "runnable_threads")]
            if n_run != states.count(RUNNABLE) or n_run != len(lst) or n_blk != states.count(BLOCKED) + states.count(STOPPED):
                return f"vcore {vc.index}: n_runnable={n_run} n_blocked={n_blk} runnable_threads={list(lst)} but states are {states}"
            if any(m[vcpu(v, "state")] != RUNNABLE for v in lst):
                return f"vcore {vc.index}: runnable_threads {list(lst)} holds a vCPU that is not RUNNABLE"
        return None

    dispatch_locs: list[str] = []
    for vc in k.vcores.values():
        dispatch_locs += [vcore(vc.index, f) for f in ("lock", "vcore_running", "entry_exit_count", "runnable_threads", "pcpu")]
        dispatch_locs += [vcpu(v, "ptid") for v in vc.vcpus] + [vcpu_started(v) for v in vc.vcpus]
    dispatch_locs += [hstate(cpu, "kvm_vcpu") for cpu in k.cpus]

    def runnable_vcpu_dispatched(ex: Execution) -> str | None:
        m = ex.mem
        for vc in k.vcores.values():
            if m[vcore(vc.index, "lock")] or m[vcore(vc.index, "vcore_running")] != VCORE_RUNNING:
                continue
            if m[vcore(vc.index, "entry_exit_count")] >> VCORE_EXIT_SHIFT:
                continue  # exiting: a vCPU made runnable now waits for the next run
            pcpu = m[vcore(vc.index, "pcpu")]
            for v in m[vcore(vc.index, "runnable_threads")]:
                if not m[vcpu_started(v)]:
                    continue  # runnable, not owed: it waits for the next run (3.2-3.7 join only on a first run)
                cpu = pcpu + m[vcpu(v, "ptid")]
                if m[hstate(cpu, "kvm_vcpu")] != v:
                    return f"vcore {vc.index} runs but runnable vcpu {k.vcpu_label(v)} was not started on its thread cpu{cpu}"
        return None

    nap_locs = tuple(vcore(vc, "wait_for_nap_timeouts") for vc in k.vcores)

    def no_wait_for_nap_timeout(ex: Execution) -> str | None:
        for vc in k.vcores:
            if ex.mem[vcore(vc, "wait_for_nap_timeouts")]:
                return f"kvmppc_wait_for_nap timed out on vcore {vc}: a woken secondary never napped"
        return None

    grab_locs = tuple(f"kvm.grab_failures[{cpu}]" for cpu in k.cpus)

    def no_grab_timeout(ex: Execution) -> str | None:
        for cpu in k.cpus:
            if ex.mem[f"kvm.grab_failures[{cpu}]"]:
                return f"KVM: couldn't grab cpu {cpu} (kvmppc_grab_hwthread returned -EBUSY)"
        return None

    lpid_locs = tuple(core(c, "lpid") for c in range(k.ncores))
    vcpu_locs = tuple(hstate(cpu, "kvm_vcpu") for cpu in k.cpus)
    placement_locs = tuple(vcore(vc, "pcpu") for vc in k.vcores) + tuple(vcpu(v, "ptid") for v in k.vcpu_vcore)
    # The partition of a core against the context of each of its threads.
    host_in_guest_groups = tuple((core(c, "lpid"), host_virt(cpu)) for c, cpus in core_threads.items() for cpu in cpus)
    # Two threads' guest state (context and vCPU pointer) against each other.
    pair_groups = tuple(
        (guest(x), hstate(x, "kvm_vcpu"), guest(y), hstate(y, "kvm_vcpu")) for x in k.cpus for y in k.cpus if x < y
    )
    table = [
        Invariant("no-host-code-in-guest", INVARIANTS["no-host-code-in-guest"], lpid_locs + host_locs, no_host_code_in_guest, host_in_guest_groups),
        Invariant(
            "req-honoured",
            INVARIANTS["req-honoured"],
            host_locs + tuple(woke_with_req(c) for c in k.cpus) + tuple(hstate(c, "hwthread_req") for c in k.cpus),
            req_honoured,
            tuple((woke_with_req(c), hstate(c, "hwthread_req"), host_virt(c)) for c in k.cpus),
        ),
        Invariant("vcpu-on-one-thread", INVARIANTS["vcpu-on-one-thread"], guest_locs + vcpu_locs, vcpu_on_one_thread, pair_groups),
        Invariant(
            "vcpu-on-its-thread",
            INVARIANTS["vcpu-on-its-thread"],
            guest_locs + vcpu_locs + placement_locs,
            vcpu_on_its_thread,
            tuple((guest(x), hstate(x, "kvm_vcpu"), *placement_locs) for x in k.cpus),
        ),
        Invariant(
            "core-one-partition",
            INVARIANTS["core-one-partition"],
            guest_locs + vcpu_locs + lpid_locs,
            core_one_partition,
            tuple((core(k.core_of(x), "lpid"), guest(x), hstate(x, "kvm_vcpu")) for x in k.cpus) + pair_groups,
        ),
        Invariant("vcore-counters", INVARIANTS["vcore-counters"], tuple(vcore_locs), vcore_counters),
        Invariant("runnable-vcpu-dispatched", INVARIANTS["runnable-vcpu-dispatched"], tuple(dispatch_locs), runnable_vcpu_dispatched),
        Invariant("no-wait-for-nap-timeout", INVARIANTS["no-wait-for-nap-timeout"], nap_locs, no_wait_for_nap_timeout),
        Invariant("no-grab-timeout", INVARIANTS["no-grab-timeout"], grab_locs, no_grab_timeout),
    ]
    def ipi_hygiene(ex: Execution) -> str | None:
        for cpu in k.cpus:
            if ex.actors[cpu].status == NAP and ex.mem[xirr(cpu)]:
                return f"cpu{cpu} naps with an accepted interrupt (XIRR source {ex.mem[xirr(cpu)]}) it has not EOI'd: its CPPR masks the next IPI"
        return None

    def no_stale_frame(ex: Execution) -> str | None:
        for cpu in k.cpus:
            if ex.mem[stale_frame(cpu)]:
                return f"cpu{cpu} returned through a saved frame whose call had already returned (PACAR1 of an earlier nap)"
        return None

    online = [cpu for cpu in k.cpus if k.online(cpu)]
    run_state = tuple(vcore(vc, f) for vc in k.vcores for f in ("pcpu", "vcore_running"))

    def primary_req_released(ex: Execution) -> str | None:
        m = ex.mem
        for cpu in online:
            if m[hstate(cpu, "hwthread_req")] and not any(
                m[vcore(vc, "pcpu")] == cpu and m[vcore(vc, "vcore_running")] in (VCORE_RUNNING, VCORE_EXITING) for vc in k.vcores
            ):
                return f"online cpu{cpu} has hwthread_req = 1 but runs no vcore: the release after its cede nap is missing"
        return None

    def guest_mode_flag(ex: Execution) -> str | None:
        for cpu in k.cpus:
            a = ex.actors[cpu]
            if a.status != RUN:
                continue
            flag = _own_view(ex, a, hstate(cpu, "in_guest"))
            if not (a.msr & MSR_HV) and flag != KVM_GUEST_MODE_GUEST:
                return f"cpu{cpu} runs guest code with kvm_hstate.in_guest = {flag}"
            if in_host_virtual_mode(a.msr) and flag != KVM_GUEST_MODE_NONE:
                return f"cpu{cpu} runs host code with the MMU on [{msr_str(a.msr)}] while kvm_hstate.in_guest = {flag}"
        return None

    def kvm_nap_routable(ex: Execution) -> str | None:
        for cpu in online:
            a = ex.actors[cpu]
            if a.status == NAP and _own_view(ex, a, hstate(cpu, "hwthread_req")) and not _own_view(ex, a, hstate(cpu, "napping")):
                return f"online cpu{cpu} naps with its own hwthread_req set and kvm_hstate.napping = 0: its wake-up would take the secondary path"
        return None

    def napping_truthful(ex: Execution) -> str | None:
        m = ex.mem
        running = [cpu for cpu in k.cpus if ex.actors[cpu].status == RUN]
        flagged: dict[int, str] = {}
        for cpu in running:
            if _own_view(ex, ex.actors[cpu], hstate(cpu, "napping")):
                flagged[cpu] = "kvm_hstate.napping is set"
        for vc in k.vcores:
            pcpu = m[vcore(vc, "pcpu")]
            bits = m[vcore(vc, "napping_threads")]
            if not bits or not isinstance(pcpu, int) or pcpu < 0:
                continue
            base = k.pcpu_of_core(k.core_of(pcpu))
            for t in range(k.threads_per_core):
                if bits >> t & 1 and base + t in running:
                    flagged.setdefault(base + t, f"its bit is set in vcore {vc}'s napping_threads")
        for cpu, why in flagged.items():
            a = ex.actors[cpu]
            if not (a.msr & MSR_HV):
                return f"cpu{cpu} runs guest code while {why} (the cede's bookkeeping was not cleared)"
            if in_host_virtual_mode(a.msr):
                return f"cpu{cpu} runs host code with the MMU on [{msr_str(a.msr)}] while {why}"
        return None

    table += [
        Invariant(
            "guest-mode-flag",
            INVARIANTS["guest-mode-flag"],
            guest_locs + host_locs + tuple(hstate(c, "in_guest") for c in k.cpus),
            guest_mode_flag,
            tuple((guest(c), host_virt(c), hstate(c, "in_guest")) for c in k.cpus),
        ),
        Invariant(
            "primary-req-released",
            INVARIANTS["primary-req-released"],
            tuple(hstate(c, "hwthread_req") for c in online) + run_state,
            primary_req_released,
            program_order=True,
        ),
        Invariant(
            "ipi-hygiene",
            INVARIANTS["ipi-hygiene"],
            tuple(f"cpu:cpu{c}:nap" for c in k.cpus) + tuple(xirr(c) for c in k.cpus),
            ipi_hygiene,
            tuple((f"cpu:cpu{c}:nap", xirr(c)) for c in k.cpus),
        ),
        Invariant(
            "napping-truthful",
            INVARIANTS["napping-truthful"],
            guest_locs + host_locs + tuple(hstate(c, "napping") for c in k.cpus) + tuple(vcore(vc, f) for vc in k.vcores for f in ("pcpu", "napping_threads")),
            napping_truthful,
            # one thread's facts at a time (its modes, its flag, the vcores' bitmaps)
            tuple((guest(c), host_virt(c), hstate(c, "napping"), *(vcore(vc, f) for vc in k.vcores for f in ("pcpu", "napping_threads"))) for c in k.cpus),
        ),
        Invariant(
            "kvm-nap-routable",
            INVARIANTS["kvm-nap-routable"],
            tuple(f"cpu:cpu{c}:nap" for c in online) + tuple(hstate(c, f) for c in online for f in ("hwthread_req", "napping")),
            kvm_nap_routable,
            tuple((f"cpu:cpu{c}:nap", hstate(c, "hwthread_req"), hstate(c, "napping")) for c in online),
        ),
        Invariant("no-stale-frame-return", INVARIANTS["no-stale-frame-return"], tuple(stale_frame(c) for c in k.cpus), no_stale_frame),
    ]
    table.append(_exit_poke_invariant(k))
    table.append(_cede_dec_invariant(k))
    table += _interlock_invariants(k, host_virt, guest)
    table += _rendezvous_invariants(k, guest)
    for inv in table:
        if inv.name in want:
            w.add_invariant(inv)
    done_locs = tuple(vcpu(v, "thread_done") for v in k.vcpu_vcore)
    if "vcpus-complete" in want:
        w.add_liveness(
            Liveness(
                "vcpus-complete",
                INVARIANTS["vcpus-complete"],
                done_locs,
                trigger=lambda ex: True,
                goal=lambda ex: all(ex.mem[loc] for loc in done_locs),
                bound=None,
            )
        )
    w.check_deadlock = "no-deadlock" in want


def _own_view(ex: Execution, a: Any, loc: str) -> Any:
    """``loc`` as thread ``a`` reads it: under a weak memory model its own buffered
    store forwards to it (the thread's own vectors read its flag that way)."""
    forward = getattr(ex, "_forward", None)
    if forward is not None and getattr(ex, "weak", False):  # (boot runs sequentially consistent, before the buffers exist)
        hit, value = forward(a.idx, loc)
        if hit:
            return value
    return ex.mem[loc]


def preempt(cpu: int) -> str:
    """The CPU's preempt_count (kvmppc_run_core's preempt_disable/enable)."""
    return f"rq[{cpu}].preempt_count"


def _entries(eec: int) -> int:
    return eec & 0xFF


def _exits(eec: int) -> int:
    return eec >> VCORE_EXIT_SHIFT


def _offline_secondaries(k: Kvm) -> list[int]:
    """The threads a runner may grab: host-offline secondaries (the primary is never grabbed)."""
    return [cpu for cpu in k.cpus if not k.online(cpu)]


def _interlock_invariants(k: Kvm, host_virt: Any, guest: Any) -> list[Invariant]:
    """Seed 000's invariants 3-7 (stray-ipi.md section 5)."""
    secondaries = _offline_secondaries(k)

    def state_truthful(ex: Execution) -> str | None:
        for cpu in secondaries:
            a = ex.actors[cpu]
            if a.status == RUN and in_host_virtual_mode(a.msr):
                st = ex.mem[hstate(cpu, "hwthread_state")]
                if st != KVM_HWTHREAD_IN_KERNEL:
                    return f"cpu{cpu} runs host code with the MMU on [{msr_str(a.msr)}] while its hwthread_state says {st} (not IN_KERNEL)"
        return None

    def grab_sound(ex: Execution) -> str | None:
        for cpu in k.cpus:
            if ex.mem[grabbed(cpu)]:
                a = ex.actors[cpu]
                if a.status == RUN and in_host_virtual_mode(a.msr):
                    return f"cpu{cpu} runs host code with the MMU on [{msr_str(a.msr)}] although kvmppc_grab_hwthread({cpu}) returned 0 and it has not been released"
        return None

    def running_vcore_on(ex: Execution, c: int) -> int | None:
        for vc in k.vcores:
            if k.core_of(ex.mem[vcore(vc, "pcpu")]) == c and ex.mem[vcore(vc, "vcore_running")] == VCORE_RUNNING:
                return vc
        return None

    def unrequested_sibling(ex: Execution, exiting: bool) -> str | None:
        m = ex.mem
        for c in range(k.ncores):
            lpid = m[core(c, "lpid")]
            if lpid == LPID_HOST:
                continue
            vc = running_vcore_on(ex, c)
            began = vc is None or _exits(m[vcore(vc, "entry_exit_count")]) > 0
            if began != exiting:
                continue
            pcpu = m[vcore(vc, "pcpu")] if vc is not None else k.pcpu_of_core(c)
            for cpu in range(pcpu + 1, pcpu + k.threads_per_vcore):
                if not m[hstate(cpu, "hwthread_req")]:
                    when = "after the vcore's exit began" if exiting else "before the vcore's exit"
                    return f"core {c} is in {_partition(lpid)} {when} but sibling cpu{cpu} has hwthread_req = 0"
        return None

    def stale_vcpu(ex: Execution) -> str | None:
        m = ex.mem
        for cpu in k.cpus:
            v = m[hstate(cpu, "kvm_vcpu")]
            if v is not None and m[vcore(k.vcore_of(v), "vcore_running")] != VCORE_RUNNING:
                return f"cpu{cpu}'s kvm_vcpu still points at vcpu {k.vcpu_label(v)} although vcore {k.vcore_of(v)} is not running"
        return None

    state_locs = tuple(hstate(c, "hwthread_state") for c in secondaries) + tuple(host_virt(c) for c in secondaries)
    grab_locs = tuple(grabbed(c) for c in k.cpus) + tuple(host_virt(c) for c in k.cpus)
    run_locs = tuple(vcore(vc, f) for vc in k.vcores for f in ("pcpu", "vcore_running", "entry_exit_count"))
    req_locs = tuple(core(c, "lpid") for c in range(k.ncores)) + tuple(hstate(c, "hwthread_req") for c in k.cpus) + run_locs
    # One core's partition against its threads' requests (a vcore may run on any core).
    req_groups = tuple((core(c, "lpid"), *(hstate(x, "hwthread_req") for x in k.cpus if k.core_of(x) == c), *run_locs) for c in range(k.ncores))
    running = tuple(vcore(vc, "vcore_running") for vc in k.vcores)
    vcpu_locs = tuple(hstate(c, "kvm_vcpu") for c in k.cpus) + running
    return [
        Invariant(
            "hwthread-state-truthful",
            INVARIANTS["hwthread-state-truthful"],
            state_locs,
            state_truthful,
            tuple((hstate(c, "hwthread_state"), host_virt(c)) for c in secondaries),
        ),
        Invariant("grab-sound", INVARIANTS["grab-sound"], grab_locs, grab_sound, tuple((grabbed(c), host_virt(c)) for c in k.cpus), program_order=True),
        Invariant("siblings-requested-at-switch", INVARIANTS["siblings-requested-at-switch"], req_locs, lambda ex: unrequested_sibling(ex, False), req_groups, program_order=True),
        Invariant("release-after-switch-back", INVARIANTS["release-after-switch-back"], req_locs, lambda ex: unrequested_sibling(ex, True), req_groups, program_order=True),
        Invariant("no-stale-vcpu", INVARIANTS["no-stale-vcpu"], vcpu_locs, stale_vcpu, tuple((hstate(c, "kvm_vcpu"), *running) for c in k.cpus), program_order=True),
    ]


def _in_guest_exit(a: Any) -> bool:
    """``a`` runs kvmppc_guest_exit itself (X1..X8, not a function it calls)."""
    if a.status != RUN or not a.stack:
        return False
    g: Any = a.stack[-1].gen
    while g is not None and getattr(g, "gi_yieldfrom", None) is not None and hasattr(g.gi_yieldfrom, "gi_code"):
        g = g.gi_yieldfrom
    return g is not None and g.gi_code.co_name == "kvmppc_guest_exit"


def _exit_poke_invariant(k: Kvm) -> Invariant:
    """X7: the first thread out pokes every thread of its vcore still in the guest."""
    # Only a vcore of several vCPUs has other threads to poke; one runs on one core.
    shared = any(len(vc.vcpus) > 1 for vc in k.vcores.values())
    cores: dict[int, list[int]] = {}
    for c in k.cpus:
        cores.setdefault(k.core_of(c), []).append(c)

    def exit_pokes(ex: Execution) -> str | None:
        m = ex.mem
        for c, threads in cores.items():
            unpoked = [x for x in threads if ex.actors[x].status == NAP and m[hstate(x, "napping")] == NAPPING_CEDE and m[mfrr(x)] == MFRR_NONE]
            if not unpoked:  # (cheap first: the stacks are read only when a ceded thread has no IPI)
                continue
            # Checked once every thread of the core on its way out waits in X8
            # (its only WaitUntil): the first one out has then done X7.
            exiting = [x for x in threads if _in_guest_exit(ex.actors[x])]
            if not exiting or any(ex.actors[x].stack[-1].op.__class__ is not O.WaitUntil for x in exiting):
                continue
            return f"cpu{exiting[0]} waits for the exit rendezvous while cpu{unpoked[0]} naps in H_CEDE with no IPI pending"
        return None

    if not shared:  # nothing to check: read one location, so the monitor adds no dependency
        return Invariant("exit-pokes-guest-threads", INVARIANTS["exit-pokes-guest-threads"], (core(next(iter(cores)), "hdec_expired"),), lambda ex: None)
    # The waiters' call stacks (``cpu:cpuN``, re-read after each of their steps)
    # and, one fact per thread, its nap, cede flag and IPI line: pokes of
    # different threads stay independent.  (X7's HDEC poke of threads still
    # running the guest is not checked: with the guest mode and the core's HDEC
    # in these facts, stray-ipi@fixed-2vcpu explored 7,487 executions, not 5,481.)
    groups = tuple((f"cpu:cpu{c}:nap", hstate(c, "napping"), mfrr(c)) for c in k.cpus)
    reads = tuple(dict.fromkeys((*(f"cpu:cpu{c}" for c in k.cpus), *(x for g in groups for x in g))))
    return Invariant("exit-pokes-guest-threads", INVARIANTS["exit-pokes-guest-threads"], reads, exit_pokes, groups)


def _cede_dec_invariant(k: Kvm) -> Invariant:
    """C6: the cede nap is one the guest's DEC ends."""

    def cede_wakes_on_dec(ex: Execution) -> str | None:
        for cpu in k.cpus:
            a = ex.actors[cpu]
            if a.status == NAP and a.hw is not None and ex.mem[hstate(cpu, "napping")] == NAPPING_CEDE:
                # the DEC alone, no IPI: would it end the nap?
                if a.hw.wakeup(ChainMap({dec_expired(cpu): 1, mfrr(cpu): MFRR_NONE}, ex.mem)) is None:  # type: ignore[arg-type]
                    return f"cpu{cpu} naps in H_CEDE with the decrementer wake-up disabled (LPCR[PECE1] clear): only an IPI ends the cede"
        return None

    # one thread's facts at a time: its mode, its flag and its DEC wake-up enable
    groups = tuple((f"cpu:cpu{c}:nap", hstate(c, "napping"), lpcr_pece1(c)) for c in k.cpus)
    reads = tuple(x for g in groups for x in g)
    return Invariant("cede-wakes-on-dec", INVARIANTS["cede-wakes-on-dec"], reads, cede_wakes_on_dec, groups)


def _rendezvous_invariants(k: Kvm, guest: Any) -> list[Invariant]:
    """Seed 001's vcore state machine, rendezvous counters and ptids."""
    online = [c for c in k.cpus if k.online(c)]  # the CPUs with a runqueue (a runner is one)

    def state_consistent(ex: Execution) -> str | None:
        m = ex.mem
        for cpu in k.cpus:
            a = ex.actors[cpu]
            if a.status == RUN and not (a.msr & MSR_HV):
                v = m[hstate(cpu, "kvm_vcpu")]
                if v is not None and m[vcore(k.vcore_of(v), "vcore_running")] != VCORE_RUNNING:
                    return f"cpu{cpu} runs guest code of vcpu {k.vcpu_label(v)} while vcore {k.vcore_of(v)} is {_RUN_STATE[m[vcore(k.vcore_of(v), 'vcore_running')]]}"
                if v is not None:
                    runner = m[vcore(k.vcore_of(v), "pcpu")]
                    if _own_view(ex, ex.actors[runner], preempt(runner)) != 1:
                        return f"cpu{cpu} runs guest code of vcpu {k.vcpu_label(v)} while its runner cpu{runner} has preemption enabled"
        # preempt_count is the runner's own per-CPU state: read as it sees it
        for cpu in online:
            a = ex.actors[cpu]
            if a.status != RUN:  # (a ceded runner naps in the guest with preemption off)
                continue
            if _own_view(ex, a, preempt(cpu)) and not any(
                _own_view(ex, a, vcore(vc, "pcpu")) == cpu and _own_view(ex, a, vcore(vc, "vcore_running")) in (VCORE_RUNNING, VCORE_EXITING) for vc in k.vcores
            ):
                return f"cpu{cpu} has preemption disabled but runs no vcore that is RUNNING or EXITING"
        for vc in k.vcores:
            if m[vcore(vc, "lock")] or m[vcore(vc, "vcore_running")] == VCORE_RUNNING:
                continue
            eec, ing = m[vcore(vc, "entry_exit_count")], m[vcore(vc, "in_guest")]
            if ing or _entries(eec) != _exits(eec):
                state = _RUN_STATE[m[vcore(vc, "vcore_running")]]
                return f"vcore {vc} is {state} but in_guest = {ing} and {_entries(eec)} threads entered, {_exits(eec)} exited"
        return None

    def counters(ex: Execution) -> str | None:
        m = ex.mem
        for vc in k.vcores:
            eec, woken, napped = m[vcore(vc, "entry_exit_count")], m[vcore(vc, "n_woken")], m[vcore(vc, "nap_count")]
            what = f"vcore {vc}: entries {_entries(eec)}, exits {_exits(eec)}, n_woken {woken}, nap_count {napped}"
            if _exits(eec) > _entries(eec):  # at any time: only a thread that entered exits
                return f"{what}: more exits than entries"
            if m[vcore(vc, "lock")]:
                continue
            if napped > woken:
                return f"{what}: more threads napped than were woken"
            if _entries(eec) > woken + 1:
                return f"{what}: more threads entered than the primary and the woken ones"
            if m[vcore(vc, "vcore_running")] != VCORE_RUNNING and napped != woken and not m[vcore(vc, "wait_for_nap_timeouts")]:
                return f"{what}: the run is over but not every woken thread has napped"
        return None

    def ptids(ex: Execution) -> str | None:
        m = ex.mem
        for vc in k.vcores:
            if m[vcore(vc, "lock")]:
                continue
            runnable = m[vcore(vc, "runnable_threads")]
            got = sorted(m[vcpu(v, "ptid")] for v in runnable)
            if got != list(range(len(runnable))):
                return f"vcore {vc}: runnable vcpus {[k.vcpu_label(v) for v in runnable]} have ptids {[m[vcpu(v, 'ptid')] for v in runnable]}"
        return None

    per_vc = ("lock", "vcore_running", "entry_exit_count", "in_guest", "n_woken", "nap_count", "wait_for_nap_timeouts", "pcpu")
    vc_locs = tuple(vcore(vc, f) for vc in k.vcores for f in per_vc)
    running = tuple(vcore(vc, "vcore_running") for vc in k.vcores) + tuple(vcore(vc, "pcpu") for vc in k.vcores)
    preempts = tuple(preempt(c) for c in online)
    guest_locs = tuple(guest(c) for c in k.cpus) + tuple(hstate(c, "kvm_vcpu") for c in k.cpus) + preempts
    ptid_locs = tuple(vcore(vc, f) for vc in k.vcores for f in ("lock", "runnable_threads")) + tuple(vcpu(v, "ptid") for v in k.vcpu_vcore)

    def on(vc: int, *fields: str) -> tuple[str, ...]:
        return tuple(vcore(vc, f) for f in fields)

    # Each fact conjoins the locations of one group (see Invariant.groups).
    state_groups = (
        tuple((guest(c), hstate(c, "kvm_vcpu"), *running, *preempts) for c in k.cpus)
        + tuple(on(vc, "lock", "vcore_running", "entry_exit_count", "in_guest") for vc in k.vcores)
        + tuple((preempt(c), *running) for c in online)
    )
    counter_groups = tuple(
        g
        for vc in k.vcores
        for g in (
            on(vc, "entry_exit_count"),
            on(vc, "lock", "nap_count", "n_woken"),
            on(vc, "lock", "entry_exit_count", "n_woken"),
            on(vc, "lock", "vcore_running", "nap_count", "n_woken", "wait_for_nap_timeouts"),
        )
    )
    ptid_groups = tuple((*on(vc.index, "lock", "runnable_threads"), *(vcpu(v, "ptid") for v in vc.vcpus)) for vc in k.vcores.values())
    return [
        Invariant("vcore-state-consistent", INVARIANTS["vcore-state-consistent"], guest_locs + vc_locs, state_consistent, state_groups, program_order=True),
        Invariant("rendezvous-counters", INVARIANTS["rendezvous-counters"], vc_locs, counters, counter_groups, program_order=True),
        Invariant("ptid-unique", INVARIANTS["ptid-unique"], ptid_locs, ptids, ptid_groups, program_order=True),
    ]


_RUN_STATE = {0: "INACTIVE", 1: "RUNNING", 2: "EXITING"}
