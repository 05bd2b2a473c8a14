"""The virtual-mode side of Book3S HV KVM (``arch/powerpc/kvm/book3s_hv.c``, 3.1/3.2 shape).

A vCPU task (QEMU's thread) calls ``kvmppc_vcpu_run``; whichever task finds
the vcore ready becomes the *runner* and runs every runnable vCPU of the
vcore with ``kvmppc_run_core``: its own CPU is the primary thread (ptid 0),
the napping secondaries are started with IPIs.  Step numbers (2.3 step 7,
P4, G1...) refer to shared/reference/smt-vcores.md and stray-ipi.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcoresim.engine.msr import MSR_DR, MSR_IR
from vcoresim.engine.ops import (
    TIMEOUT,
    Delay,
    IrqDisable,
    IrqEnable,
    Load,
    LoadN,
    MtMsr,
    Note,
    SendIPI,
    SpinLock,
    SpinUnlock,
    Store,
    StoreN,
    WaitUntil,
    smp_mb,
    smp_wmb,
    sync,
)
from vcoresim.engine.world import Body
from vcoresim.kvm import book3s_hv_rmhandlers, host
from vcoresim.kvm.state import (
    BLOCKED,
    BOOK3S_INTERRUPT_SYSCALL,
    BUSY_IN_HOST,
    EBUSY,
    EINTR,
    IPI_PRIORITY,
    KVM_HWTHREAD_IN_KERNEL,
    RESUME_GUEST,
    RESUME_HOST,
    RUNNABLE,
    STOPPED,
    TASK_INTERRUPTIBLE,
    TASK_RUNNING,
    TASK_UNINTERRUPTIBLE,
    VCORE_EXIT_SHIFT,
    VCORE_EXITING,
    VCORE_INACTIVE,
    VCORE_RUNNING,
    grabbed,
    hstate,
    mfrr,
    task,
    vcore,
    vcpu,
    vcpu_started,
    woke_with_req,
)

if TYPE_CHECKING:
    from vcoresim.kvm.context import Kvm

GRAB_TIMEOUT_US = 1000  # kvmppc_grab_hwthread: 1000 x udelay(1) in seed 000
WAIT_FOR_NAP_POLLS = 1_000_000


# ------------------------------------------------------------- vCPU task side
def qemu_vcpu_thread(k: Kvm, v: int) -> Body:
    """QEMU's vCPU thread: ``ioctl(KVM_RUN)`` until the guest shuts this vCPU down."""
    t = k.vcpu_task[v]
    cpu = t.cpu
    vm = k.vm_of(v)
    while True:
        ret = yield from kvmppc_vcpu_run(k, v)
        reason = yield Load(vcpu(v, "exit_reason"))
        yield Note(f"KVM_RUN returned {ret} ({reason})", event="kvm_run_return", data={"vcpu": k.vcpu_label(v), "ret": ret, "reason": reason})
        if reason == "KVM_EXIT_PAPR_HCALL":
            yield Delay(k.userspace_dist, "QEMU handles the exit in userspace")
        if reason == "KVM_EXIT_SHUTDOWN" or (ret < 0 and ret != EINTR):
            # The guest powers off, or KVM_RUN failed (-EBUSY: QEMU prints "kvm run
            # failed" and stops the VM): QEMU stops every other vCPU thread with a signal.
            yield Store(f"vm[{vm}].shutdown", 1)
            for other in k.vm_vcpus(vm):
                if other != v:
                    yield from host.send_signal(k, k.vcpu_task[other])
            break
        if ret == EINTR:
            yield Store(task(t.name, "sigpending"), 0)  # QEMU handled the signal
        down = yield Load(f"vm[{vm}].shutdown")
        if down:
            break
        yield from host.cond_resched(k, cpu, t)
    yield Store(vcpu(v, "thread_done"), 1)
    yield from host.do_exit(k, cpu, t)


