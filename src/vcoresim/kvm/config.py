"""The configuration a KVM scenario describes (validated; errors name the field).

This is the contract between scenario files and the model: the model reads
only these fields.  TOML layout, one table per class below::

    name = "smt-vcore"
    [machine]   cpu = "POWER7", cores = 1
    [kernel]    preset = "v3.1", patches = { stray-ipi-guard = false }
    [[vm]]      vcpus = [0, 1]
    [workload]  rounds = 2, actions = ["exit", "cede"]
    [faults]    stray_ipi = 1
    [check]     strategy = "exhaustive", max_steps = 4000
    [simulate]  duration_us = 1000
    [expect]    verdict = "violation", invariant = "no-host-code-in-guest"
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from vcoresim.engine.timing import MAX_DURATION_NS, check_dist
from vcoresim.machine.topology import CPU_THREADS, supports_split_core

#: CONFIG_NR_CPUS of pseries_defconfig (3.x); a configuration value (the Kconfig
#: default for PPC64 is 32).
NR_CPUS = 1024
#: arch/powerpc/include/asm/kvm_host.h (3.1 to today): KVM_MAX_VCORES = NR_CPUS.
KVM_MAX_VCORES = NR_CPUS

Action = Literal["exit", "cede", "idle"]

#: Names of variants and VMs (``NAME@VARIANT``, ``vm0.1``).
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"
#: A 64-bit machine's integers (seeds, timebase offsets).
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Simulated time of one run, microseconds (1000 s: far beyond a practical timed run).
MAX_DURATION_US = 1_000_000_000
#: Relative weight of one action.
MAX_WEIGHT = 1e6


def Field(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING, **limits: Any) -> Any:
    """A field with pydantic's limits (``ge``, ``le``, ``gt``, ``min_length``,
    ``max_length``, ``pattern``) kept as metadata: ``scenarios/schema.py``
    validates a user's file with them; a built-in file is trusted (its test
    compares both paths)."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata=limits)


class _Strict:
    """A frozen table of the configuration.  Validated input (pydantic, no
    extra fields, no infinite or NaN floats) comes from ``scenarios/schema.py``;
    ``_check`` holds the rules across fields, run on every construction."""

    def __post_init__(self) -> None:
        self._check()

    def _check(self) -> Any:
        return self

    @staticmethod
    def _prepare(data: Any) -> Any:
        """The raw table before validation (a default filled in from its position)."""
        return data


@dataclass(frozen=True, kw_only=True)
class MachineConfig(_Strict):
    cpu: Literal["POWER7", "POWER8", "POWER9"] = "POWER7"
    cores: int = Field(1, ge=1, le=16)
    #: Optional: must equal the CPU's threads per core if given (catches "9 threads on POWER7").
    threads_per_core: int | None = None
    #: POWER8 split-core mode: 1, 2 or 4 subcores per core.
    split_core: Literal[1, 2, 4] = 1
    #: Which timebases OPAL's TB recovery and ``opal_resync_timebase`` reload from the
    #: chip TOD: every subcore's of the core (default, as Linux and the seed describe
    #: it) or only the calling thread's subcore (reference hmi-timebase.md §9.2).
    opal_tb_scope: Literal["core", "subcore"] = "core"
    #: How OPAL's HMI handler gathers the threads of a core for a timebase error
    #: (skiboot core/hmi.c): "none" (skiboot before 5.0, or 5.x for TFAC errors
    #: other than TB residue / HDEC parity); "subcore" (skiboot 5.0-5.11,
    #: pre_recovery_cleanup: a thread of every subcore arrives before any
    #: recovers); "core" (skiboot 6.0 on, handle_all_core_tfac_error: every
    #: thread meets at four rendezvous and thread 0 recovers the timebase).
    opal_hmi_rendezvous: Literal["none", "subcore", "core"] = "none"

    def _check(self) -> MachineConfig:
        native = CPU_THREADS[self.cpu]
        if self.threads_per_core is not None and self.threads_per_core != native:
            raise ValueError(f"threads_per_core: {self.cpu} has {native} threads per core, not {self.threads_per_core}")
        if self.split_core != 1 and not supports_split_core(self.cpu):
            raise ValueError(f"split_core: only POWER8 supports split-core, not {self.cpu}")
        return self

    @property
    def threads(self) -> int:
        return CPU_THREADS[self.cpu]

    @property
    def threads_per_subcore(self) -> int:
        return self.threads // self.split_core


