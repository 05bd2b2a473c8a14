"""What a scenario is: a named recipe for programs, with its expected verdict and bounds."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Program
from vcoresim.errors import ScenarioError

__all__ = ["Scenario", "ScenarioError"]


@dataclass
class Scenario:
    name: str
    description: str
    kind: str  # "example" | "kvm"
    make: Callable[[dict[str, Any]], Program]
    expected: str | None = None  # holds | violation
    expected_invariant: str | None = None
    strategy: str = "exhaustive"
    bounds: Bounds = field(default_factory=Bounds)
    seed: int = 0
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
