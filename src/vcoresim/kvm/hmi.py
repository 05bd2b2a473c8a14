"""Timebase-error HMIs on a POWER8 core with guests, before and after seed 002.

One core, split into 1, 2 or 4 subcores, each with its own TB register
(``core[0].tb[s]``, stored as TB − TOD, see :mod:`vcoresim.machine.timebase`).
VM *i* runs on subcore *i* (one vCPU, on the subcore's primary thread, with
the VM's ``tb_offset``); the other subcores run host code on an online thread
with interrupts on.  A fault stops the timebase (TB invalid on every subcore)
and raises an HMI on every modelled thread; each takes it when it can.

Before seed 002 (``hmi-subcore-sync`` off) a thread in a guest calls OPAL
from the HMI vector while still in guest context, OPAL reloads every
subcore's TB from the TOD, and the exit path then subtracts the guest offset
from host time; a host thread's OPAL call also reloads the TB of a subcore
whose guest is running.  After it, the vector exits the guest first; the
primary marks its subcore out of guest (``in_guest[]``), one primary wins
bit 63 and resyncs the TB after every subcore is out, the others wait; host
threads bracket their OPAL call with the same waits.

Step labels (E3, X6, K2, R2 ...) follow shared/reference/hmi-timebase.md §2.
Approximations (also in docs/scenarios.md): one thread per subcore is
modelled (the primary, or the online host thread); secondaries and
KVM-grabbed idle threads are left out; the TB error invalidates every
subcore's TB at once; OPAL is one lock, the TB-validity test and the TOD
reload; the virtual-mode half of the HMI handler only reads the timebase.

Durations (instant in checking, see engine/timing.py) are the same in both
kernels: TB errors come at exponential intervals of mean
``faults.mean_interval_us``; each guest round runs until the HDEC fires at
the host's next tick (``Timing.host_tick_ns``); every software read is
logged as a ``tb_read`` event (what it read and what it should have read)
for the timebase-error metric of a timed run.  An open-ended workload
(``workload.open_ended``, as ``vcoresim simulate`` runs it) repeats: TB errors
for the whole run, each primary runs its guest round after round, and host
threads read the timebase at every host tick.
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.msr import MSR_DR, MSR_EE, MSR_HV, MSR_IR, MSR_KERNEL, MSR_PR, MSR_RI
from vcoresim.engine.ops import (
    TIMEOUT,
    Choose,
    Delay,
    IrqDisable,
    IrqEnable,
    Load,
    LoadN,
    MtMsr,
    Note,
    SetTimer,
    Store,
    StoreN,
    WaitUntil,
    clear_bit,
    test_and_set_bit,
)
from vcoresim.engine.timing import NextTick, Until, exp_us
from vcoresim.engine.world import Body, HwThread, Invariant, Liveness, World
from vcoresim.errors import ConfigError
from vcoresim.kvm.config import ScenarioConfig
from vcoresim.machine import opal
from vcoresim.machine.interrupts import BOOK3S_INTERRUPT_HMI, BOOK3S_INTERRUPT_HV_DECREMENTER, MSR_GUEST, GuestInterrupt
from vcoresim.machine.opal import opal_handle_hmi, opal_resync_timebase
from vcoresim.machine.timebase import hmer, round_tb_offset, subcore, tb, tb_valid
from vcoresim.machine.topology import MAX_SUBCORE_PER_CORE

CORE_TB_RESYNC_REQ_BIT = 63
#: The guest's timeslice: HDEC := DEC at entry, until the host's next tick (HZ=250).
HDEC_AT_ENTRY = NextTick("host_tick_ns")
#: Guest rounds and TB errors of an open-ended workload: unbounded in practice.
OPEN_ENDED = 1 << 62


# ----------------------------------------------------------------- locations
def sibling(field_: str) -> str:
    """``paca->sibling_subcore_state``, one per core."""
    return f"core[0].sibling_subcore_state.{field_}"


def in_guest(i: int) -> str:
    return sibling(f"in_guest[{i}]")


FLAGS = sibling("flags")
FAULTS_DONE = "ghost.tb_errors_done"


def resync_leader(cpu: int) -> str:
    """Ghost (not kernel state): this thread won bit 63 and is resyncing the TB."""
    return f"ghost[{cpu}].tb_resync_leader"


def mftb_seen(cpu: int) -> str:
    """Ghost: the last timebase value software read on this thread (value, valid, who)."""
    return f"ghost[{cpu}].mftb"


class Timebase:
    """The model's context: split mode, which subcore runs which guest, patches."""

    def __fp__(self) -> str:
        """The state cache's name for the context: configuration, which nothing
        changes while checking (engine/fingerprint.py)."""
        return "timebase"

    def __init__(self, cfg: ScenarioConfig, patches: frozenset[str]) -> None:
        self.cfg = cfg
        self.patches = patches
        self.split = cfg.machine.split_core
        self.threads_per_subcore = cfg.machine.threads // self.split
        self.subcores = range(self.split)
        self.offset = {s: round_tb_offset(vm.tb_offset) for s, vm in enumerate(cfg.vm)}
        self.scope_core = cfg.machine.opal_tb_scope == "core"
        #: The firmware's thread gathering for a TB error (machine/opal.py).
        self.opal_hmi = {"rendezvous": cfg.machine.opal_hmi_rendezvous, "threads": self.cpus, "subcores": list(self.subcores)}
        self.open_ended = cfg.workload.open_ended

    def patch(self, name: str) -> bool:
        return name in self.patches

    def cpu_of(self, s: int) -> int:
        """The subcore's primary thread (subcore id = thread / subcore size)."""
        return s * self.threads_per_subcore

    @property
    def cpus(self) -> list[int]:
        return [self.cpu_of(s) for s in self.subcores]

    def scope(self, s: int) -> list[int]:
        """The subcores whose TB an OPAL TOD reload rewrites."""
        return list(self.subcores) if self.scope_core else [s]


