"""What ``vcoresim list`` shows: scenarios, patches, presets, invariants."""

from __future__ import annotations

from typing import Any

from vcoresim.scenarios.registry import Scenario


def describe(scenarios: dict[str, Scenario]) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "scenarios": [
            {
                "name": s.name,
                "kind": s.kind,
                "expected": s.expected,
                "strategy": s.strategy,
                "description": s.description,
            }
            for s in scenarios.values()
        ],
        "patches": [],
        "presets": [],
        "invariants": [],
    }
    try:
        from vcoresim.kvm import catalog as kvm_catalog
    except ImportError:
        return doc
    doc["patches"] = kvm_catalog.patches()
    doc["presets"] = kvm_catalog.presets()
    doc["invariants"] = kvm_catalog.invariants()
    return doc
