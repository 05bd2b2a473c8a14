"""Rows for ``vcoresim list``: the KVM patches, release presets and invariants."""

from __future__ import annotations

import re
from typing import Any

from vcoresim.kvm.entry_p9 import ENTRY_INVARIANTS, ENTRY_LIVENESS
from vcoresim.kvm.hmi import TIMEBASE_INVARIANTS, TIMEBASE_LIVENESS
from vcoresim.kvm.invariants import INVARIANTS as VCORE_INVARIANTS
from vcoresim.kvm.patches import DEFAULT_PRESET, ORDER, PATCHES, PRESETS, Patch

#: Every invariant of the three models (vcore, entry, timebase), for listings and reports.
INVARIANTS: dict[str, str] = {**VCORE_INVARIANTS, **ENTRY_INVARIANTS, **TIMEBASE_INVARIANTS, **TIMEBASE_LIVENESS}  # vcpus-complete: the vcore model's entry

#: The invariants each model (``ScenarioConfig.model``) can check.
MODEL_INVARIANTS: dict[str, tuple[str, ...]] = {
    "vcore": tuple(VCORE_INVARIANTS),
    "entry": (*ENTRY_INVARIANTS, *ENTRY_LIVENESS, "no-deadlock"),
    "timebase": (*TIMEBASE_INVARIANTS, *TIMEBASE_LIVENESS, "no-deadlock"),
}


def _role(p: Patch) -> str:
    """What a patch is to the seeds: ``seed 001``, ``fixes R1, R4 (seed 000)``, ``adds seed 003's bug``."""
    m = re.match(r"(\d{3})_", p.seed)
    if m:
        return f"seed {m.group(1)}"
    fixed = re.findall(r"residual ([RH]\d+) of seed (\d{3})", p.changes)
    if fixed:
        seeds = sorted({s for _r, s in fixed})
        return f"fixes {', '.join(r for r, _s in fixed)} (seed {', '.join(seeds)})"
    m = re.search(r"introduces seed (\d{3})'s", p.changes)
    if m:
        return f"adds seed {m.group(1)}'s bug"
    return "-"


def _commit_text(p: Patch) -> str:
    """The mainline id, the seed's branch id when it differs, and how sure the id is."""
    if not p.commit:
        return "(not pinned down)"
    text = p.commit + ("" if p.commit_checked else " (id unchecked)")
    return text + (f" (seed: {p.seed_commit})" if p.seed_commit else "")


def patches() -> list[dict[str, Any]]:
    default = PRESETS[DEFAULT_PRESET].patches
    return [
        {
            "name": p.name,
            "commit": _commit_text(p),
            "release": f"{p.release} ({p.release_confidence})",
            "seed": _role(p),
            "seed_file": p.seed or None,
            "default": "on" if p.name in default else "off",
            "description": f"{_commit_text(p)}, first in {p.release} ({p.release_confidence} confidence): {p.title}: {p.changes}",
            **{f"registry_{k}": v for k, v in p.as_dict().items()},
        }
        for p in (PATCHES[n] for n in ORDER)
    ]


def patches_markdown() -> str:
    """The patch table of docs/scenarios.md, generated from the registry (a test
    keeps the document in step: ``vcoresim list --markdown`` prints it)."""
    rows = ["| patch | mainline commit | first release (confidence) | seed | title | what turning it on changes | evidence |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for p in (PATCHES[n] for n in ORDER):
        cells = [f"`{p.name}`", _commit_text(p), f"{p.release} ({p.release_confidence})", _role(p), p.title, p.changes, p.evidence]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def presets_markdown() -> str:
    rows = ["| preset | patches | note |", "| --- | --- | --- |"]
    for pr in PRESETS.values():
        rows.append(f"| `{pr.name}` | {', '.join(n for n in ORDER if n in pr.patches) or '(none)'} | {pr.description} |")
    return "\n".join(rows) + "\n"


def presets() -> list[dict[str, Any]]:
    return [
        {"name": p.name, "patches": [n for n in ORDER if n in p.patches], "description": p.description + (" (default)" if p.name == DEFAULT_PRESET else "")}
        for p in PRESETS.values()
    ]


def _kind(description: str) -> str:
    """'liveness' if the description says so, else 'safety'."""
    return "liveness" if "liveness" in description.lower() else "safety"


def invariants() -> list[dict[str, Any]]:
    return [{"name": n, "kind": _kind(d), "description": d} for n, d in INVARIANTS.items()]