# ---------------------------------------------------------------- software
def mftb(k: Timebase, cpu: int, s: int, who: str) -> Body:
    """Read this subcore's TB; the ghost keeps what was read for the monitors."""
    value, valid = yield LoadN(tb(s), tb_valid(s))
    yield Store(mftb_seen(cpu), (value, valid, who))
    yield from note_tb_read(k, cpu, s, who, value, valid)
    return value, valid


def note_tb_read(k: Timebase, cpu: int, s: int, who: str, value: int, valid: int) -> Body:
    """Log a software read of the timebase (TB − TOD) and what it should be, for
    the timed run's metric (an event only: no time passes, checking ignores it)."""
    expected = k.offset.get(s, 0) if who == "guest" else 0
    yield Delay(0, "mftb", event="tb_read", data={"cpu": cpu, "subcore": s, "who": who, "tb_minus_tod": value, "expected": expected, "valid": bool(valid)})


# --------------------------------------------------------- Linux HMI paths
def wait_for_subcore_guest_exit(k: Timebase, cpu: int) -> Body:
    """R2 / K4: scan ``in_guest[0..3]``, spinning on each entry while it is set."""
    for i in range(MAX_SUBCORE_PER_CORE):
        yield WaitUntil((in_guest(i),), lambda g: not g, what=f"in_guest[{i}] == 0")


def wait_for_tb_resync(k: Timebase, cpu: int) -> Body:
    """R4 / K6 (non-leader): spin while bit 63 (a TB resync is owed) is set."""
    yield WaitUntil((FLAGS,), lambda f: not f >> CORE_TB_RESYNC_REQ_BIT & 1, what="TB resync done (bit 63 clear)")


def hmi_exception_realmode(k: Timebase, cpu: int, s: int) -> Body:
    """§2.5 (R1–R4); before seed 002 only R1 and R3 (``traps.c``)."""
    yield Note(f"cpu{cpu}: hmi_exception_realmode", event="hmi", data={"cpu": cpu})  # R1
    if k.patch("hmi-subcore-sync"):
        yield from wait_for_subcore_guest_exit(k, cpu)  # R2
    yield from opal_handle_hmi(cpu, s, k.scope(s), **k.opal_hmi)  # R3
    if k.patch("hmi-subcore-sync"):
        yield from wait_for_tb_resync(k, cpu)  # R4