def kvmppc_vcpu_run(k: Kvm, v: int) -> Body:
    t = k.vcpu_task[v]
    every_call = not k.patch("late-join-first-run")  # 3.1 tests at the top of kvmppc_run_vcpu, so on every call
    while True:
        sig = yield Load(task(t.name, "sigpending"))
        if sig:  # "No need to go into the guest when all we'll do is come back out"
            yield Store(vcpu(v, "exit_reason"), "KVM_EXIT_INTR")
            return EINTR
        while True:
            ret = yield from kvmppc_run_vcpu(k, v)
            if ret == RESUME_HOST:
                hcall = yield Load(vcpu(v, "hcall"))
                if hcall == "H_CEDE":  # ceded to the host: block until the guest's DEC timer fires
                    yield from kvmppc_vcpu_block(k, v)
                    if every_call:
                        break
                    continue
            return ret


def kvmppc_run_vcpu(k: Kvm, v: int) -> Body:
    """Make V runnable; run the vcore, join it, or sleep until the runner is done (§2.2)."""
    vc = k.vcore_of(v)
    t = k.vcpu_task[v]
    cpu = t.cpu
    yield StoreN({vcpu(v, "ret"): RESUME_GUEST, vcpu(v, "trap"): 0, vcpu(v, "exit_reason"): None})
    yield SpinLock(vcore(vc, "lock"))
    state, n_blocked, n_runnable, runnable = yield LoadN(vcpu(v, "state"), vcore(vc, "n_blocked"), vcore(vc, "n_runnable"), vcore(vc, "runnable_threads"))
    updates = {vcpu(v, "state"): RUNNABLE, vcpu(v, "ptid"): n_runnable, vcore(vc, "runnable_threads"): (*runnable, v), vcore(vc, "n_runnable"): n_runnable + 1}
    if state in (BLOCKED, STOPPED):
        updates[vcore(vc, "n_blocked")] = n_blocked - 1
    yield StoreN(updates)
    yield Note(f"vcpu {k.vcpu_label(v)} runnable", event="vcpu_runnable", data={"vcpu": k.vcpu_label(v)})
    if k.patch("late-join-first-run"):
        # 3.2 on: join a running vcore at once, before waiting.  3.2-3.7 only on
        # the vCPU's first KVM_RUN (prev_state == KVMPPC_VCPU_STOPPED); 3.8 on
        # every run unless a signal is pending.
        running, eec, sig = yield LoadN(vcore(vc, "vcore_running"), vcore(vc, "entry_exit_count"), task(t.name, "sigpending"))
        join = not sig if k.patch("late-join-every-run") else state == STOPPED
        if join and running == VCORE_RUNNING and eec >> VCORE_EXIT_SHIFT == 0:
            yield Store(vcpu_started(v), 1)  # (ghost: the run now owes V a thread)
            yield from kvmppc_start_thread(k, v)  # late join
    sleep_state = TASK_INTERRUPTIBLE
    while True:
        state, running, n_runnable, n_blocked, num_threads, eec, sig = yield LoadN(
            vcpu(v, "state"),
            vcore(vc, "vcore_running"),
            vcore(vc, "n_runnable"),
            vcore(vc, "n_blocked"),
            vcore(vc, "num_threads"),
            vcore(vc, "entry_exit_count"),
            task(t.name, "sigpending"),
        )
        if state != RUNNABLE:
            break
        if sig:
            if running == VCORE_INACTIVE:
                yield StoreN({vcpu(v, "ret"): EINTR, vcpu(v, "exit_reason"): "KVM_EXIT_INTR"})
                break
            sleep_state = TASK_UNINTERRUPTIBLE
            pcpu = yield Load(vcore(vc, "pcpu"))
            yield SendIPI(mfrr(pcpu), IPI_PRIORITY, f"cpu{pcpu}")  # smp_send_reschedule(vc->pcpu)
        if running == VCORE_INACTIVE and n_runnable + n_blocked == num_threads:
            started = yield from kvmppc_run_core(k, vc, cpu, t)
            if started and k.patch("late-join-first-run"):
                # 3.2 on: after a run, every runnable vCPU whose task has a signal
                # pending leaves with -EINTR (one that became runnable during the
                # run and slept uninterruptibly is woken here).
                runnable, *sigs = yield LoadN(vcore(vc, "runnable_threads"), *(task(k.vcpu_task[x].name, "sigpending") for x in k.vcores[vc].vcpus))
                pending = dict(zip(k.vcores[vc].vcpus, sigs, strict=True))
                for x in runnable:
                    if pending[x]:
                        yield from kvmppc_remove_runnable(k, vc, x)
                        yield StoreN({vcpu(x, "ret"): EINTR, vcpu(x, "exit_reason"): "KVM_EXIT_INTR"})
                        yield from host.wake_up(k, k.vcpu_task[x])
            if started:
                continue
        if not k.patch("late-join-first-run") and running == VCORE_RUNNING and eec >> VCORE_EXIT_SHIFT == 0:
            # 3.1: the late join is tried on every pass, so a task woken while
            # its vCPU already runs in the vcore (a signal) starts it again (H3).
            yield Store(vcpu_started(v), 1)  # (ghost: the run now owes V a thread)
            yield from kvmppc_start_thread(k, v)
        # prepare_to_wait(&vcpu->arch.cpu_run); unlock; schedule(); lock
        yield from host.set_current_state(k, t, sleep_state)
        yield SpinUnlock(vcore(vc, "lock"))
        st = yield Load(vcpu(v, "state"))
        if st == RUNNABLE:
            yield from host.schedule(k, cpu, t)
        yield from host.set_current_state(k, t, TASK_RUNNING)
        yield SpinLock(vcore(vc, "lock"))
    state = yield Load(vcpu(v, "state"))
    if state == RUNNABLE:
        yield from kvmppc_remove_runnable(k, vc, v)
    ret = yield Load(vcpu(v, "ret"))
    yield SpinUnlock(vcore(vc, "lock"))
    return ret


