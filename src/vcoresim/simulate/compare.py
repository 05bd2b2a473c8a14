"""Throughput of one guest under different kernel configurations (seed 001's question).

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
from dataclasses import dataclass
from typing import Any

from vcoresim.simulate.metrics import Metrics, compute
from vcoresim.simulate.timed import Timing, simulate


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


def run_config(doc: dict[str, Any], *, duration_ns: int, seed: int, timing: Timing) -> Metrics:
    from vcoresim.scenarios.builtin import config_from_doc, program_from_config

    program = program_from_config(config_from_doc(doc))
    return compute(simulate(program, duration_ns=duration_ns, seed=seed, timing=timing))


def row(label: str, smt: bool, cores: int, vcpus: int, m: Metrics) -> Row:
    w, x = m.latencies["wake_to_entry"], m.latencies["exit_to_entry"]
    per_core = round(m.totals["work_per_s"] / cores, 3)
    return Row(label, smt, cores, vcpus, m.totals["guest_cpus"], m.totals["work_per_s"], per_core, w.p50, w.p99, x.p99, m.outcome)


def smt_guests(config: dict[str, Any], *, vcpus: int, duration_ns: int, seed: int, timing: Timing) -> list[Row]:
    """The three rows described in the module docstring."""
    base_cores = int(config["machine"]["cores"])
    cases = [
        ("on", True, base_cores),
        ("off, same cores", False, base_cores),
        ("off, one core per vCPU", False, max(base_cores, vcpus)),
    ]
    out = []
    for label, smt, cores in cases:
        m = run_config(variant(config, vcpus=vcpus, cores=cores, smt_guests=smt), duration_ns=duration_ns, seed=seed, timing=timing)
        out.append(row(label, smt, cores, vcpus, m))
    return out
