"""Rows for ``vcoresim list``: the KVM patches, release presets and invariants."""

from __future__ import annotations

import re
from typing import Any

from vcoresim.kvm.entry_p9 import ENTRY_INVARIANTS
from vcoresim.kvm.hmi import TIMEBASE_INVARIANTS
from vcoresim.kvm.invariants import INVARIANTS as VCORE_INVARIANTS
from vcoresim.kvm.patches import DEFAULT_PRESET, ORDER, PATCHES, PRESETS, Patch

#: Every invariant of the three models (vcore, entry, timebase), for listings and reports.
INVARIANTS: dict[str, str] = {**VCORE_INVARIANTS, **ENTRY_INVARIANTS, **TIMEBASE_INVARIANTS}

#: The invariants each model (``ScenarioConfig.model``) can check.
MODEL_INVARIANTS: dict[str, tuple[str, ...]] = {
    "vcore": tuple(VCORE_INVARIANTS),
    "entry": (*ENTRY_INVARIANTS, "no-deadlock"),
    "timebase": (*TIMEBASE_INVARIANTS, "no-deadlock"),
}


def _role(p: Patch) -> str:
    """What a patch is to the seeds: ``seed 001``, ``fixes R2 (seed 000)``, ``adds seed 003's bug``."""
    m = re.match(r"(\d{3})_", p.seed)
    if m:
        return f"seed {m.group(1)}"
    m = re.search(r"residual (R\d+) of seed (\d{3})", p.changes)
    if m:
        return f"fixes {m.group(1)} (seed {m.group(2)})"
    m = re.search(r"introduces seed (\d{3})'s", p.changes)
    if m:
        return f"adds seed {m.group(1)}'s bug"
    return "-"


def patches() -> list[dict[str, Any]]:
    default = PRESETS[DEFAULT_PRESET].patches
    return [
        {
            "name": p.name,
            "seed": _role(p),
            "seed_file": p.seed or None,
            "default": "on" if p.name in default else "off",
            "description": f"{p.commit} {p.title} (first in {p.release}, {p.release_confidence} confidence): {p.changes}",
            "commit": p.commit,
            "release": p.release,
            "release_confidence": p.release_confidence,
        }
        for p in (PATCHES[n] for n in ORDER)
    ]


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