def kvmppc_remove_runnable(k: Kvm, vc: int, v: int) -> Body:
    """Lock held: V leaves the runnable list; the vCPUs after it move down one ptid."""
    state, n_runnable, runnable = yield LoadN(vcpu(v, "state"), vcore(vc, "n_runnable"), vcore(vc, "runnable_threads"))
    if state != RUNNABLE:
        return
    rest = tuple(x for x in runnable if x != v)
    updates = {vcpu(v, "state"): BUSY_IN_HOST, vcore(vc, "n_runnable"): n_runnable - 1, vcore(vc, "runnable_threads"): rest}
    for ptid, x in enumerate(rest):
        updates[vcpu(x, "ptid")] = ptid
    yield StoreN(updates)


def kvmppc_vcpu_block(k: Kvm, v: int) -> Body:
    """H_CEDE handled in the host: BLOCKED until the guest DEC timer (hrtimer) fires."""
    vc = k.vcore_of(v)
    t = k.vcpu_task[v]
    yield SpinLock(vcore(vc, "lock"))  # kvmppc_vcpu_blocked
    n_blocked, n_runnable, num_threads, runnable = yield LoadN(vcore(vc, "n_blocked"), vcore(vc, "n_runnable"), vcore(vc, "num_threads"), vcore(vc, "runnable_threads"))
    yield StoreN({vcpu(v, "state"): BLOCKED, vcore(vc, "n_blocked"): n_blocked + 1, vcpu(v, "dec_timer"): 1})
    if n_runnable > 0 and n_runnable + n_blocked + 1 == num_threads:
        yield from host.wake_up(k, k.vcpu_task[runnable[0]])  # it can run the core now
    yield SpinUnlock(vcore(vc, "lock"))
    while True:  # kvm_vcpu_block: until the timer fires or a signal is pending
        yield from host.set_current_state(k, t, TASK_INTERRUPTIBLE)
        armed, sig = yield LoadN(vcpu(v, "dec_timer"), task(t.name, "sigpending"))
        if not armed or sig:
            break
        yield from host.schedule(k, t.cpu, t)
    yield from host.set_current_state(k, t, TASK_RUNNING)
    yield SpinLock(vcore(vc, "lock"))  # kvmppc_vcpu_unblocked
    n_blocked = yield Load(vcore(vc, "n_blocked"))
    # (a signal ended the wait: the DEC hrtimer is cancelled)
    yield StoreN({vcpu(v, "state"): BUSY_IN_HOST, vcore(vc, "n_blocked"): n_blocked - 1, vcpu(v, "dec_timer"): 0})
    yield SpinUnlock(vcore(vc, "lock"))


