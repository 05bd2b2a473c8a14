"""Scenarios you can change from Python: ``load_scenario`` and :class:`Scenario`.

Part of the public API (``docs/api.md``): the package re-exports both.  Every
change is validated at once; an error is a :class:`ScenarioError` whose
message names the field (``faults.stray_ipi: ...``), never a CLI option.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vcoresim.engine.memory import MODELS, with_memory_model
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Program
from vcoresim.errors import ScenarioError, did_you_mean
from vcoresim.kvm.config import CheckConfig, ScenarioConfig, dump, field_types
from vcoresim.scenarios import builtin
from vcoresim.scenarios.base import Scenario as _Recipe
from vcoresim.scenarios.registry import builtin_scenarios, get_scenario

#: The strategies a scenario may name (``[check] strategy``).
STRATEGIES: tuple[str, ...] = typing.get_args(field_types(CheckConfig)["strategy"])

__all__ = ["Scenario", "ScenarioError", "load_scenario", "scenario_names"]


def scenario_names() -> list[str]:
    """Every built-in scenario and variant (``vcoresim list``), e.g. ``stray-ipi@fixed``."""
    return list(builtin_scenarios())


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name (``"stray-ipi@fixed"``, ``"peterson"``) or a
    scenario file (``"my.toml"``, ``"my.toml@variant"``), as an editable
    :class:`Scenario`.  Raises :class:`ScenarioError` naming what is wrong."""
    name = str(name_or_path)
    if isinstance(name_or_path, Path) and not name.split("@", 1)[0].endswith(".toml"):
        raise ScenarioError(f"scenario: {name!r} is not a .toml scenario file")
    return Scenario(get_scenario(name))