@dataclass(frozen=True, kw_only=True)
class KernelConfig(_Strict):
    preset: str | None = None
    patches: dict[str, bool] = Field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class VmConfig(_Strict):
    #: Default: ``vm0``, ``vm1``, ... by position in the ``[[vm]]`` list.
    name: str = Field("vm0", pattern=NAME_PATTERN, max_length=64)
    vcpus: list[int] = Field(default_factory=lambda: [0], max_length=64)
    radix: bool = False
    #: Guest timebase offset in ticks (a migrated guest's TB differs from the host's).
    tb_offset: int = Field(0, ge=INT64_MIN, le=INT64_MAX)
    #: vcore model: the host CPU each vCPU's QEMU thread is pinned to (``taskset``,
    #: libvirt's ``vcpupin``), one per vCPU, each an online CPU (a core's thread 0);
    #: default: spread over the online CPUs in order.  Where a vcore runs is where
    #: its runner task runs, so this places a vcore on a core other than 0.
    pin: list[int] | None = Field(None, max_length=64)

    def _check(self) -> VmConfig:
        if not self.vcpus:
            raise ValueError("vcpus: a VM needs at least one vCPU")
        if self.pin is not None and len(self.pin) != len(self.vcpus):
            raise ValueError("pin: one host CPU per vCPU")
        if len(set(self.vcpus)) != len(self.vcpus):
            raise ValueError("vcpus: duplicate vCPU id")
        if any(v < 0 for v in self.vcpus):
            raise ValueError("vcpus: vCPU ids are >= 0")
        return self


@dataclass(frozen=True, kw_only=True)
class WorkloadConfig(_Strict):
    #: Guest rounds per vCPU in checking: each round the vCPU runs, then takes one action.
    rounds: int = Field(2, ge=0, le=16)
    #: What a vCPU may do at the end of a round (checking explores every choice).
    actions: list[Action] = Field(default_factory=lambda: ["exit"], max_length=16)
    # Simulation: mean durations (exponential), nanoseconds.
    run_ns: int = Field(50_000, ge=1, le=MAX_DURATION_NS)
    userspace_ns: int = Field(20_000, ge=0, le=MAX_DURATION_NS)
    cede_ns: int = Field(30_000, ge=0, le=MAX_DURATION_NS)
    #: Simulation: distributions replacing the exponential means above, as
    #: ``{dist = "lognormal", median_us = 40, sigma = 0.5}`` (see docs/simulate.md).
    run: dict[str, float | str] | None = None
    userspace: dict[str, float | str] | None = None
    cede: dict[str, float | str] | None = None
    #: Simulation: relative weights of ``actions`` (default: equal).
    weights: list[float] | None = None
    #: The environment never finishes on its own: unbounded guest rounds, timebase
    #: errors for the whole run, QEMU kicking its vCPU thread while it is in
    #: KVM_RUN, one DEC timer per vCPU.  ``vcoresim simulate`` runs every scenario
    #: so (a timed run ends at its duration); checking uses the bounded
    #: environment the scenario describes.
    open_ended: bool = False

    def _check(self) -> WorkloadConfig:
        if not self.actions:
            raise ValueError("actions: at least one action (exit, cede, idle)")
        for name in ("run", "userspace", "cede"):
            spec = getattr(self, name)
            if spec is not None:
                try:
                    check_dist(spec)
                except ValueError as e:
                    raise ValueError(f"{name}: {e}") from None
        if self.weights is not None and (
            len(self.weights) != len(self.actions) or any(not 0 <= w <= MAX_WEIGHT for w in self.weights) or not any(self.weights)
        ):
            raise ValueError(f"weights: one weight per action, each in [0, {MAX_WEIGHT:g}], not all zero")
        return self

    def dist(self, name: str) -> dict[str, float | str]:
        """The distribution of ``run`` / ``userspace`` / ``cede``: the table, else exponential with the mean."""
        spec = getattr(self, name)
        return dict(spec) if spec is not None else {"dist": "exp", "mean_ns": getattr(self, f"{name}_ns")}