# ----------------------------------------------------------------- the runner
def on_primary_thread(k: Kvm, cpu: int) -> Body:
    """Thread 0 of its core, with every sibling offline (the host runs single-threaded).

    From 7b444c6710c6 it also grabs every sibling before any thread is started:
    if one stays in the kernel past the grab's timeout, the ones grabbed are
    released and the run fails (-EBUSY) instead of entering the guest (R1)."""
    if k.thread_of(cpu) != 0 or any(k.online(cpu + t) for t in range(1, k.threads_per_vcore)):
        return False
    if k.patch("start-secondary-races"):
        for thr in range(1, k.threads_per_vcore):
            err = yield from kvmppc_grab_hwthread(k, cpu + thr)
            if err:
                for t in range(thr, 0, -1):  # do { release(cpu + thr) } while (--thr > 0)
                    yield from kvmppc_release_hwthread(k, cpu + t)
                return False
    return True


def kvmppc_run_core(k: Kvm, vc: int, cpu: int, runner: object) -> Body:
    """§2.3 (entered and left with vc->lock held).  Returns 1 if the vcore ran."""
    runnable, *pending_sigs = yield LoadN(vcore(vc, "runnable_threads"), *(task(k.vcpu_task[x].name, "sigpending") for x in k.vcores[vc].vcpus))
    # 1. Don't start if any runnable vCPU's task has a signal pending.
    by_vcpu = dict(zip(k.vcores[vc].vcpus, pending_sigs, strict=True))
    if any(by_vcpu[x] for x in runnable):
        return 0
    primary = True
    if k.threads_per_vcore > 1:
        primary = yield from on_primary_thread(k, cpu)
    if not primary:  # 2.
        yield StoreN({vcpu(x, "ret"): EBUSY for x in runnable})
    else:
        # 3. Reset the run's rendezvous state.
        yield StoreN(
            {
                vcore(vc, "n_woken"): 0,
                vcore(vc, "nap_count"): 0,
                vcore(vc, "entry_exit_count"): 0,
                vcore(vc, "vcore_running"): VCORE_RUNNING,
                vcore(vc, "in_guest"): 0,
                vcore(vc, "napping_threads"): 0,
                vcore(vc, "pcpu"): cpu,
                # ghost: the vCPUs this run must start (a late join adds itself)
                **{vcpu_started(x): int(x in runnable) for x in k.vcores[vc].vcpus},
            }
        )
        yield Note(f"cpu{cpu} runs vcore {vc}", event="vcore_run", data={"vcore": vc, "cpu": cpu, "vcpus": [k.vcpu_label(x) for x in runnable]})
        for x in runnable:  # 4.
            yield from kvmppc_start_thread(k, x)
        if k.patch("stray-ipi-guard") and not k.patch("start-secondary-races"):
            for i in range(len(runnable), k.threads_per_vcore):  # P1: grab the unused threads (-EBUSY ignored: R1)
                yield from kvmppc_grab_hwthread(k, cpu + i)
        vcpu0 = runnable[0]
        # 5. 001 order: unlock, then disable preemption.
        yield SpinUnlock(vcore(vc, "lock"))
        yield Store(f"rq[{cpu}].preempt_count", 1)
        yield from __kvmppc_vcore_entry(k, cpu, vcpu0)  # 6.
        release_after_wait = k.patch("late-join-release-after-wait")
        if k.patch("stray-ipi-guard") and not release_after_wait:
            for i in range(k.threads_per_vcore):  # P4: release every thread
                yield from kvmppc_release_hwthread(k, cpu + i)
        yield SpinLock(vcore(vc, "lock"))  # 7.
        nap_count, n_woken = yield LoadN(vcore(vc, "nap_count"), vcore(vc, "n_woken"))
        if nap_count < n_woken:
            yield from kvmppc_wait_for_nap(k, vc)
        if release_after_wait:  # R2 fixed: a late-joining thread still finds hwthread_req set
            for i in range(k.threads_per_vcore):
                yield from kvmppc_release_hwthread(k, cpu + i)
        yield Store(vcore(vc, "vcore_running"), VCORE_EXITING)
        yield SpinUnlock(vcore(vc, "lock"))
        yield smp_mb()  # 8.
        yield Store(f"rq[{cpu}].preempt_count", 0)
        yield from host.cond_resched(k, cpu, runner)  # type: ignore[arg-type]
        # 9. The list is walked without the lock.  3.1: a vCPU that joins during the
        # walk (list_add_tail) is reached if it is added before the walk reads the
        # last entry's next pointer (the walk re-reads the list after each entry);
        # 3.2 on handles late arrivals in kvmppc_run_vcpu, so one snapshot serves.
        lazy = not k.patch("late-join-first-run")
        runnable = yield Load(vcore(vc, "runnable_threads"))
        i = 0
        while i < len(runnable):
            x = runnable[i]
            i += 1
            trap = yield Load(vcpu(x, "trap"))
            if trap == 0:
                sig = yield Load(task(k.vcpu_task[x].name, "sigpending"))
                ret = EINTR if sig else RESUME_GUEST
            else:
                ret = yield from kvmppc_handle_exit(k, x, trap)
            yield StoreN({vcpu(x, "ret"): ret, vcpu(x, "trap"): 0})
            if lazy and i == len(runnable):
                runnable = yield Load(vcore(vc, "runnable_threads"))  # the last entry's next pointer
        yield SpinLock(vcore(vc, "lock"))
    # 10.
    yield Store(vcore(vc, "vcore_running"), VCORE_INACTIVE)
    runnable = yield Load(vcore(vc, "runnable_threads"))
    for x in runnable:
        ret = yield Load(vcpu(x, "ret"))
        if ret != RESUME_GUEST:
            yield from kvmppc_remove_runnable(k, vc, x)
            yield from host.wake_up(k, k.vcpu_task[x])
    return 1


