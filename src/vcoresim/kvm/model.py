"""Build a world from a scenario: the POWER machine, the host, KVM, the guests, the faults.

``build_world(world, cfg, patches)`` is what a scenario's program runs.  The
model reads a patch flag (``k.patch(name)``) only at the places the commit
changed; nothing here or in the monitors does.
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.msr import MSR_EE, MSR_KERNEL, MSR_RI
from vcoresim.engine.ops import Choose, Delay, IrqDisable, Load, Note, SendIPI, Store, WaitUntil, never
from vcoresim.engine.timing import exp_us
from vcoresim.engine.world import Body, HwThread, World
from vcoresim.errors import ConfigError
from vcoresim.kvm import book3s_hv, host, idle
from vcoresim.kvm.config import KVM_MAX_VCORES, ScenarioConfig
from vcoresim.kvm.context import Kvm
from vcoresim.kvm.invariants import install_monitors
from vcoresim.kvm.state import (
    BLOCKED,
    IPI_PRIORITY,
    KVM_GUEST_MODE_NONE,
    KVM_HWTHREAD_IN_KERNEL,
    LPID_HOST,
    MFRR_NONE,
    STOPPED,
    TASK_INTERRUPTIBLE,
    TASK_RUNNING,
    VCORE_INACTIVE,
    Task,
    Vcore,
    core,
    grabbed,
    host_stall,
    hstate,
    mfrr,
    paca,
    rq,
    stale_frame,
    task,
    vcore,
    vcpu,
    vcpu_started,
    woke_with_req,
)
from vcoresim.machine.thread import dec_expired, declare_thread_registers, lpcr_pece1, power_thread

__all__ = ["ConfigError", "Kvm", "build_world"]  # Kvm: kvm/context.py

#: Guest DEC period for a vCPU blocked in the host (check: fires only when all else is quiet).
DEC_TIMER_NS = 10_000_000
#: Guest rounds per vCPU of an open-ended workload: unbounded in practice.
OPEN_ENDED_ROUNDS = 1 << 62


def kvm_dev_ioctl_check_extension_smt(k: Kvm) -> int:
    """``KVM_CAP_PPC_SMT``: vCPUs per vcore (0 before seed 001: no such capability)."""
    return k.threads_per_vcore if k.patch("smt-guests") else 0


def kvmppc_core_vcpu_create(k: Kvm, w: World, vm_index: int, vcpu_id: int, gid: int, field: str) -> None:
    """Setup-time ``KVM_CREATE_VCPU``: vcore = id / threads_per_core; -EINVAL past KVM_MAX_VCORES."""
    core_no = vcpu_id // k.threads_per_vcore
    if core_no >= KVM_MAX_VCORES:
        raise ConfigError(field, f"KVM_CREATE_VCPU({vcpu_id}) fails with -EINVAL: vcore {core_no} >= KVM_MAX_VCORES ({KVM_MAX_VCORES})")
    key = vm_index * KVM_MAX_VCORES + core_no
    if key not in k.vcores:
        k.vcores[key] = Vcore(index=key, vm=vm_index, lpid=vm_index + 1)
    vc = k.vcores[key]
    vc.vcpus.append(gid)
    # 3.1: new vCPUs are BLOCKED (n_blocked++); the 3.2 rework creates them
    # STOPPED, "stopped until the first KVM_RUN" (the model's n_blocked counts both).
    k.vcpu_state0[gid] = STOPPED if k.patch("late-join-first-run") else BLOCKED
    k.vcpu_vcore[gid] = key
    k.vcpu_labels[gid] = str(vcpu_id) if not k.multi_vm else f"{k.cfg.vm[vm_index].name}.{vcpu_id}"


# ------------------------------------------------------------------ actors
def _hw_thread(k: Kvm, cpu: int, actor_ref: list[Any]) -> HwThread:
    req, latch = hstate(cpu, "hwthread_req"), woke_with_req(cpu)

    def on_wake(mem: dict[str, Any]) -> dict[str, Any]:
        return {latch: mem[req]}  # ghost: was KVM's request set when this thread woke?

    return power_thread(
        cpu,
        k.core_of(cpu),
        lambda: actor_ref[0].msr,
        host_vector=lambda kind: host.xics_ipi_action(k, cpu),
        reset_vector=lambda reason: idle.reset_vector(k, cpu, reason),
        stale_frame=lambda: executing_stale_frame(k, cpu),
        on_wake=on_wake,
        wake_reads=(req,),
        wake_writes=(latch,),
    )


def executing_stale_frame(k: Kvm, cpu: int) -> Body:
    """A return through a frame whose function already returned: garbage, then a hang."""
    yield Note(f"cpu{cpu} returns through a dead stack frame (PACAR1)", event="stale_frame", data={"cpu": cpu})
    yield Store(stale_frame(cpu), 1)  # ghost, for no-stale-frame-return
    yield IrqDisable()
    yield WaitUntil((paca(cpu, "saved_r1"),), lambda _v: False, what="executing garbage: stuck")


def qemu_start_vcpus(k: Kvm, vcpus: list[int]) -> Body:
    """QEMU's main thread starts the vCPU threads.

    Abstraction: the threads of each CPU's run queue are made runnable in one
    step (``try_to_wake_up`` for each under that run queue's lock); which of
    them runs first, and when, is still the scheduler's choice.
    """
    by_cpu: dict[int, list[Task]] = {}
    for v in vcpus:
        by_cpu.setdefault(k.vcpu_task[v].cpu, []).append(k.vcpu_task[v])
    for cpu, tasks in by_cpu.items():
        yield from host.try_to_wake_up_many(k, cpu, tasks)


def stray_ipi_source(k: Kvm, budget: int) -> Body:
    """Fault: raise the MFRR of any secondary thread (or of ``faults.stray_ipi_targets``)
    at any time, up to ``budget`` times."""
    chosen = k.cfg.faults.stray_ipi_targets
    targets = tuple(cpu for cpu in k.cpus if not k.online(cpu) and (chosen is None or cpu in chosen))
    for _ in range(budget):
        yield Delay(exp_us(k.cfg.faults.mean_interval_us), "until the next stray IPI")
        target = yield Choose((*targets, None), what="stray IPI target (None: no more)")
        if target is None:
            return
        yield Note(f"stray IPI to cpu{target}", event="ipi_sent", data={"target": target, "stray": True})
        yield SendIPI(mfrr(target), IPI_PRIORITY, f"cpu{target}")


def signal_source(k: Kvm, budget: int) -> Body:
    """Fault: send a signal to a vCPU task (QEMU kicking its vCPU thread)."""
    names = tuple(t.name for t in k.vcpu_task.values())
    vcpu_of = {t.name: k.vcpu_label(v) for v, t in k.vcpu_task.items()}
    for _ in range(budget):
        yield Delay(exp_us(k.cfg.faults.mean_interval_us), "until the next signal")
        target = yield Choose((*names, None), what="signal target (None: no more)")
        if target is None:
            return
        yield Note(f"signal to {target}", event="signal", data={"task": target, "vcpu": vcpu_of[target]})
        yield from host.send_signal(k, k.tasks[target])


def host_stall_source(k: Kvm, budget: int) -> Body:
    """Fault: hold an offline secondary in host kernel code (the stall point of
    ``pnv_smp_cpu_kill_self``), up to ``budget`` times: a long interrupt
    handler, a firmware excursion, a CPU being brought online.  Checking
    releases it only when nothing else can move (so a grab may time out
    first); a timed run after ``faults.host_stall_us``."""
    targets = tuple(cpu for cpu in k.cpus if not k.online(cpu))
    for _ in range(budget):
        yield Delay(exp_us(k.cfg.faults.mean_interval_us), "until the next host stall")
        target = yield Choose((*targets, None), what="thread to hold in the host kernel (None: no more)")
        if target is None:
            return
        yield Note(f"cpu{target} held in the host kernel", event="host_stall", data={"cpu": target})
        yield Store(host_stall(target), 1)
        yield WaitUntil((host_stall(target),), never, timeout=k.cfg.faults.host_stall_us * 1000, what="host stall lasts")
        yield Store(host_stall(target), 0)


def ceded_dec_source(k: Kvm) -> Body:
    """Checking: the guest decrementers of threads napping for H_CEDE (LPCR[PECE1]
    set) expire when nothing else can move, waking them (a timed run fires the
    DEC timer each cede arms instead)."""
    locs = tuple(lpcr_pece1(cpu) for cpu in k.cpus)
    any_set = lambda *pece1: any(pece1)
    while True:
        yield WaitUntil(locs, never, timeout=DEC_TIMER_NS, what="guest DEC of a ceded thread", timeout_if=any_set)
        for cpu in k.cpus:
            on = yield Load(lpcr_pece1(cpu))
            if on:
                yield Store(dec_expired(cpu), 1)


def dec_timer_source(k: Kvm, vcpus: list[int]) -> Body:
    """The guest DEC hrtimers of vCPUs blocked in the host.

    Bounded workload: one source for every vCPU; an armed timer fires when all
    else is quiet (a pure timer wait, racing with no step).  Open-ended
    workload: one source per vCPU, firing a ``cede`` period after its vCPU
    blocked."""
    locs = tuple(vcpu(v, "dec_timer") for v in vcpus)
    any_armed = lambda *armed: any(armed)
    while True:
        if not k.open_ended:
            yield WaitUntil(locs, never, timeout=DEC_TIMER_NS, what="DEC timer period", timeout_if=any_armed)
        else:
            yield WaitUntil(locs, any_armed, what="a blocked vCPU's DEC timer armed")
            yield WaitUntil(locs, never, timeout=k.cede_dist, what="DEC timer period")
        for v in vcpus:  # every armed timer has expired by now
            on = yield Load(vcpu(v, "dec_timer"))
            if on:
                yield Store(vcpu(v, "dec_timer"), 0)
                yield from host.try_to_wake_up(k, k.vcpu_task[v])


# ------------------------------------------------------------------- build
def build_world(w: World, cfg: ScenarioConfig, patches: frozenset[str], monitors: dict[str, Any] | None = None) -> None:
    """``monitors``: a dict the caller keeps across the worlds of one program.
    The monitors read only the world's memory and threads (``MonitorView``)
    and the configuration's topology, so the first world's are installed in
    every later one instead of being built again for each execution."""
    if cfg.model != "vcore":  # the seed-002 / seed-004 models build their own worlds
        from vcoresim.kvm import entry_p9, hmi

        {"entry": entry_p9.build_world, "timebase": hmi.build_world}[cfg.model](w, cfg, patches)
        return
    k = Kvm(cfg, patches)
    bad = [cpu for cpu in cfg.faults.stray_ipi_targets or () if cpu not in k.cpus or k.online(cpu)]
    if bad:
        raise ConfigError("faults.stray_ipi_targets", f"cpu{bad[0]} is not an offline secondary thread of this machine")
    online = [cpu for cpu in k.cpus if k.online(cpu)]
    gid = 0
    pinned: dict[int, int] = {}  # vCPU -> the host CPU its QEMU thread is pinned to
    for vi, vm in enumerate(cfg.vm):
        for i, vid in enumerate(vm.vcpus):
            kvmppc_core_vcpu_create(k, w, vi, vid, gid, f"vm[{vi}].vcpus")
            if vm.pin is not None:
                if vm.pin[i] not in online:
                    raise ConfigError(f"vm[{vi}].pin", f"cpu{vm.pin[i]} is not an online CPU of this machine (thread 0 of a core: {online})")
                pinned[gid] = vm.pin[i]
            gid += 1
    all_vcpus = list(range(gid))
    # Memory: machine, PACA, XICS.  Under a weak memory model, SPRs (LPIDR, HDEC),
    # the XICS (cache-inhibited MMIO) and ghost state bypass the store buffers.
    w.uncached = ("core[", "xics[", "ghost[", "thread[", "fault.")
    for c in range(k.ncores):
        w.loc(core(c, "lpid"), LPID_HOST)
        w.loc(core(c, "hdec_expired"), 0)
    for cpu in k.cpus:
        w.loc(mfrr(cpu), MFRR_NONE)
        w.loc(paca(cpu, "saved_r1"), 0)
        w.loc(paca(cpu, "nap_state_lost"), 0)
        w.loc(paca(cpu, "cpu_start"), 0)
        w.loc(hstate(cpu, "kvm_vcpu"), None)
        w.loc(hstate(cpu, "kvm_vcore"), None)
        w.loc(hstate(cpu, "in_guest"), KVM_GUEST_MODE_NONE)
        w.loc(hstate(cpu, "napping"), 0)
        w.loc(hstate(cpu, "host_r1"), 0)
        w.loc(hstate(cpu, "hwthread_req"), 0)
        w.loc(hstate(cpu, "hwthread_state"), KVM_HWTHREAD_IN_KERNEL)
        w.loc(woke_with_req(cpu), 0)
        w.loc(grabbed(cpu), 0)
        w.loc(stale_frame(cpu), 0)
        w.loc(host_stall(cpu), 0)
        declare_thread_registers(w, cpu)
    # Vcores and vCPUs.
    for vc in k.vcores.values():
        n = len(vc.vcpus)
        for name, init in (
            ("lock", 0),
            ("num_threads", n),
            ("n_runnable", 0),
            ("n_blocked", n),  # new vCPUs start BLOCKED (3.1) or STOPPED (3.2 on)
            ("runnable_threads", ()),
            ("vcore_running", VCORE_INACTIVE),
            ("pcpu", 0),
            ("n_woken", 0),
            ("nap_count", 0),
            ("entry_exit_count", 0),
            ("in_guest", 0),
            ("napping_threads", 0),
            ("wait_for_nap_timeouts", 0),
        ):
            w.loc(vcore(vc.index, name), init)
    for v in all_vcpus:
        for name, init in (
            ("state", k.vcpu_state0[v]),
            ("ptid", 0),
            ("ret", 0),
            ("trap", 0),
            ("exit_reason", None),
            ("hcall", None),
            ("ceded", 0),
            ("prodded", 0),
            ("dec_timer", 0),
            ("guest_rounds", OPEN_ENDED_ROUNDS if k.open_ended else cfg.workload.rounds),
            ("thread_done", 0),
        ):
            w.loc(vcpu(v, name), init)
        w.loc(vcpu_started(v), 0)
    for cpu in k.cpus:
        w.loc(f"kvm.grab_failures[{cpu}]", 0)
    for vi in range(len(cfg.vm)):
        w.loc(f"vm[{vi}].shutdown", 0)
    # Host tasks: an idle task per online CPU and QEMU's vCPU threads.
    for cpu in online:
        idle_t = Task(f"swapper/{cpu}", cpu, None, msr=MSR_KERNEL & ~MSR_EE, is_idle=True)
        k.idle_task[cpu] = idle_t
        k.tasks[idle_t.name] = idle_t
        w.loc(rq(cpu, "lock"), 0)
        w.loc(rq(cpu, "queue"), ())
        w.loc(rq(cpu, "curr"), idle_t.name)
        w.loc(rq(cpu, "preempt_count"), 0)
        w.loc(task(idle_t.name, "state"), TASK_RUNNING)
        w.loc(task(idle_t.name, "sigpending"), 0)
    for v in all_vcpus:
        cpu = pinned.get(v, online[v % len(online)])  # pinned, else spread over the online CPUs
        name = f"qemu-vcpu{k.vcpu_label(v)}"
        t = Task(name, cpu, None, msr=MSR_KERNEL)
        t.entry = (lambda _v=v: book3s_hv.qemu_vcpu_thread(k, _v))
        k.vcpu_task[v] = t
        k.tasks[name] = t
        w.loc(task(name, "state"), TASK_INTERRUPTIBLE)
        w.loc(task(name, "sigpending"), 0)
    # Hardware threads.
    for cpu in k.cpus:
        ref: list[Any] = [None]
        hw = _hw_thread(k, cpu, ref)
        if k.online(cpu):
            body = host.cpu_idle(k, cpu)
            msr = MSR_KERNEL & ~MSR_EE
        else:
            body = idle.pnv_smp_cpu_kill_self(k, cpu)
            msr = MSR_KERNEL & ~MSR_EE
        # Boot: every thread has gone idle (secondaries offline and napping) before KVM starts.
        ref[0] = w.spawn(f"cpu{cpu}", body, daemon=True, hw=hw, msr=msr | MSR_RI, role="cpu", boot=True)
    # Environment.
    w.spawn("qemu", qemu_start_vcpus(k, all_vcpus), role="env")
    if cfg.faults.stray_ipi:
        w.spawn("stray_ipi", stray_ipi_source(k, cfg.faults.stray_ipi), role="env")
    if cfg.faults.signal:
        w.spawn("signal", signal_source(k, cfg.faults.signal), role="env")
    if cfg.faults.host_stall:
        w.spawn("host_stall", host_stall_source(k, cfg.faults.host_stall), role="env")
    if "cede" in k.guest_actions and not k.open_ended:  # (idle unless a real-mode cede sets PECE1)
        w.spawn("guest_dec", ceded_dec_source(k), daemon=True, role="env")
    if "cede" in k.guest_actions:
        if not k.open_ended:
            w.spawn("dec_timer", dec_timer_source(k, all_vcpus), daemon=True, role="env")
        else:
            for v in all_vcpus:
                w.spawn(f"dec_timer{k.vcpu_label(v)}", dec_timer_source(k, [v]), daemon=True, role="env")
    _install_monitors(w, k, cfg, monitors)


def _install_monitors(w: World, k: Kvm, cfg: ScenarioConfig, monitors: dict[str, Any] | None) -> None:
    """``install_monitors``, or what it set in the first world (``build_world``).
    Only the world's fields it changed are carried over; if it declared
    locations or spawned actors (state of each world's own) it runs every time."""
    built = monitors.get("vcore", False) if monitors is not None else None
    if built:
        for name, value in built.items():
            setattr(w, name, _shallow(value))
        return
    import dataclasses

    before = {f.name: _shallow(getattr(w, f.name)) for f in dataclasses.fields(w)}
    install_monitors(w, k, cfg.invariants)
    if monitors is not None and built is False:
        changed = {name: _shallow(getattr(w, name)) for name, old in before.items() if getattr(w, name) != old}
        monitors["vcore"] = None if "mem" in changed or "actors" in changed else changed


def _shallow(v: Any) -> Any:
    return list(v) if type(v) is list else dict(v) if type(v) is dict else v