@dataclass(frozen=True, kw_only=True)
class FaultsConfig(_Strict):
    stray_ipi: int = Field(0, ge=0, le=8)
    #: The threads stray IPIs may hit (default: every offline secondary).
    stray_ipi_targets: list[int] | None = None
    signal: int = Field(0, ge=0, le=8)
    resched: int = Field(0, ge=0, le=8)
    hmi: int = Field(0, ge=0, le=8)
    #: Entry model: host ticks on the runner's CPU (the DEC expires; the handler,
    #: ``timer_interrupt``, sets need_resched itself: no flag is set before it).
    host_tick: int = Field(0, ge=0, le=8)
    #: Entry model: how a signal's or a reschedule request's IPI reaches the
    #: runner's CPU: the interrupt controller (XICS MFRR: level-triggered, it
    #: stays asserted until the handler clears it) or a POWER9 ``msgsnd``
    #: doorbell (edge-triggered: consumed when the interrupt is taken).
    ipi: Literal["xics", "doorbell"] = "xics"
    #: Timebase model: after the timebase stops, raise each thread's HMI in a
    #: step of its own, in any order (default: on every thread at once).
    hmi_per_thread: bool = False
    nmi: int = Field(0, ge=0, le=8)
    #: Hold an offline secondary in host kernel code after an unexpected wake-up
    #: (a long interrupt handler, a firmware excursion, a CPU being brought
    #: online): checking releases it only when nothing else can move.
    host_stall: int = Field(0, ge=0, le=8)
    #: Simulation: how long an injected host stall lasts, microseconds.
    host_stall_us: int = Field(2000, ge=1)
    #: Simulation: mean time between faults of each kind, microseconds.
    mean_interval_us: int = Field(500, ge=1, le=MAX_DURATION_US)


@dataclass(frozen=True, kw_only=True)
class CheckConfig(_Strict):
    strategy: Literal["auto", "exhaustive", "dfs", "random", "pct"] = "auto"
    max_steps: int = Field(4000, ge=1, le=10_000_000)
    max_preemptions: int | None = Field(None, ge=0, le=1_000_000)
    max_executions: int | None = Field(None, ge=1, le=INT64_MAX)
    max_seconds: float | None = Field(None, gt=0, le=1e9)
    seed: int = Field(0, ge=INT64_MIN, le=INT64_MAX)
    cache: bool = False
    #: The host scheduler's pick among runnable tasks: "any" explores every
    #: choice; "fifo" takes the head of the run queue (a deterministic policy,
    #: stated with the verdict).  Timed runs always draw the pick at random.
    scheduler: Literal["any", "fifo"] = "any"
    #: The memory model the check explores under (docs/memory-models.md): a
    #: scenario whose fix relies on a barrier also runs under a weak one, so the
    #: default check notices a dropped barrier.  ``--memory-model`` other than
    #: ``sc`` replaces it.
    memory_model: Literal["sc", "tso", "pso", "power"] = "sc"