def kvmppc_start_thread(k: Kvm, v: int) -> Body:
    """§2.4: point the target thread's PACA at V, then IPI it (ptid != 0)."""
    vc = k.vcore_of(v)
    pcpu, ptid = yield LoadN(vcore(vc, "pcpu"), vcpu(v, "ptid"))
    cpu = pcpu + ptid
    yield StoreN({hstate(cpu, "kvm_vcpu"): v, hstate(cpu, "kvm_vcore"): vc, hstate(cpu, "napping"): 0})
    yield smp_wmb()
    if ptid != 0:
        if k.patch("stray-ipi-guard") and not k.patch("start-secondary-races"):
            yield from kvmppc_grab_hwthread(k, cpu)  # -EBUSY ignored, as in seed 000 (R1); 3.8 grabs in on_primary_thread
        else:
            yield Store(f"paca[{cpu}].cpu_start", 0x80)
            yield sync()  # wmb(): order the cacheable stores before the IPI
        yield SendIPI(mfrr(cpu), IPI_PRIORITY, f"cpu{cpu}")  # xics_wake_cpu
        n_woken = yield Load(vcore(vc, "n_woken"))
        yield Store(vcore(vc, "n_woken"), n_woken + 1)


def kvmppc_grab_hwthread(k: Kvm, cpu: int) -> Body:
    """Seed 000 (G1..G4): ask the thread not to enter the kernel; wait while it is in it."""
    if k.patch("start-secondary-races"):
        # 7b444c6710c6: the grab also clears the vCPU pointer, before the barrier
        yield StoreN({hstate(cpu, "hwthread_req"): 1, hstate(cpu, "kvm_vcpu"): None})  # G1
    else:
        yield Store(hstate(cpu, "hwthread_req"), 1)  # G1
    yield smp_mb()  # G2: pairs with the sync at the wake-up vector
    got = yield WaitUntil(
        (hstate(cpu, "hwthread_state"),),
        lambda s: s != KVM_HWTHREAD_IN_KERNEL,
        timeout=GRAB_TIMEOUT_US * 1000,
        what=f"paca[{cpu}].hwthread_state != IN_KERNEL",
    )
    if got is TIMEOUT:
        yield Note(f"KVM: couldn't grab cpu {cpu}", event="grab_timeout", data={"cpu": cpu})
        yield Store(f"kvm.grab_failures[{cpu}]", 1)
        return EBUSY
    yield Store(grabbed(cpu), 1)  # ghost: grab-sound holds the runner to what this return promises
    return 0


