"""The vcore model's context: configuration, patches, topology, vcores, tasks.

Every kernel function of the vcore model takes it as ``k`` (where the kernel
reads globals and per-VM structures); it holds nothing that changes while a
world runs, so exploring and timing never need to copy it.
"""

from __future__ import annotations

from vcoresim.errors import ConfigError
from vcoresim.kvm.config import ScenarioConfig
from vcoresim.kvm.state import Task, Vcore


class Kvm:
    """The model's context: configuration, patches, topology, tasks."""

    def __init__(self, cfg: ScenarioConfig, patches: frozenset[str]) -> None:
        self.cfg = cfg
        self.patches = patches
        self.cpu_gen = cfg.machine.cpu
        self.threads_per_core = cfg.machine.threads
        self.ncores = cfg.machine.cores
        for needed in ("stray-ipi-guard", "idle-nap-real-mode"):
            if self.cpu_gen == "POWER8" and needed not in patches:
                raise ConfigError("kernel.patches", f"the POWER8 idle code (pnv_powersave_wakeup) postdates {needed}; it cannot be off on POWER8")
        # Seed 001: vcores of threads_per_core vCPUs; before it, one vCPU per core.
        self.threads_per_vcore = cfg.machine.threads_per_subcore if self.patch("smt-guests") else 1
        actions = list(dict.fromkeys(cfg.workload.actions))
        self.guest_actions = tuple(actions)
        self.vcores: dict[int, Vcore] = {}
        self.vcpu_vcore: dict[int, int] = {}
        self.vcpu_labels: dict[int, str] = {}
        self.vcpu_state0: dict[int, str] = {}  # vcpu->arch.state at KVM_CREATE_VCPU
        self.vcpu_task: dict[int, Task] = {}
        self.tasks: dict[str, Task] = {}
        self.idle_task: dict[int, Task] = {}
        self.multi_vm = len(cfg.vm) > 1
        # scheduler = "fifo": the pick is the run queue's head, not a choice.
        self.fifo_scheduler = cfg.check.scheduler == "fifo"
        self.open_ended = cfg.workload.open_ended
        w = cfg.workload
        self.run_dist, self.userspace_dist, self.cede_dist = w.dist("run"), w.dist("userspace"), w.dist("cede")
        self.action_weights = None if w.weights is None else tuple(dict(zip(w.actions, w.weights, strict=True))[a] for a in actions)

    # -------------------------------------------------------------- patches
    def patch(self, name: str) -> bool:
        return name in self.patches

    # ------------------------------------------------------------- topology
    @property
    def cpus(self) -> range:
        return range(self.ncores * self.threads_per_core)

    def core_of(self, cpu: int) -> int:
        return cpu // self.threads_per_core

    def thread_of(self, cpu: int) -> int:
        return cpu % self.threads_per_core

    def pcpu_of_core(self, c: int) -> int:
        return c * self.threads_per_core

    def online(self, cpu: int) -> bool:
        """Host SMT off: thread 0 of each core is online, the secondaries are offline."""
        return self.thread_of(cpu) == 0

    def ptid_of_cpu(self, cpu: int) -> int:
        return self.thread_of(cpu)

    def vcore_of(self, v: int) -> int:
        return self.vcpu_vcore[v]

    def lpid_of_vcore(self, vc: int) -> int:
        return self.vcores[vc].lpid

    def vcpu_label(self, v: int) -> str:
        return self.vcpu_labels[v]

    def vm_of(self, v: int) -> int:
        return self.vcores[self.vcpu_vcore[v]].vm

    def vm_vcpus(self, vm: int) -> list[int]:
        return [v for v, vc in self.vcpu_vcore.items() if self.vcores[vc].vm == vm]