@dataclass(frozen=True, kw_only=True)
class SimulateConfig(_Strict):
    duration_us: int = Field(10_000, ge=1, le=MAX_DURATION_US)
    seed: int = Field(0, ge=INT64_MIN, le=INT64_MAX)
    #: Overrides of the timing model's parameters (name -> nanoseconds, 0 to 1000 s;
    #: the names and which must be positive are the timed driver's ``Timing``).
    timing: dict[str, int] = Field(default_factory=dict)
    #: Also report the throughput of a guest of this many vCPUs with smt-guests on vs off (0: no).
    compare_smt_guests: int = Field(0, ge=0, le=8)
    #: Also run the scenario with this patch off and on and print both side by side.
    compare_patch: str | None = None
    #: Check the scenario's invariants and stop at the first violation (false: measure
    #: through violations; the run reports figures, not a verdict).
    check_invariants: bool = True

    def _check(self) -> SimulateConfig:
        for name, ns in self.timing.items():
            if not 0 <= ns <= MAX_DURATION_NS:
                raise ValueError(f"timing: {name}: {ns} is not in [0, {MAX_DURATION_NS}] nanoseconds")
        return self


@dataclass(frozen=True, kw_only=True)
class ExpectConfig(_Strict):
    verdict: Literal["holds", "violation"] | None = None
    invariant: str | None = None


@dataclass(frozen=True, kw_only=True)
class VariantConfig(_Strict):
    """A named kernel variant of the scenario, listed as ``NAME@VARIANT``."""

    description: str = ""
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    expect: ExpectConfig = Field(default_factory=ExpectConfig)
    #: Optional: replaces the scenario's ``[[vm]]`` list (e.g. the same bug with 2 vCPUs).
    vm: list[VmConfig] | None = Field(None, max_length=64)
    #: Optional: replaces the scenario's ``[check]`` table (a bigger guest may need other bounds).
    check: CheckConfig | None = None
    #: Optional: replaces the scenario's ``[machine]`` table (e.g. another split-core mode).
    machine: MachineConfig | None = None
    #: Optional: replaces the scenario's ``[faults]`` table.
    faults: FaultsConfig | None = None
    #: Optional: replaces the scenario's ``[workload]`` table.
    workload: WorkloadConfig | None = None
    #: Optional: replaces the scenario's ``invariants`` (the question the variant asks).
    invariants: list[str] | None = None

    @staticmethod
    def _prepare(data: Any) -> Any:
        return _default_vm_names(data)

    def _check(self) -> VariantConfig:
        if self.vm is not None:
            _check_vms(self.vm)
        return self


#: Which part of the kernel model builds the world (see docs/scenarios.md):
#: ``vcore`` — the vcore protocol (run/start/grab/release, real-mode entry and
#: exit, nap and wake-up; seeds 000, 001, 003); ``timebase`` — POWER8 split-core
#: timebases, TB-error HMIs, OPAL and KVM's HMI exit (seed 002); ``entry`` — the
#: 4.12/4.13 guest-entry path with lazy interrupt disabling, signals and
#: reschedule IPIs, interrupt replay and MSR[RI] (seed 004).
ModelName = Literal["vcore", "timebase", "entry"]


def _default_vm_names(data: Any) -> Any:
    """``[[vm]]`` tables without a name are ``vm0``, ``vm1``, ... by position."""
    if isinstance(data, dict) and isinstance(data.get("vm"), list):
        vms = [{**v, "name": f"vm{i}"} if isinstance(v, dict) and "name" not in v else v for i, v in enumerate(data["vm"])]
        return {**data, "vm": vms}
    return data


def _check_vms(vms: list[VmConfig]) -> None:
    if not vms:
        raise ValueError("vm: a scenario needs at least one [[vm]] table")
    seen: set[str] = set()
    for i, vm in enumerate(vms):
        if vm.name in seen:
            raise ValueError(f"vm[{i}].name: {vm.name!r} names two VMs (give each [[vm]] its own name)")
        seen.add(vm.name)


