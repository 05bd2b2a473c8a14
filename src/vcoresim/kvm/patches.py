"""Kernel variants as named patches, and release presets that combine them.

One patch per seed commit (plus 8c1c7fb0b5ec, the commit that introduced
seed 003's bug).  The model reads a patch flag exactly where that commit
changed the code; nothing else reads them.

Release placement: ``release`` is the first Linux release believed to ship
the change, ``release_confidence`` says how sure that is and ``evidence``
why (see also ``docs/scenarios.md``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vcoresim.errors import ScenarioError, did_you_mean
from vcoresim.files import excerpt


@dataclass(frozen=True)
class Patch:
    name: str
    commit: str
    title: str
    seed: str  # file in shared/seeds/, or "" for a commit that is not a seed
    changes: str  # what turning it on changes, one sentence
    release: str
    release_confidence: str  # high | medium | low
    evidence: str
    requires: tuple[str, ...] = ()  # patches whose code this one changes

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "commit": self.commit,
            "title": self.title,
            "seed": self.seed,
            "changes": self.changes,
            "release": self.release,
            "release_confidence": self.release_confidence,
            "evidence": self.evidence,
            "requires": list(self.requires),
        }


PATCHES: dict[str, Patch] = {
    p.name: p
    for p in (
        Patch(
            "smt-guests",
            "a1969f10b471",
            "KVM: PPC: Allow book3s_hv guests to use SMT processor modes",
            "001_a1969f10b471df33.txt",
            "vCPUs are grouped into virtual cores (vcore = id / threads_per_core) run together on one core's threads, "
            "secondaries woken from nap by IPI; off: one vCPU per core, single-threaded guests.",
            "v3.1",
            "high",
            "merged in the 3.1 merge window (reference smt-vcores.md); KVM_CAP_PPC_SMT is documented from 3.1 on",
        ),
        Patch(
            "stray-ipi-guard",
            "4e769eb247e9",
            "KVM: PPC: Book3S HV: Make secondary threads more robust against stray IPIs",
            "000_4e769eb247e9e1be.txt",
            "adds the hwthread_req/hwthread_state interlock: the primary grabs unused secondaries before switching the core "
            "to the guest, and a woken secondary with hwthread_req set goes to KVM code, not the host kernel.",
            "v3.3",
            "medium",
            "late 2011, via the kvm tree (signed off by Avi Kivity); its diff applies to the 3.2-rc file "
            "(reference stray-ipi.md), so the next merge window, 3.3; not checked against a tagged tree",
        ),
        Patch(
            "late-join-release-after-wait",
            "",
            "KVM: PPC: Book3S HV: Fixes for late-joining threads",
            "",
            "kvmppc_run_core releases the secondaries only after kvmppc_wait_for_nap, so a thread IPI'd late in a run "
            "still finds hwthread_req set, goes to KVM and is counted in nap_count (residual R2 of seed 000, found by "
            "'vcoresim check smt-vcore@late-join').",
            "v3.6",
            "low",
            "reference stray-ipi.md R2 ('~3.6', the commit that also added VCORE_STARTING); commit id not known here; "
            "modelled as the ordering the reference gives, not as that commit's full diff",
            requires=("stray-ipi-guard",),
        ),
        Patch(
            "idle-nap-real-mode",
            "8117ac6a6c2f",
            "powerpc/powernv: Switch off MMU before entering nap/sleep/rvwinkle mode",
            "",
            "power7_nap turns the MMU off before publishing KVM_HWTHREAD_IN_NAP, so a runner that sees IN_NAP can no "
            "longer switch the partition while the thread still runs host code (residual R3 of seed 000, found by "
            "'vcoresim check stray-ipi@guard-only').",
            "v3.19",
            "medium",
            "reference stray-ipi.md R3 ('fixed in late 2014'); the title appears in a stable changelog as backport "
            "27f1f15; mainline id 8117ac6a6c2f and v3.19 are from memory, not checked against a tagged tree",
            requires=("stray-ipi-guard",),
        ),
        Patch(
            "hmi-subcore-sync",
            "6d874a91f0cb",
            "KVM: PPC: Book3S HV: Fix TB corruption in guest exit path on HMI interrupt",
            "002_6d874a91f0cb363c.txt",
            "on a timebase-error HMI every subcore exits the guest and waits on sibling_subcore_state, OPAL runs once "
            "and one primary resyncs the timebase, instead of each thread calling OPAL and the exit subtracting tb_offset.",
            "v4.8",
            "medium",
            "absent in v4.1.3 and present in v4.14.5 (reference hmi-timebase.md, checked against sources); 2016 commit, "
            "believed v4.8",
        ),
        Patch(
            "entry-irq-hard-disable",
            "bf9f6c86b1f6",
            "KVM: PPC: Book3S HV: Close race with testing for signals on guest entry",
            "004_bf9f6c86b1f61bb2.txt",
            "hard-disables interrupts before testing signal_pending/need_resched and keeps them off until guest entry, "
            "returns the exit trap to C for interrupt replay, sets MSR_RI, and moves the radix smp_call_function out of "
            "the irq-off window.",
            "v4.13",
            "medium",
            "old code in v4.12.4, new code in v4.14.5 (reference signal-entry-race.md, checked against sources); "
            "mainline id 8b24e69fc47e, author date 2017-06-26, so v4.13 is most likely",
        ),
        Patch(
            "idle-skip-kvm-sync",
            "8c1c7fb0b5ec",
            "powerpc/64s/idle: avoid sync for KVM state when waking from idle",
            "",
            "pnv_powersave_wakeup skips the hwthread_state store, the sync and the hwthread_req test when hwthread_state "
            "is already KVM_HWTHREAD_IN_KERNEL (introduces seed 003's lock-up).",
            "v4.16",
            "low",
            "seed 003 names it; reference idle-wakeup-lockup.md places it in the 4.15/4.16 era, unverified; "
            "the 4.16 guess follows from its fix landing in 4.17-rc",
        ),
        Patch(
            "idle-wakeup-test-req",
            "6db6d3658a3b",
            "powerpc/kvm: Fix lockups when running KVM guests on Power8",
            "003_6db6d3658a3b4c7e.txt",
            "pnv_powersave_wakeup still skips the hwthread_state store but always tests hwthread_req, so a primary "
            "napping in KVM (H_CEDE) goes back to kvm_start_guest.",
            "v4.17",
            "medium",
            "April 2018, merged for 4.17-rc (reference idle-wakeup-lockup.md); not checked against a tagged tree",
            requires=("idle-skip-kvm-sync",),
        ),
    )
}

#: Patches in the order they shipped.
ORDER: tuple[str, ...] = tuple(sorted(PATCHES, key=lambda n: tuple(int(x) for x in PATCHES[n].release[1:].split("."))))


@dataclass(frozen=True)
class Preset:
    name: str
    patches: frozenset[str]
    description: str


def _presets() -> dict[str, Preset]:
    """One preset per release that shipped a patch, each adding that release's patches; v3.0 has none."""
    out = {"v3.0": Preset("v3.0", frozenset(), "before SMT guests: one vCPU per core (no patch)")}
    have: set[str] = set()
    for rel in dict.fromkeys(PATCHES[n].release for n in ORDER):
        new = [n for n in ORDER if PATCHES[n].release == rel]
        have.update(new)
        out[rel] = Preset(rel, frozenset(have), f"Linux {rel[1:]}: adds {', '.join(new)}")
    return out


