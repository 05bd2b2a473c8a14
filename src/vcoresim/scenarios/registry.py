"""The built-in scenarios: example models and the KVM scenarios.

A scenario turns a configuration into a ``Program``; the program's ``config``
is the *effective* configuration, and ``make(program.config)`` rebuilds the
same program (that is how a trace file is replayed).
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.world import Program
from vcoresim.examples import EXAMPLES, example_program
from vcoresim.scenarios import builtin
from vcoresim.scenarios.base import Scenario, ScenarioError

__all__ = ["Scenario", "ScenarioError", "builtin_scenarios", "get_scenario", "program_for"]


def _example_scenarios() -> list[Scenario]:
    out = []
    for name, (_build, expected, desc) in EXAMPLES.items():

        def make(config: dict[str, Any], _n: str = name) -> Program:
            return example_program(_n)

        out.append(Scenario(f"example/{name}", desc, "example", make, expected))
    return out


def builtin_scenarios() -> dict[str, Scenario]:
    """Every built-in scenario by name: the example models, then the KVM scenarios and their variants."""
    return {sc.name: sc for sc in [*_example_scenarios(), *builtin.provider()]}


def get_scenario(name: str) -> Scenario:
    if name.split("@", 1)[0].endswith(".toml"):  # a scenario file: path/to/file.toml[@VARIANT]
        return builtin.file_scenario(name)
    # A built-in KVM scenario lives in the file named after it: load only that one.
    base, _, variant = name.partition("@")
    cfg = builtin.builtin_config(base)
    if cfg is not None and (not variant or variant in cfg.variants):
        return builtin.scenario_for(builtin.variant_config(cfg, variant) if variant else cfg)
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
        return builtin.program_from_config(builtin.config_from_doc(config))
    return get_scenario(base).make(config)