@dataclass(frozen=True, kw_only=True)
class ScenarioConfig(_Strict):
    #: Printable, one line (file names made from it replace anything unusual).
    name: str = Field(min_length=1, max_length=100)
    description: str = Field("", max_length=10_000)
    model: ModelName = "vcore"
    machine: MachineConfig = Field(default_factory=MachineConfig)
    kernel: KernelConfig = Field(default_factory=KernelConfig)
    vm: list[VmConfig] = Field(default_factory=lambda: [VmConfig()], max_length=64)
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    faults: FaultsConfig = Field(default_factory=FaultsConfig)
    check: CheckConfig = Field(default_factory=CheckConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    #: Invariants to check (names from ``vcoresim list``); None means every one that applies.
    invariants: list[str] | None = None
    expect: ExpectConfig = Field(default_factory=ExpectConfig)
    variants: dict[str, VariantConfig] = Field(default_factory=dict)

    @staticmethod
    def _prepare(data: Any) -> Any:
        return _default_vm_names(data)

    def _check(self) -> ScenarioConfig:
        if not self.name.isprintable():
            raise ValueError("name: must be printable (no newlines or control characters)")
        _check_vms(self.vm)
        for vname in self.variants:
            if not re.fullmatch(NAME_PATTERN, vname) or len(vname) > 64:
                raise ValueError(f"variants: variant name {vname[:40]!r} is not a name (letters, digits, '_', '.', '+', '-')")
        return self

    def for_timed_run(self) -> ScenarioConfig:
        """The configuration a timed run uses: an open-ended workload, every
        pick of the host scheduler drawn (a FIFO pick is a checking bound), and
        sequential consistency (the timed driver runs SC)."""
        return dataclasses.replace(
            self,
            workload=dataclasses.replace(self.workload, open_ended=True),
            check=dataclasses.replace(self.check, scheduler="any", memory_model="sc"),
        )


# ------------------------------------------------------------- building, dumping
T = TypeVar("T", bound=_Strict)

_HINTS: dict[type, dict[str, Any]] = {}


def field_types(cls: type) -> dict[str, Any]:
    """A table's fields and their types, in declaration order."""
    if cls not in _HINTS:
        hints = typing.get_type_hints(cls)
        _HINTS[cls] = {f.name: hints[f.name] for f in dataclasses.fields(cls)}
    return _HINTS[cls]


def _value(tp: Any, v: Any) -> Any:
    """``v`` as a field of type ``tp`` holds it: tables built, ints of a float field as floats (as pydantic does)."""
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return v if isinstance(v, tp) else build(tp, v)
    if origin is list:
        (item,) = typing.get_args(tp)
        return [_value(item, x) for x in v]
    if origin is dict:
        _key, item = typing.get_args(tp)
        return {k: _value(item, x) for k, x in v.items()}
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if v is None:
            return None
        if float in args and isinstance(v, int) and not isinstance(v, bool):
            return float(v)
        return _value(args[0], v) if len(args) == 1 else v
    if tp is float and isinstance(v, int) and not isinstance(v, bool):
        return float(v)
    return v


def build(cls: type[T], data: Any) -> T:
    """A table from a trusted document (a built-in scenario file, or what
    ``scenarios/schema.py`` validated): defaults filled in, no checks of types
    or limits; the rules across fields (``_check``) still run."""
    data = cls._prepare(data)
    types_ = field_types(cls)
    unknown = [k for k in data if k not in types_]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown field (known: {', '.join(types_)})")
    return cls(**{k: _value(types_[k], v) for k, v in data.items()})


def dump(obj: Any, *, exclude_none: bool = False) -> Any:
    """A table as JSON-ready dicts and lists, fields in declaration order."""
    if isinstance(obj, _Strict):
        out = {}
        for f in dataclasses.fields(obj):  # type: ignore[arg-type]
            v = getattr(obj, f.name)
            if v is None and exclude_none:
                continue
            out[f.name] = dump(v, exclude_none=exclude_none)
        return out
    if isinstance(obj, list):
        return [dump(x, exclude_none=exclude_none) for x in obj]
    if isinstance(obj, dict):
        return {k: dump(x, exclude_none=exclude_none) for k, x in obj.items()}
    return obj