def hmi_exception_host(k: Timebase, cpu: int, s: int) -> Body:
    """Vector 0xe60 taken in the host: the real-mode half, then the virtual-mode half
    (``hmi_exception_after_realmode`` → ``handle_hmi_exception``), which reads the TB."""
    yield from hmi_exception_realmode(k, cpu, s)
    yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="hmi_exception_after_realmode: MMU on")
    yield from mftb(k, cpu, s, "host")


def hmi_exception_early(k: Timebase, cpu: int, s: int) -> Body:
    """Vector 0xe60 taken in a guest.  Before seed 002 the prologue has no KVM test:
    OPAL runs here, in guest context (H0a), then the KVM test sends it to the exit
    path (H0b).  After it, ``KVMTEST_HV`` exits the guest first (H0)."""
    if not k.patch("hmi-subcore-sync"):
        yield from hmi_exception_realmode(k, cpu, s)  # H0a


def kvmppc_realmode_hmi_handler(k: Timebase, cpu: int, s: int) -> Body:
    """§2.6 (K1–K7): a primary whose exit trap is an HMI."""
    old = yield test_and_set_bit(FLAGS, CORE_TB_RESYNC_REQ_BIT)  # K2
    leader = not old >> CORE_TB_RESYNC_REQ_BIT & 1
    yield Store(in_guest(s), 0)  # K3: kvmppc_subcore_exit_guest, after the bit
    yield from wait_for_subcore_guest_exit(k, cpu)  # K4
    yield from opal_handle_hmi(cpu, s, k.scope(s), **k.opal_hmi)  # K5
    if leader:  # K6: kvmppc_tb_resync_required() won
        yield Store(resync_leader(cpu), 1)
        yield from opal_resync_timebase(cpu, s, k.scope(s))
        yield Store(resync_leader(cpu), 0)
        yield clear_bit(FLAGS, CORE_TB_RESYNC_REQ_BIT)  # kvmppc_tb_resync_done
    else:
        yield from wait_for_tb_resync(k, cpu)


# ------------------------------------------------------------- KVM, primary
def kvmppc_hv_entry(k: Timebase, cpu: int, s: int) -> Body:
    """E2–E7, the guest, and the primary's exit X3–X8; returns the trap."""
    d = k.offset[s]
    yield Store(subcore(s, "lpid"), s + 1)  # E2
    if d:  # E3: TB += tb_offset (TBU40)
        t = yield Load(tb(s))
        yield Store(tb(s), t + d)
    if k.patch("hmi-subcore-sync"):
        yield Store(in_guest(s), 1)  # E5: kvmppc_subcore_enter_guest
    yield SetTimer(subcore(s, "hdec_expired"), HDEC_AT_ENTRY)  # E7: HDEC := DEC with the guest registers
    trap = yield from guest_run(k, cpu, s)  # E7 … H0
    yield Store(subcore(s, "lpid"), 0)  # X3
    if k.patch("hmi-subcore-sync") and trap == BOOK3S_INTERRUPT_HMI:
        yield from kvmppc_realmode_hmi_handler(k, cpu, s)  # X5 (no subtract, K3 did X7)
    else:
        if d:  # X6: TB -= tb_offset (before seed 002, also after an HMI)
            t = yield Load(tb(s))
            yield Store(tb(s), t - d)
        if k.patch("hmi-subcore-sync"):
            yield Store(in_guest(s), 0)  # X7: kvmppc_subcore_exit_guest
    yield SetTimer(subcore(s, "hdec_expired"), None)  # X8: HDEC = max
    yield Store(subcore(s, "hdec_expired"), 0)
    return trap


