"""Kernel variants as named patches, and release presets that combine them.

One patch per commit that changed the code the model mirrors: the seed
commits and the other commits of the secondary-thread history (checked
against kernel sources release by release; see ``docs/scenarios.md``, table
"Patches", which is generated from this registry).  The model reads a patch
flag exactly where that commit changed the code (``Patch.sites`` names those
functions; ``tests/test_patches.py`` holds the model to it); nothing else
reads them.

``commit`` is the mainline id; ``seed_commit`` the id in the seed file when
the seed was taken from a branch (seeds 003 and 004).  ``release`` is the
first Linux release that ships the change, ``release_confidence`` how sure
that is and ``evidence`` why; ``commit_checked`` says whether the id itself
was seen in a source (some ids are only known from memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from vcoresim.errors import ScenarioError, did_you_mean
from vcoresim.files import excerpt


@dataclass(frozen=True)
class Patch:
    name: str
    commit: str  # mainline id ("" when not known)
    title: str
    seed: str  # file in shared/seeds/, or "" for a commit that is not a seed
    changes: str  # what turning it on changes, one sentence
    release: str
    release_confidence: str  # high | medium | low
    evidence: str
    requires: tuple[str, ...] = ()  # patches whose code this one changes
    #: Model functions that read the flag: where the commit changed the code.
    sites: tuple[str, ...] = ()
    #: The id the seed file carries when it differs from mainline (a branch id).
    seed_commit: str = ""
    #: The mainline id was seen in a source (False: from memory, or unknown).
    commit_checked: bool = True

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "commit": self.commit,
            "commit_checked": self.commit_checked,
            "seed_commit": self.seed_commit,
            "title": self.title,
            "seed": self.seed,
            "changes": self.changes,
            "release": self.release,
            "release_confidence": self.release_confidence,
            "evidence": self.evidence,
            "requires": list(self.requires),
            "sites": list(self.sites),
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
            "v3.1 book3s_hv.c has vcores and kvmppc_start_thread's cpu_start = 0x80 start; KVM_CAP_PPC_SMT from 3.1",
            sites=("Kvm.__init__", "kvm_dev_ioctl_check_extension_smt"),
        ),
        Patch(
            "rm-cede",
            "19ccb76a1938",
            "KVM: PPC: Implement H_CEDE hcall for book3s_hv in real-mode code",
            "",
            "H_CEDE naps in real mode inside the guest (kvmppc_h_cede: napping_threads, hwthread_req/cpu_start for the "
            "wake-up, LPCR PECE0|PECE1 so an IPI or the decrementer wakes it) and the first thread out IPIs the napping "
            "ones; off: H_CEDE exits the whole vcore and blocks the vCPU in the host (3.1).",
            "v3.2",
            "high",
            "v3.1 book3s_hv.c handles H_CEDE in kvmppc_pseries_do_hcall (kvmppc_vcpu_block) and kvmppc_run_core has no "
            "napping_threads; v3.2 resets napping_threads, places ceded vCPUs last and H_CEDE is a no-op in virtual mode. "
            "The id is seen in a blame of arch/powerpc/kvm/powerpc.c: 19ccb76a1938ab, Paul Mackerras, 2011-07-23, "
            "the line vcpu->arch.wqp = &vcpu->wq (the wait-queue pointer this commit adds for the vcore's wait); "
            "the title is not seen in a source",
            sites=("guest_run",),
        ),
        Patch(
            "late-join-first-run",
            "",
            "KVM: PPC: Book3S HV: the 3.2 kvmppc_run_vcpu rework (vcore_state, STOPPED vCPUs)",
            "",
            "a vCPU joins a running vcore (kvmppc_start_thread) only on its first KVM_RUN (previous state STOPPED), "
            "once, before it waits, and after each run the runner fails every runnable vCPU whose task has a signal "
            "pending (-EINTR); off (3.1): the join is retried on every pass of the wait loop, so a task woken early (a "
            "signal) starts its vCPU a second time (residual H3 of seed 001, smt-vcore@double-start), the signal test is in kvmppc_handle_exit, a ceded vCPU "
            "re-enters kvmppc_run_vcpu from the top after blocking, and the exit walk of kvmppc_run_core re-reads the "
            "list (a vCPU added during the walk is reached).",
            "v3.2",
            "high",
            "v3.1 kvmppc_run_vcpu calls kvmppc_start_thread inside the while (state == RUNNABLE) loop; v3.2-v3.7 only "
            "under prev_state == KVMPPC_VCPU_STOPPED before the loop (checked in v3.2, v3.4, v3.5, v3.6, v3.7). Which "
            "3.2 commit made the change was not pinned down (likely the real-mode H_CEDE rework)",
            sites=("kvmppc_core_vcpu_create", "kvmppc_vcpu_run", "kvmppc_run_vcpu", "kvmppc_run_core", "kvmppc_handle_exit"),
            commit_checked=False,
        ),
        Patch(
            "stray-ipi-guard",
            "4e769eb247e9",
            "KVM: PPC: Book3S HV: Make secondary threads more robust against stray IPIs",
            "000_4e769eb247e9e1be.txt",
            "adds the hwthread_req/hwthread_state interlock: the primary grabs unused secondaries before switching the core "
            "to the guest, and a woken secondary with hwthread_req set goes to KVM code, not the host kernel.",
            "v3.5",
            "high",
            "absent in v3.4 book3s_hv.c (kvmppc_start_thread sets cpu_start = 0x80, no grab); present in v3.5 "
            "(kvmppc_grab_hwthread, 1000 x udelay(1), 'KVM: couldn't grab cpu')",
            sites=("kvmppc_run_core", "kvmppc_start_thread", "kvm_start_guest", "secondary_nap", "kvm_do_nap", "power7_nap", "system_reset_pSeries"),
        ),
        Patch(
            "late-join-release-after-wait",
            "2f12f0343684",
            "KVM: PPC: Book3S HV: Fixes for late-joining threads",
            "",
            "kvmppc_run_core releases the secondaries only after kvmppc_wait_for_nap, so a thread IPI'd late in a run "
            "still finds hwthread_req set, goes to KVM and is counted in nap_count (fixes residual R2 of seed 000, found by "
            "'vcoresim check smt-vcore@late-join').",
            "v3.8",
            "high",
            "the commit message describes R2 and adds VCORE_STARTING; v3.7 kvmppc_run_core releases before "
            "kvmppc_wait_for_nap, v3.8 after it",
            requires=("stray-ipi-guard",),
            sites=("kvmppc_run_core",),
        ),
        Patch(
            "late-join-every-run",
            "",
            "KVM: PPC: Book3S HV: the 3.8 kvmppc_run_vcpu rework (a vcore runs whenever any vCPU can)",
            "",
            "a vCPU becoming runnable joins a running vcore on every KVM_RUN, unless a signal is pending (not only on "
            "its first run).",
            "v3.8",
            "high",
            "v3.7 kvmppc_run_vcpu joins under prev_state == KVMPPC_VCPU_STOPPED; v3.8 under !signal_pending(current) "
            "on every call (the STOPPED state and n_busy are gone). The 3.8 commit that did it was not pinned down; "
            "2f12f0343684's message notes joining 'currently only happens rarely, when a vcpu is first started'",
            requires=("late-join-first-run",),
            sites=("kvmppc_run_vcpu",),
            commit_checked=False,
        ),
        Patch(
            "start-secondary-races",
            "7b444c6710c6",
            "KVM: PPC: Book3S HV: Fix some races in starting secondary threads",
            "",
            "on_primary_thread grabs every sibling before any thread starts and fails the run with -EBUSY if one "
            "cannot be grabbed (fixes residual R1 of seed 000, stray-ipi@grab-timeout); the grab clears kvm_vcpu; a woken secondary clears the IPI "
            "before it loads its vCPU pointer, and a thread napping for H_CEDE goes to kvm_end_cede before any "
            "acknowledgement (fixes residual R4 of seed 000); secondary_nap clears kvm_vcpu before nap_count++ (fixes the sibling "
            "race the checker finds first in stray-ipi@vcpu-pointer: a late clear wiping the next run's vCPU).",
            "v3.8",
            "high",
            "commit message items (a)-(c); v3.8 book3s_hv.c on_primary_thread grabs threads 1..threads_per_core-1, "
            "kvmppc_grab_hwthread stores kvm_vcpu = NULL, kvmppc_start_thread no longer grabs; a 3.12.9 tree's "
            "kvm_start_guest tests napping, then acks and clears the IPI, syncs, then loads HSTATE_KVM_VCPU, and "
            "secondary_nap clears it before nap_count++ (v3.6: load before the ack, clear after nap_count++)",
            requires=("stray-ipi-guard",),
            sites=("kvmppc_run_core", "on_primary_thread", "kvmppc_grab_hwthread", "kvmppc_start_thread", "kvm_start_guest", "secondary_nap", "kvm_no_guest"),
        ),
        Patch(
            "idle-nap-real-mode",
            "8117ac6a6c2f",
            "powerpc/powernv: Switch off MMU before entering nap/sleep/rvwinkle mode",
            "",
            "power7_nap turns the MMU off before publishing KVM_HWTHREAD_IN_NAP, so a runner that sees IN_NAP can no "
            "longer switch the partition while the thread still runs host code (fixes residual R3 of seed 000, "
            "stray-ipi@guard-only).",
            "v3.19",
            "medium",
            "IN_NAP is stored with the MMU on in v3.6 and v3.12.9 idle_power7.S; a 4.14 tree stores IN_IDLE in real mode "
            "under the 'NOTE WELL' comment. The commit (Dec 2014) and v3.19 were not checked against a tagged tree",
            requires=("stray-ipi-guard",),
            sites=("power7_nap",),
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
            "v4.8 book3s_hv_ras.c kvmppc_realmode_hmi_handler calls kvmppc_subcore_exit_guest, wait_for_subcore_guest_exit "
            "and opal_resync_timebase; absent in v4.1.3 (reference hmi-timebase.md); the v4.7 copy was not read",
            sites=("hmi_exception_realmode", "hmi_exception_early", "kvmppc_hv_entry"),
        ),
        Patch(
            "entry-irq-hard-disable",
            "8b24e69fc47e",
            "KVM: PPC: Book3S HV: Close race with testing for signals on guest entry",
            "004_bf9f6c86b1f61bb2.txt",
            "hard-disables interrupts before testing signal_pending/need_resched and keeps them off until guest entry, "
            "returns the exit trap to C for interrupt replay, sets MSR_RI, and moves the radix smp_call_function out of "
            "the irq-off window.",
            "v4.13",
            "medium",
            "old code in v4.12.4, new code in v4.14.5 (reference signal-entry-race.md, checked against sources); "
            "author date 2017-06-26, so v4.13 is most likely; the seed file carries branch id bf9f6c86b1f6",
            sites=("kvmppc_run_core", "kvmppc_start_thread", "__kvmppc_vcore_entry", "kvmppc_call_hv_entry_return", "kvmppc_interrupt_hv"),
            seed_commit="bf9f6c86b1f6",
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
            "seed 003 names it ('Fixes:'); reference idle-wakeup-lockup.md places it in the 4.15/4.16 era; not checked "
            "against a tagged tree (the issue review says 4.15 or later)",
            sites=("pnv_powersave_wakeup",),
        ),
        Patch(
            "idle-wakeup-test-req",
            "56376c5864f8",
            "powerpc/kvm: Fix lockups when running KVM guests on Power8",
            "003_6db6d3658a3b4c7e.txt",
            "pnv_powersave_wakeup still skips the hwthread_state store but always tests hwthread_req, so a primary "
            "napping in KVM (H_CEDE) goes back to kvm_start_guest.",
            "v4.17",
            "medium",
            "April 2018, merged for 4.17-rc (reference idle-wakeup-lockup.md); mainline id 56376c5864f8 carries the seed's "
            "text verbatim; the seed file carries branch id 6db6d3658a3b",
            requires=("idle-skip-kvm-sync",),
            sites=("pnv_powersave_wakeup",),
            seed_commit="6db6d3658a3b",
        ),
    )
}

#: Patches in the order they shipped.
ORDER: tuple[str, ...] = tuple(sorted(PATCHES, key=lambda n: tuple(int(x) for x in PATCHES[n].release[1:].split("."))))  # stable: registry order within a release


@dataclass(frozen=True)
class Preset:
    name: str
    patches: frozenset[str]
    description: str


#: Releases that ship no modelled change but close a range worth naming: the
#: last kernel with a residual (the model's code for it is the preset before).
SAME_AS: dict[str, tuple[str, str]] = {
    "v3.7": ("v3.5", "last release with residuals R1, R2 and R4"),
    "v3.18": ("v3.8", "last release with residual R3"),
}


def _release_key(rel: str) -> tuple[int, ...]:
    return tuple(int(x) for x in rel[1:].split("."))


def _presets() -> dict[str, Preset]:
    """One preset per release that shipped a patch, each adding that release's
    patches (v3.0 has none), plus the releases of ``SAME_AS``; in release order."""
    out = {"v3.0": Preset("v3.0", frozenset(), "before SMT guests: one vCPU per core (no patch)")}
    have: set[str] = set()
    for rel in dict.fromkeys(PATCHES[n].release for n in ORDER):
        new = [n for n in ORDER if PATCHES[n].release == rel]
        have.update(new)
        out[rel] = Preset(rel, frozenset(have), f"Linux {rel[1:]}: adds {', '.join(new)}")
    for rel, (base, why) in SAME_AS.items():
        out[rel] = Preset(rel, out[base].patches, f"Linux {rel[1:]}: the {base} code in this model ({why})")
    return dict(sorted(out.items(), key=lambda kv: _release_key(kv[0])))


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
