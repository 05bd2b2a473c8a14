"""One scenario under different kernel configurations, side by side.

``patch_onoff(config, patch)`` runs the scenario's effective configuration
with one patch off and on (only ``kernel.patches`` changes) and returns a
row per run: the signal-to-exit latency and what ended it (seed 004), and
the worst timebase error software read (seed 002).

Throughput of one guest (seed 001's question):

``smt_guests(config, vcpus=4)`` simulates a VM of ``vcpus`` vCPUs three ways,
each from the scenario's effective configuration with only the machine's core
count, the VM's vCPU list and the ``smt-guests`` patch changed:

* ``on``: ``smt-guests`` on, one core: the vCPUs share one vcore and run on
  the core's threads, gang-scheduled (seed 001).
* ``off, same cores``: ``smt-guests`` off, the same core count: every vCPU
  is a vcore of its own, so they take turns on the cores' primary threads
  (before seed 001 a core ran one vCPU; the other threads stay offline).
* ``off, one core per vCPU``: ``smt-guests`` off with as many cores as vCPUs,
  the only way the old kernel ran the guest's vCPUs at the same time, at
  ``vcpus`` times the hardware.

Each row gives throughput as guest CPU time delivered (``guest_cpus``,
vCPUs' worth), completed guest work units per second, work per core per
second, and the vCPU wake-to-entry and exit-to-entry latencies.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vcoresim.files import excerpt
from vcoresim.simulate.metrics import Metrics, run
from vcoresim.simulate.timed import Timing


@dataclass(frozen=True)
class Row:
    label: str
    smt_guests: bool
    cores: int
    vcpus: int
    guest_cpus: float
    work_per_s: float
    work_per_core_s: float
    wake_to_entry_p50: int | None
    wake_to_entry_p99: int | None
    exit_to_entry_p99: int | None
    outcome: str

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def variant(config: dict[str, Any], *, vcpus: int, cores: int, smt_guests: bool) -> dict[str, Any]:
    """The scenario's effective configuration with one VM of ``vcpus``, ``cores`` cores and the patch set."""
    doc = copy.deepcopy(config)
    doc.pop("patches", None)
    doc["name"] = f"{config['name']}[{vcpus} vCPUs, {cores} core(s), smt-guests {'on' if smt_guests else 'off'}]"
    doc["machine"]["cores"] = cores
    doc["vm"] = [{**doc["vm"][0], "vcpus": list(range(vcpus))}]
    doc["kernel"]["patches"] = {**doc["kernel"].get("patches", {}), "smt-guests": smt_guests}
    doc["variants"] = {}
    return doc


def run_config(doc: dict[str, Any], *, duration_ns: int, seed: int, timing: Timing, check_invariants: bool = True, stop: Callable[[], bool] | None = None) -> Metrics:
    from vcoresim.scenarios.builtin import config_from_doc, program_from_config

    program = program_from_config(config_from_doc(doc))
    if not check_invariants:
        program = dataclasses.replace(program, select=())
    return run(program, duration_ns=duration_ns, seed=seed, timing=timing, stop=stop)[1]


def row(label: str, smt: bool, cores: int, vcpus: int, m: Metrics) -> Row:
    w, x = m.latencies["wake_to_entry"], m.latencies["exit_to_entry"]
    per_core = round(m.totals["work_per_s"] / cores, 3)
    return Row(label, smt, cores, vcpus, m.totals["guest_cpus"], m.totals["work_per_s"], per_core, w.p50, w.p99, x.p99, m.outcome)


def smt_guests(config: dict[str, Any], *, vcpus: int, duration_ns: int, seed: int, timing: Timing, stop: Callable[[], bool] | None = None) -> list[Row]:
    """The three rows described in the module docstring."""
    base_cores = int(config["machine"]["cores"])
    cases = [
        ("on", True, base_cores),
        ("off, same cores", False, base_cores),
        ("off, one core per vCPU", False, max(base_cores, vcpus)),
    ]
    out = []
    for label, smt, cores in cases:
        m = run_config(variant(config, vcpus=vcpus, cores=cores, smt_guests=smt), duration_ns=duration_ns, seed=seed, timing=timing, stop=stop)
        out.append(row(label, smt, cores, vcpus, m))
    return out


# ------------------------------------------------------------ patch off / on
@dataclass(frozen=True)
class PatchRow:
    patch: str
    on: bool
    outcome: str
    signals: int  # signal_to_exit samples (+ open ones: still waiting at the end)
    signal_open: int
    signal_p50: int | None
    signal_p99: int | None
    signal_max: int | None
    #: Samples that ended only when the guest's timeslice (HDEC) ran out.
    signal_by_hdec: int
    tb_errors: int
    #: Per ``subcore S host|guest``: (max error in ticks, errors after which a read was wrong).
    tb: dict[str, tuple[int, int]]

    @property
    def label(self) -> str:
        return f"{self.patch} {'on' if self.on else 'off'}"

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "label": self.label, "tb": {k: {"max_err_ticks": a, "wrong_after_errors": b} for k, (a, b) in self.tb.items()}}


def with_patch(config: dict[str, Any], patch: str, on: bool) -> dict[str, Any]:
    """The scenario's effective configuration with ``patch`` forced off or on."""
    doc = copy.deepcopy(config)
    doc.pop("patches", None)
    doc["name"] = f"{config['name']}[{patch} {'on' if on else 'off'}]"
    doc["kernel"]["patches"] = {**doc["kernel"].get("patches", {}), patch: on}
    doc["variants"] = {}
    return doc


def patch_row(patch: str, on: bool, m: Metrics) -> PatchRow:
    sig = m.latencies["signal_to_exit"]
    ends = m.ends.get("signal_to_exit", {})
    errors = max((d["tb_errors"] for d in m.timebase.values()), default=0)
    tb = {k: (d["max_err_ticks"], d["wrong_after_errors"]) for k, d in m.timebase.items()}
    return PatchRow(patch, on, m.outcome, sig.count, sig.open, sig.p50, sig.p99, sig.max, ends.get("guest_exit:hdec", 0), errors, tb)


def patch_onoff(
    config: dict[str, Any], patch: str, *, duration_ns: int, seed: int, timing: Timing, check_invariants: bool = True, stop: Callable[[], bool] | None = None
) -> list[PatchRow]:
    """The scenario without and with ``patch`` (same workload, seed, duration)."""
    from vcoresim.kvm.patches import PATCHES
    from vcoresim.scenarios.registry import ScenarioError

    if patch not in PATCHES:
        raise ScenarioError(f"unknown patch {excerpt(patch)} (known: {', '.join(PATCHES)})")
    return [
        patch_row(patch, on, run_config(with_patch(config, patch, on), duration_ns=duration_ns, seed=seed, timing=timing, check_invariants=check_invariants, stop=stop))
        for on in (False, True)
    ]
