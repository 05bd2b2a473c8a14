"""The built-in scenarios: example models and the KVM scenarios.

A scenario turns a configuration into a ``Program``; the program's ``config``
is the *effective* configuration, and ``make(program.config)`` rebuilds the
same program (that is how a trace file is replayed).
"""

from __future__ import annotations

from typing import Any

from vcoresim.engine.world import Program
from vcoresim.errors import did_you_mean
from vcoresim.examples import EXAMPLES, example_program
from vcoresim.files import excerpt
from vcoresim.scenarios import builtin
from vcoresim.scenarios.base import Scenario, ScenarioError

__all__ = ["Scenario", "ScenarioError", "builtin_scenarios", "get_scenario", "program_for"]


def _example_scenarios() -> list[Scenario]:
    out = []
    for name, (_build, expected, desc) in EXAMPLES.items():

        def make(config: dict[str, Any], _n: str = name) -> Program:
            _example_config(_n, config)
            return example_program(_n)

        out.append(Scenario(f"example/{name}", desc, "example", make, expected))
    return out


def _example_config(name: str, config: dict[str, Any]) -> None:
    """The known-answer models take no settings: no kernel, no patches (their own
    trace config, ``{"model": "example:NAME"}``, is accepted as it is)."""
    for key in config:
        if key == "model" and config[key] == f"example:{name}":
            continue
        if key in ("kernel", "patches"):
            raise ScenarioError(f"--{'kernel' if key == 'kernel' else 'patch'}: example/{name} is a known-answer model; it has no kernel or patches")
        raise ScenarioError(f"config.{excerpt(str(key), 40) if not str(key).isidentifier() else key}: example/{name} takes no settings (its config is {{'model': 'example:{name}'}})")


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
    known = [n.removeprefix("example/") if n.startswith("example/") else n for n in scenarios]
    raise ScenarioError(f"scenario: unknown scenario {excerpt(name)}{did_you_mean(str(name), [*known, *scenarios])} (see 'vcoresim list')")


def program_for(name: str, config: dict[str, Any]) -> Program:
    """Rebuild the program a trace was recorded from (with its memory model,
    removed barriers and operation mutant)."""
    if not isinstance(name, str) or not isinstance(config, dict):
        raise ScenarioError("config: expected a scenario name and a table of settings")
    if "mutation" in config:
        from vcoresim.engine.mutants import mutated, split_mutation

        try:
            rest, mutant = split_mutation(config)
        except ValueError as e:
            raise ScenarioError(f"config: {e}") from None
        assert mutant is not None
        return mutated(program_for(name, rest), mutant)
    if "memory_model" in config or "removed_barriers" in config:
        from vcoresim.engine.memory import MODELS, split_memory_config, with_memory_model

        try:
            rest, model, removed = split_memory_config(config)
        except (TypeError, ValueError):
            raise ScenarioError("config.removed_barriers: expected a list of [function, kind, line]") from None
        if not isinstance(model, str) or model not in MODELS:
            raise ScenarioError(f"config.memory_model: unknown model {excerpt(model)} (known: {', '.join(MODELS)})")
        return with_memory_model(program_for(name, rest), model, removed)
    base = name.split("@", 1)[0]
    builtins = builtin_scenarios()
    if base not in builtins and f"example/{base}" not in builtins and "machine" in config:  # a KVM scenario loaded from a file
        return builtin.program_from_config(builtin.config_from_doc(config))
    sc = get_scenario(name if name in builtins else base)
    if sc.kind == "kvm" and not builtin.is_full_config(config):
        raise ScenarioError(f"config: a trace of {excerpt(name)} holds its whole configuration (at least 'name' and 'machine')")
    return sc.make(config)