def kvmppc_release_hwthread(k: Kvm, cpu: int) -> Body:
    # (the ghost latches end with the request they latched)
    yield StoreN({hstate(cpu, "hwthread_req"): 0, hstate(cpu, "kvm_vcpu"): None, woke_with_req(cpu): 0, grabbed(cpu): 0})


def kvmppc_wait_for_nap(k: Kvm, vc: int) -> Body:
    """§2.3 step 7: wait for every woken secondary to nap; on timeout, print and carry on."""
    got = yield WaitUntil(
        (vcore(vc, "nap_count"), vcore(vc, "n_woken")),
        lambda nap, woken: nap >= woken,
        timeout=WAIT_FOR_NAP_POLLS,
        what="nap_count >= n_woken",
    )
    if got is TIMEOUT:
        nap, woken = yield LoadN(vcore(vc, "nap_count"), vcore(vc, "n_woken"))
        yield Note(f"kvmppc_wait_for_nap timeout {nap} {woken}", event="wait_for_nap_timeout", data={"vcore": vc})
        yield Store(vcore(vc, "wait_for_nap_timeouts"), 1)


def __kvmppc_vcore_entry(k: Kvm, cpu: int, v: int) -> Body:
    """Hard-disable interrupts, go to real mode, run as ptid 0, come back to virtual mode."""
    yield IrqDisable()
    yield MtMsr(clear_bits=MSR_IR | MSR_DR, what="to real mode")
    yield from book3s_hv_rmhandlers.kvmppc_hv_entry(k, cpu, v, 0)
    yield MtMsr(set_bits=MSR_IR | MSR_DR, what="rfid to virtual mode")
    yield IrqEnable()


def kvmppc_handle_exit(k: Kvm, v: int, trap: int) -> Body:
    """What the host does with a vCPU's exit: RESUME_GUEST, or back to its task."""
    if trap != BOOK3S_INTERRUPT_SYSCALL:
        # External interrupt / HDEC: handled by the host, the guest resumes.  3.1
        # tests here whether the vCPU's task has a signal pending (-EINTR, and the
        # task is woken); the 3.2 rework moved the test into kvmppc_run_vcpu.
        if not k.patch("late-join-first-run"):
            sig = yield Load(task(k.vcpu_task[v].name, "sigpending"))
            if sig:
                yield Store(vcpu(v, "exit_reason"), "KVM_EXIT_INTR")
                return EINTR
        return RESUME_GUEST
    hcall = yield Load(vcpu(v, "hcall"))
    if hcall == "H_CEDE":
        yield Store(vcpu(v, "exit_reason"), None)
        return RESUME_HOST  # the task blocks the vCPU (kvmppc_vcpu_block)
    yield Store(vcpu(v, "exit_reason"), "KVM_EXIT_SHUTDOWN" if hcall == "H_SHUTDOWN" else "KVM_EXIT_PAPR_HCALL")
    yield Note("kvmppc_handle_exit: back to userspace")
    yield Delay(1000, "kvmppc_handle_exit")
    return RESUME_HOST