class Scenario:
    """A scenario you can change before checking or simulating it.

    Built-in KVM scenarios and scenario files carry a validated configuration
    (``config``, the TOML tables); every change is validated at once and an
    error names the field.  The example models (``peterson``, ...) have no
    configuration: only ``bounds``, ``strategy``, ``seed`` and the
    expectation can change.

    Attributes you may set: ``strategy`` (``auto``, ``exhaustive``, ``dfs``,
    ``random``, ``pct``), ``seed``, ``bounds`` (a :class:`Bounds`:
    ``max_steps``, ``max_preemptions``, ``max_executions``, ``max_seconds``),
    ``expected`` (``"holds"``, ``"violation"`` or None) and
    ``expected_invariant``; ``kernel`` (a release preset).  Methods:
    :meth:`set_patch`, :meth:`update` (any table: ``faults``, ``workload``,
    ``vm``, ``machine``, ``check``, ``invariants``, ...), :meth:`program`.

    Changing the kernel, a patch or the model's tables drops the scenario's
    expectation (it was about the scenario as written); set ``expected``
    again if you have one.
    """

    def __init__(self, recipe: _Recipe, config: ScenarioConfig | None = None) -> None:
        self._recipe = recipe
        self.name: str = recipe.name
        self.description: str = recipe.description
        self._config: ScenarioConfig | None = config if config is not None else _config_of(recipe)
        self._strategy = recipe.strategy
        self.seed: int = recipe.seed
        self.bounds: Bounds = dataclasses.replace(recipe.bounds)
        self.expected: str | None = recipe.expected
        self.expected_invariant: str | None = recipe.expected_invariant

    def __repr__(self) -> str:
        return f"<Scenario {self.name}: kernel {self.kernel or '-'}, strategy {self.strategy}, expected {self.expected or '-'}>"

    def copy(self) -> Scenario:
        """An independent copy (change it without changing this one)."""
        return copy.deepcopy(self)

    # ------------------------------------------------------------ configuration
    @property
    def config(self) -> ScenarioConfig | None:
        """The validated configuration (read-only; change it with the methods), or None for an example model."""
        return self._config

    def _need_config(self, what: str) -> ScenarioConfig:
        if self._config is None:
            raise ScenarioError(f"{what}: {self.name} is an example model; it has no configuration to change")
        return self._config

    @property
    def strategy(self) -> str:
        return self._strategy

    @strategy.setter
    def strategy(self, value: str) -> None:
        if value not in STRATEGIES:
            raise ScenarioError(f"strategy: unknown strategy {value!r}{did_you_mean(value, STRATEGIES)} (known: {', '.join(STRATEGIES)})")
        self._strategy = value

    @property
    def kernel(self) -> str | None:
        """The kernel release preset (``vcoresim list`` shows them); None: the newest."""
        return self._config.kernel.preset if self._config is not None else None

    @kernel.setter
    def kernel(self, preset: str | None) -> None:
        # As ``--kernel``: a preset replaces the kernel, patch overrides included.
        cfg = self._need_config("kernel")
        self._config = _validated(cfg, {"kernel": {"preset": preset, "patches": {}}})
        self._forget_expectation()

    @property
    def patches(self) -> dict[str, bool]:
        """Every patch and whether it is in force (the preset with the overrides on top)."""
        from vcoresim.kvm.patches import ORDER, resolve_kernel

        cfg = self._need_config("patches")
        on = resolve_kernel(cfg.kernel.preset, cfg.kernel.patches, "kernel")
        return {p: p in on for p in ORDER}

    def set_patch(self, name: str, on: bool = True) -> Scenario:
        """Turn one patch on or off on top of the kernel (``--patch NAME=on|off``); returns the scenario."""
        cfg = self._need_config("kernel.patches")
        if not isinstance(on, bool):
            raise ScenarioError(f"kernel.patches.{name}: expected True or False, got {on!r}")
        self._config = _validated(cfg, {"kernel": {"preset": cfg.kernel.preset, "patches": {**cfg.kernel.patches, name: on}}})
        self._forget_expectation()
        return self

    def _forget_expectation(self) -> None:
        # The scenario's [expect] is about its own kernel (as the CLI drops it with --kernel/--patch).
        self.expected = self.expected_invariant = None

    def update(self, **tables: Any) -> Scenario:
        """Change tables of the configuration, merged into the current ones and
        validated: ``update(faults={"stray_ipi": 2}, workload={"rounds": 1})``,
        ``update(vm=[{"vcpus": [0, 1]}])`` (a list replaces the list),
        ``update(invariants=["no-host-code-in-guest"])``.  Returns the scenario."""
        cfg = self._need_config(next(iter(tables), "update"))
        if "name" in tables:
            raise ScenarioError("name: a scenario's name does not change (copy() it and describe the change in description)")
        self._config = _validated(cfg, tables)
        if set(tables) - {"check", "simulate", "expect", "description"}:
            self._forget_expectation()
        if "check" in tables:  # the [check] table also sets these
            c = self._config.check
            self._strategy, self.seed = c.strategy, c.seed
            self.bounds = Bounds(c.max_steps, c.max_preemptions, c.max_executions, c.max_seconds)
        if "expect" in tables:
            self.expected, self.expected_invariant = self._config.expect.verdict, self._config.expect.invariant
        return self

    def program(self, memory_model: str = "sc") -> Program:
        """The program to explore or simulate (engine level: ``Program``)."""
        if memory_model not in MODELS:
            raise ScenarioError(f"memory_model: unknown model {memory_model!r}{did_you_mean(memory_model, MODELS)} (known: {', '.join(MODELS)})")
        if self._config is None:
            prog = self._recipe.make({})
        else:
            prog = builtin.program_from_config(self._config)
        return with_memory_model(prog, memory_model)


def _config_of(recipe: _Recipe) -> ScenarioConfig | None:
    prog = recipe.make({})
    if "machine" not in prog.config:
        return None
    return builtin.config_from_doc(prog.config)


def _merge(base: Any, new: Any) -> Any:
    if isinstance(base, dict) and isinstance(new, Mapping):
        out = dict(base)
        for k, v in new.items():
            out[k] = _merge(base.get(k), v) if k in base else v
        return out
    return new


def _validated(cfg: ScenarioConfig, tables: Mapping[str, Any]) -> ScenarioConfig:
    from vcoresim.scenarios.loader import parse_config

    doc = dump(cfg)
    known = field_types(ScenarioConfig)
    for key, value in tables.items():
        if key not in known:
            raise ScenarioError(f"{key}: unknown table{did_you_mean(key, known)} (known: {', '.join(known)})")
        doc[key] = _merge(doc.get(key), value)
    new = parse_config(doc)
    # What only the model can reject (a vCPU id past KVM_MAX_VCORES, ...), now rather than mid-check.
    builtin.program_from_config(new, timed=False)
    return new