PRESETS: dict[str, Preset] = _presets()
#: The newest preset: every patch on.  A scenario without ``kernel.preset`` starts here.
DEFAULT_PRESET = list(PRESETS)[-1]


def _fail(field: str, msg: str) -> ScenarioError:
    return ScenarioError(f"{field}: {msg}")


def resolve_kernel(preset: str | None, patches: Mapping[str, bool], field_prefix: str) -> frozenset[str]:
    """The patch set in force: ``preset`` (default: the newest), then ``patches`` on top.

    ``field_prefix`` names where the values came from, for errors: ``"kernel"``
    gives ``kernel.preset: ...`` / ``kernel.patches: ...``; ``"--"`` gives the
    CLI's ``--kernel: ...`` / ``--patch: ...``.  A patch that fixes code another
    patch adds (``idle-wakeup-test-req``) is dropped when a preset brings it
    without that patch, and is an error when asked for explicitly.
    """
    pf, kf = (("--patch", "--kernel") if field_prefix == "--" else (f"{field_prefix}.patches", f"{field_prefix}.preset"))
    name = DEFAULT_PRESET if preset is None else preset
    if name not in PRESETS:
        raise _fail(kf, f"unknown preset {excerpt(name)}{did_you_mean(str(name), PRESETS)} (known: {', '.join(PRESETS)})")
    on = set(PRESETS[name].patches)
    for p, state in patches.items():
        if p not in PATCHES:
            raise _fail(pf, f"unknown patch {excerpt(p)}{did_you_mean(str(p), PATCHES)} (known: {', '.join(PATCHES)})")
        if not isinstance(state, bool):
            raise _fail(f"{pf}.{p}" if field_prefix != "--" else pf, f"expected true or false, got {excerpt(state)}")
        (on.add if state else on.discard)(p)
    for p in sorted(on):
        missing = [r for r in PATCHES[p].requires if r not in on]
        if missing:
            if patches.get(p):
                raise _fail(pf, f"{p} needs {', '.join(missing)} (it changes code that patch adds)")
            on.discard(p)
    return frozenset(on)