def guest_run(k: Timebase, cpu: int, s: int) -> Body:
    """The guest reads its timebase (its clocksource) whenever it changes, until the
    HDEC ends its timeslice or an interrupt exits it."""
    try:
        yield MtMsr(set_bits=MSR_GUEST, clear_bits=MSR_HV | MSR_PR, what="hrfid: enter guest")
        yield Note("guest runs", event="guest_enter", data={"cpu": cpu, "subcore": s})
        seen = yield from mftb(k, cpu, s, "guest")
        while True:
            got = yield WaitUntil((tb(s), tb_valid(s)), lambda t, v, _seen=seen: (t, v) != _seen, timeout=Until(subcore(s, "hdec_expired")), what="guest runs, reading its timebase, until HDEC")
            if got is TIMEOUT:
                yield Store(subcore(s, "hdec_expired"), 1)  # HDEC interrupt next
                yield WaitUntil((subcore(s, "hdec_expired"),), lambda h: False, what="guest (HDEC pending)")
            yield Store(mftb_seen(cpu), (*got, "guest"))
            yield from note_tb_read(k, cpu, s, "guest", *got)
            seen = got
    except GuestInterrupt as gi:
        yield Note("guest exit (interrupt)", event="guest_exit", data={"cpu": cpu, "subcore": s, "trap": gi.trap})
        if gi.trap == BOOK3S_INTERRUPT_HMI:
            yield from hmi_exception_early(k, cpu, s)
        return gi.trap


def kvm_subcore_primary(k: Timebase, s: int) -> Body:
    """The runner on subcore ``s``'s primary: run the guest ``rounds`` times; after each
    run host code reads the TB; then stay in the host until the faults are over."""
    cpu = k.cpu_of(s)
    for _ in range(OPEN_ENDED if k.open_ended else k.cfg.workload.rounds):
        yield IrqDisable()  # __kvmppc_vcore_entry
        yield MtMsr(clear_bits=MSR_IR | MSR_DR | MSR_RI, what="to real mode")
        yield from kvmppc_hv_entry(k, cpu, s)
        yield MtMsr(set_bits=MSR_IR | MSR_DR | MSR_RI, what="rfid to virtual mode")
        yield IrqEnable()
        yield from mftb(k, cpu, s, "host")
    yield from host_until_faults_done(k, cpu)


def host_thread(k: Timebase, s: int) -> Body:
    """An online host thread of a subcore without a guest."""
    cpu = k.cpu_of(s)
    yield IrqEnable()
    yield from mftb(k, cpu, s, "host")
    if k.open_ended:  # the host's timer interrupt reads the TB at every tick
        while True:
            yield WaitUntil((FAULTS_DONE,), lambda _d: False, timeout=NextTick("host_tick_ns"), what="host runs until its next tick")
            yield from mftb(k, cpu, s, "host")
    yield from host_until_faults_done(k, cpu)


def host_until_faults_done(k: Timebase, cpu: int) -> Body:
    """Host code with interrupts on until every fault was injected and this thread's HMI handled."""
    yield WaitUntil((FAULTS_DONE, hmer(cpu)), lambda d, h: bool(d) and not h, what="host runs (HMIs taken here)")


# --------------------------------------------------------------------- faults
def tb_error_source(k: Timebase, budget: int) -> Body:
    """Fault: the timebase stops (TFMR error, TB invalid) and every thread gets an HMI."""
    for _ in range(OPEN_ENDED if k.open_ended else budget):  # open-ended: for the whole run
        yield Delay(exp_us(k.cfg.faults.mean_interval_us), "until the next TB error")
        # Closed workload: the fault may also never come; open-ended: it comes.
        go = "tb-error" if k.open_ended else (yield Choose(("tb-error", None), what="timebase error (None: no more)"))
        if go is None:
            break
        yield Note("TB error: timebase invalid on every subcore", event="tb_error", data={"subcores": list(k.subcores)})
        if not k.cfg.faults.hmi_per_thread:
            # TB stops on every subcore, and HMER[TFAC] is set on every thread at once;
            # each thread takes its HMI when it next can (EE on, or in a guest).
            yield StoreN({**{tb_valid(s): 0 for s in k.subcores}, **{hmer(cpu): 1 for cpu in k.cpus}})
            continue
        # faults.hmi_per_thread: the TB stops on every subcore at once (one
        # core-wide timebase facility), then each thread's HMER is raised in a
        # step of its own, in any order: a thread may take its HMI, lead the
        # resync and even finish before a sibling's HMI is raised.
        yield StoreN({tb_valid(s): 0 for s in k.subcores})
        left = list(k.cpus)
        while left:
            cpu = left[0] if len(left) == 1 else (yield Choose(tuple(left), what="thread whose HMI is raised next"))
            left.remove(cpu)
            yield Store(hmer(cpu), 1)
    yield Store(FAULTS_DONE, 1)


