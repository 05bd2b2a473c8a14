"""The built-in scenarios: example models and the KVM scenarios.

A scenario turns a configuration into a ``Program``; the program's ``config``
is the *effective* configuration, and ``make(program.config)`` rebuilds the
same program (that is how a trace file is replayed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Program


class ScenarioError(Exception):
    """Bad scenario input; the message names the field."""


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


def _example_scenarios() -> list[Scenario]:
    from vcoresim.examples import EXAMPLES, example_program

    out = []
    for name, (_build, expected, desc) in EXAMPLES.items():

        def make(config: dict[str, Any], _n: str = name) -> Program:
            return example_program(_n)

        out.append(Scenario(f"example/{name}", desc, "example", make, expected))
    return out


_EXTRA: list[Callable[[], list[Scenario]]] = []


def register(provider: Callable[[], list[Scenario]]) -> None:
    """Let a module add scenarios (the KVM scenarios register themselves)."""
    _EXTRA.append(provider)


def builtin_scenarios() -> dict[str, Scenario]:
    found: dict[str, Scenario] = {}
    providers: list[Callable[[], list[Scenario]]] = [_example_scenarios]
    try:
        from vcoresim.scenarios import builtin as _builtin  # noqa: F401  (registers providers)
    except ImportError:
        pass
    providers.extend(_EXTRA)
    for provider in providers:
        for sc in provider():
            found[sc.name] = sc
    return found


def get_scenario(name: str) -> Scenario:
    if name.split("@", 1)[0].endswith(".toml"):  # a scenario file: path/to/file.toml[@VARIANT]
        from vcoresim.scenarios.builtin import file_scenario

        return file_scenario(name)
    scenarios = builtin_scenarios()
    if name in scenarios:
        return scenarios[name]
    if f"example/{name}" in scenarios:
        return scenarios[f"example/{name}"]
    raise ScenarioError(f"scenario: unknown scenario {name!r} (see 'vcoresim list')")


def program_for(name: str, config: dict[str, Any]) -> Program:
    """Rebuild the program a trace was recorded from (with its memory model and removed barriers)."""
    if "memory_model" in config or "removed_barriers" in config:
        from vcoresim.engine.memory import MODELS, split_memory_config, with_memory_model

        try:
            rest, model, removed = split_memory_config(config)
        except (TypeError, ValueError):
            raise ScenarioError("config: removed_barriers: expected a list of [function, kind, line]") from None
        if model not in MODELS:
            raise ScenarioError(f"config: memory_model: unknown model {model!r} (known: {', '.join(MODELS)})")
        return with_memory_model(program_for(name, rest), model, removed)
    base = name.split("@", 1)[0]
    if base not in builtin_scenarios() and "machine" in config:  # a KVM scenario loaded from a file
        from vcoresim.scenarios.builtin import config_from_doc, program_from_config

        return program_from_config(config_from_doc(config))
    return get_scenario(base).make(config)
