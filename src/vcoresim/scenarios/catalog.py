"""What ``vcoresim list`` shows: scenarios, patches, presets, invariants."""

from __future__ import annotations

from typing import Any

from vcoresim.kvm import catalog as kvm_catalog
from vcoresim.scenarios.base import Scenario


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
        "patches": kvm_catalog.patches(),
        "presets": kvm_catalog.presets(),
        "invariants": kvm_catalog.invariants(),
    }
    return doc