# -------------------------------------------------------------------- machine
def _hw_thread(k: Timebase, cpu: int, s: int, ref: list[Any]) -> HwThread:
    irq_locs = (hmer(cpu), subcore(s, "hdec_expired"))

    def pending(mem: dict[str, Any]) -> str | None:
        if mem[hmer(cpu)]:
            return "hmi"
        if mem[subcore(s, "hdec_expired")] and not ref[0].msr & MSR_HV:
            return "hdec"
        return None

    def vector(kind: str) -> Any:
        if not ref[0].msr & MSR_HV:
            return GuestInterrupt(BOOK3S_INTERRUPT_HMI if kind == "hmi" else BOOK3S_INTERRUPT_HV_DECREMENTER)
        return hmi_exception_host(k, cpu, s)

    def never(*_a: Any) -> Any:
        raise AssertionError("no nap in the timebase model")

    return HwThread(irq_locs, pending, lambda mem: None, vector, never, never)


TIMEBASE_INVARIANTS: dict[str, str] = {
    "tb-host-reads-tod": "safety: host code reads its subcore's timebase equal to the chip TOD (when TB is valid): "
    "after an HMI is handled every subcore's timebase is back to the reference time",
    "tb-guest-reads-offset": "safety: a guest reads its subcore's timebase equal to the chip TOD plus its vcore's tb_offset (when TB is valid)",
    # Seed 002's protocol (hmi-timebase.md section 2.5-2.6; issue 17).
    "in-guest-truthful": "safety: sibling_subcore_state->in_guest[s] is set whenever subcore s runs guest code and clear whenever its thread "
    "runs host code with the MMU on: kvmppc_subcore_enter_guest (E5) precedes the guest, and kvmppc_subcore_exit_guest "
    "(K3 after an HMI, X7 after any other exit) precedes the return to the host, so a thread that waits for every "
    "in_guest[] to clear (wait_for_subcore_guest_exit, R2/K4) knows no subcore still runs with its guest's tb_offset",
    "subcore-partition": "safety: a subcore runs guest code only while its LPIDR holds its guest's LPID, and its thread runs host code "
    "with the MMU on only with LPIDR = host (kvmppc_hv_entry switches the partition before the guest, E2, and back "
    "before the exit path returns to the host, X3)",
    "tb-resync-one-leader": "safety: at most one thread resyncs the timebase at a time, and only while bit 63 of sibling_subcore_state->flags "
    "(CORE_TB_RESYNC_REQ_BIT) is still set: the leader is the one primary whose test_and_set_bit found it clear (K2), "
    "and it clears the bit only after opal_resync_timebase (K6), so every waiter (R4/K6) reads the resynced TB",
}

#: The timebase model's liveness (seed 002).
TIMEBASE_LIVENESS: dict[str, str] = {
    "tb-valid-again": "liveness: once a TB error has made a subcore's timebase invalid, it is valid again before the run ends: "
    "OPAL's recovery in the HMI handler (opal_handle_hmi, and the leader's opal_resync_timebase) reloads it from the TOD",
    "tb-resync-completes": "liveness: once a primary has set CORE_TB_RESYNC_REQ_BIT the bit is cleared again before the run ends: "
    "no thread waits (R4/K6) on a resync leader that will not come",
}


