"""Rows for ``vcoresim list``: the KVM patches, release presets and invariants."""

from __future__ import annotations

from typing import Any

from vcoresim.kvm.entry_p9 import ENTRY_INVARIANTS
from vcoresim.kvm.hmi import TIMEBASE_INVARIANTS
from vcoresim.kvm.invariants import INVARIANTS as VCORE_INVARIANTS
from vcoresim.kvm.patches import DEFAULT_PRESET, ORDER, PATCHES, PRESETS

#: Every invariant of the three models (vcore, entry, timebase), for listings and reports.
INVARIANTS: dict[str, str] = {**VCORE_INVARIANTS, **ENTRY_INVARIANTS, **TIMEBASE_INVARIANTS}


def patches() -> list[dict[str, Any]]:
    default = PRESETS[DEFAULT_PRESET].patches
    return [
        {
            "name": p.name,
            "seed": p.seed or f"(introduced seed 003's bug) {p.commit}",
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