def build_world(w: World, cfg: ScenarioConfig, patches: frozenset[str]) -> None:
    if cfg.machine.cpu != "POWER8":
        raise ConfigError("machine.cpu", "the timebase model is POWER8 (split-core, OPAL TB recovery)")
    if cfg.machine.cores != 1:
        raise ConfigError("machine.cores", "the timebase model has one core")
    if len(cfg.vm) > cfg.machine.split_core:
        raise ConfigError("vm", f"one VM per subcore: {len(cfg.vm)} VMs on {cfg.machine.split_core} subcore(s)")
    if any(len(vm.vcpus) != 1 for vm in cfg.vm):
        raise ConfigError("vm.vcpus", "the timebase model runs one vCPU per VM (on its subcore's primary thread)")
    if any(vm.pin is not None for vm in cfg.vm):
        raise ConfigError("vm.pin", "the timebase model runs each vCPU on its subcore's primary thread (pin is a vcore-model field)")
    k = Timebase(cfg, patches)
    # Not memory (as in kvm/model.py): the timebase, TFMR, LPIDR, HDEC and HMER
    # are per-core or per-thread registers (mftb/mtspr/mfspr, no store buffer,
    # no propagation), and ghost state is the checker's.
    w.uncached = ("core[0].tb[", "core[0].tfmr[", "core[0].subcore[", *(hmer(cpu) for cpu in k.cpus), "ghost")
    for s in k.subcores:
        w.loc(tb(s), 0)
        w.loc(tb_valid(s), 1)
        w.loc(subcore(s, "lpid"), 0)
        w.loc(subcore(s, "hdec_expired"), 0)
    for i in range(MAX_SUBCORE_PER_CORE):
        w.loc(in_guest(i), 0)
    w.loc(FLAGS, 0)
    opal.declare(w, k.cpus)
    w.loc(FAULTS_DONE, 0)
    for cpu in k.cpus:
        w.loc(hmer(cpu), 0)
        w.loc(mftb_seen(cpu), None)
        w.loc(resync_leader(cpu), 0)
    for s in k.subcores:
        ref: list[Any] = [None]
        body = kvm_subcore_primary(k, s) if s in k.offset else host_thread(k, s)
        ref[0] = w.spawn(f"cpu{k.cpu_of(s)}", body, hw=_hw_thread(k, k.cpu_of(s), s, ref), msr=MSR_KERNEL & ~MSR_EE, role="cpu")
    w.spawn("tb_error", tb_error_source(k, cfg.faults.hmi), role="env")
    install_timebase_monitors(w, k, cfg.invariants)


def install_timebase_monitors(w: World, k: Timebase, selected: list[str] | None) -> None:
    applicable = [*TIMEBASE_INVARIANTS, *TIMEBASE_LIVENESS, "no-deadlock"]
    want = set(applicable) if selected is None else set(selected)
    bad = sorted(want - set(applicable))
    if bad:
        raise ConfigError("invariants", f"{bad[0]!r} does not apply to the timebase model (applicable: {', '.join(applicable)})")
    subcore_of = {k.cpu_of(s): s for s in k.subcores}

    def reads(who: str, expected: Any) -> Any:
        def check(ex: Any) -> str | None:
            for cpu, s in subcore_of.items():
                seen = ex.mem[mftb_seen(cpu)]
                if seen is None or seen[2] != who or not seen[1]:
                    continue
                want_ = expected(s)
                if seen[0] != want_:
                    rel = f"TOD{seen[0]:+#x}" if seen[0] else "TOD"
                    return f"{who} code on cpu{cpu} (subcore {s}) reads TB = {rel}, expected " + (f"TOD{want_:+#x}" if want_ else "TOD")
            return None

        return check

    locs = tuple(mftb_seen(cpu) for cpu in subcore_of)
    guest_subcores = [s for s in k.subcores if s in k.offset]
    actor_of = {s: next(i for i, a in enumerate(w.actors) if a.name == f"cpu{k.cpu_of(s)}") for s in guest_subcores}

    def in_guest_truthful(ex: Any) -> str | None:
        for s in guest_subcores:
            a = ex.actors[actor_of[s]]
            flag = ex.mem[in_guest(s)]
            if not a.msr & MSR_HV and not flag:
                return f"subcore {s} runs guest code while in_guest[{s}] = 0"
            if flag and a.msr & MSR_HV and a.msr & MSR_IR:
                return f"cpu{k.cpu_of(s)} runs host code with the MMU on while in_guest[{s}] = 1"
        return None

    def subcore_partition(ex: Any) -> str | None:
        for s in guest_subcores:
            a = ex.actors[actor_of[s]]
            lpid = ex.mem[subcore(s, "lpid")]
            if not a.msr & MSR_HV and lpid != s + 1:
                return f"subcore {s} runs guest code with LPIDR = {lpid}"
            if a.msr & MSR_HV and a.msr & MSR_IR and lpid != 0:
                return f"cpu{k.cpu_of(s)} runs host code with the MMU on while subcore {s}'s LPIDR = {lpid}"
        return None

    valid_locs = tuple(tb_valid(s) for s in k.subcores)

    def tb_invalid(ex: Any) -> bool:
        return not all(ex.mem[x] for x in valid_locs)

    leader_locs = tuple(resync_leader(cpu) for cpu in k.cpus)

    def one_leader(ex: Any) -> str | None:
        leaders = [cpu for cpu in k.cpus if ex.mem[resync_leader(cpu)]]
        if len(leaders) > 1:
            return f"cpus {leaders} resync the timebase at once"
        if leaders and not ex.mem[FLAGS] >> CORE_TB_RESYNC_REQ_BIT & 1:
            return f"cpu{leaders[0]} resyncs the timebase after bit 63 was cleared: the waiters went on before the resync"
        return None

    def bit63(ex: Any) -> bool:
        return bool(ex.mem[FLAGS] >> CORE_TB_RESYNC_REQ_BIT & 1)

    table = [
        Invariant("tb-host-reads-tod", TIMEBASE_INVARIANTS["tb-host-reads-tod"], locs, reads("host", lambda s: 0)),
        Invariant("tb-guest-reads-offset", TIMEBASE_INVARIANTS["tb-guest-reads-offset"], locs, reads("guest", lambda s: k.offset.get(s, 0))),
        Invariant(
            "in-guest-truthful",
            TIMEBASE_INVARIANTS["in-guest-truthful"],
            tuple(f"cpu:cpu{k.cpu_of(s)}" for s in guest_subcores) + tuple(in_guest(s) for s in guest_subcores),
            in_guest_truthful,
            tuple((f"cpu:cpu{k.cpu_of(s)}", in_guest(s)) for s in guest_subcores),
        ),
        Invariant("tb-resync-one-leader", TIMEBASE_INVARIANTS["tb-resync-one-leader"], (*leader_locs, FLAGS), one_leader),
        Invariant(
            "subcore-partition",
            TIMEBASE_INVARIANTS["subcore-partition"],
            tuple(f"cpu:cpu{k.cpu_of(s)}" for s in guest_subcores) + tuple(subcore(s, "lpid") for s in guest_subcores),
            subcore_partition,
            tuple((f"cpu:cpu{k.cpu_of(s)}", subcore(s, "lpid")) for s in guest_subcores),
        ),
    ]
    for inv in table:
        if inv.name in want:
            w.add_invariant(inv)
    if "tb-valid-again" in want:
        w.add_liveness(Liveness("tb-valid-again", TIMEBASE_LIVENESS["tb-valid-again"], valid_locs, trigger=tb_invalid, goal=lambda ex: not tb_invalid(ex), bound=None))
    if "tb-resync-completes" in want:
        w.add_liveness(Liveness("tb-resync-completes", TIMEBASE_LIVENESS["tb-resync-completes"], (FLAGS,), trigger=bit63, goal=lambda ex: not bit63(ex), bound=None))
    w.check_deadlock = "no-deadlock" in want
