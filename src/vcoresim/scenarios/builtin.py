"""The built-in KVM scenarios: every ``scenarios/*.toml``, and each of its variants as ``NAME@VARIANT``.

``Scenario.make(overrides)`` accepts either the CLI's kernel overrides
(``{"kernel": PRESET, "patches": {NAME: bool}}``) or a full effective
configuration (a ``Program.config``, as a trace file holds it), and returns
``Program(name, build, config)`` with ``config`` = the effective
``ScenarioConfig`` dumped to JSON plus ``"patches"``, the sorted patch set in
force.  ``make(program.config)`` rebuilds the same program.
"""

from __future__ import annotations

import re
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.world import Program, World
from vcoresim.kvm.config import KernelConfig, ScenarioConfig, dump
from vcoresim.kvm.patches import resolve_kernel
from vcoresim.scenarios.base import Scenario, ScenarioError
from vcoresim.scenarios.loader import format_validation_error, load, loads


def _override_kernel(base: KernelConfig, preset: str | None, patches: dict[str, bool]) -> KernelConfig:
    """A preset replaces the kernel (its patch overrides go); patches apply on top."""
    if preset is not None:
        return KernelConfig(preset=preset, patches=dict(patches))
    return KernelConfig(preset=base.preset, patches={**base.patches, **patches})


def variant_config(cfg: ScenarioConfig, variant: str) -> ScenarioConfig:
    """The effective configuration of ``NAME@VARIANT``: the variant's tables over the scenario's."""
    v = cfg.variants[variant]
    upd: dict[str, Any] = {
        "name": f"{cfg.name}@{variant}",
        "description": v.description or cfg.description,
        "kernel": _override_kernel(cfg.kernel, v.kernel.preset, v.kernel.patches),
        "expect": v.expect if (v.expect.verdict is not None or v.expect.invariant is not None) else cfg.expect,
        "variants": {},
    }
    if v.vm is not None:
        upd["vm"] = v.vm
    if v.check is not None:
        upd["check"] = v.check
    if v.machine is not None:
        upd["machine"] = v.machine
    if v.faults is not None:
        upd["faults"] = v.faults
    if v.workload is not None:
        upd["workload"] = v.workload
    if v.invariants is not None:
        upd["invariants"] = v.invariants
    return replace(cfg, **upd)


def _config_doc(cfg: ScenarioConfig, patches: frozenset[str]) -> dict[str, Any]:
    doc = dump(cfg)
    doc["patches"] = sorted(patches)
    return doc


def _model_bounds(cfg: ScenarioConfig) -> dict[str, Any]:
    """What the configuration bounds: stated with every verdict."""
    out: dict[str, Any] = {"guest_rounds": cfg.workload.rounds, "scheduler": cfg.check.scheduler}
    faults = {k: v for k, v in dump(cfg.faults).items() if isinstance(v, int) and not isinstance(v, bool) and v and not k.endswith("_us")}
    if faults:
        out["faults"] = faults
    return out


def program_from_config(cfg: ScenarioConfig, *, timed: bool = True) -> Program:
    """Resolve the kernel, check the configuration with the model, and make the
    program; ``timed``: also the open-ended program a timed run uses instead."""
    from vcoresim.kvm import model  # imported when first needed: listing scenarios does not build them

    patches = resolve_kernel(cfg.kernel.preset, cfg.kernel.patches, "kernel")

    monitors: dict[str, Any] = {}  # built with the first world, shared by the rest

    def build(w: World) -> None:
        model.build_world(w, cfg, patches, monitors=monitors)

    # Build one world now, so errors only the model can see (a vCPU id beyond
    # KVM_MAX_VCORES, ...) are reported as bad input, not in the middle of a run.
    try:
        build(World())
    except ScenarioError as e:
        raise ScenarioError(f"{cfg.name}: {e}") from None
    counterpart = program_from_config(cfg.for_timed_run(), timed=False) if timed and not cfg.workload.open_ended else None
    program = Program(cfg.name, build, _config_doc(cfg, patches), select=cfg.invariants, model_bounds=_model_bounds(cfg), timed=counterpart)
    if cfg.check.memory_model == "sc":
        return program
    from vcoresim.engine.memory import with_memory_model  # loaded only for a weak-memory scenario

    return with_memory_model(program, cfg.check.memory_model)


def config_from_doc(doc: dict[str, Any]) -> ScenarioConfig:
    """A full configuration (``Program.config``) back into a ``ScenarioConfig``."""
    from vcoresim.scenarios.schema import ValidationError, validate

    body = {k: v for k, v in doc.items() if k != "patches"}
    try:
        return validate(ScenarioConfig, body)
    except ValidationError as e:
        raise ScenarioError(f"config: {format_validation_error(e)}") from None


def is_full_config(overrides: dict[str, Any]) -> bool:
    return "name" in overrides and "machine" in overrides


def apply_overrides(cfg: ScenarioConfig, overrides: dict[str, Any]) -> ScenarioConfig:
    """The configuration ``make(overrides)`` runs: CLI kernel overrides, or a full configuration."""
    if not overrides:
        return cfg
    if is_full_config(overrides):
        return config_from_doc(overrides)
    unknown = sorted(set(overrides) - {"kernel", "patches"})
    if unknown:
        raise ScenarioError(f"overrides: unknown key {unknown[0]!r} (known: kernel, patches)")
    preset = overrides.get("kernel")
    patches = dict(overrides.get("patches") or {})
    if preset is not None and not isinstance(preset, str):
        raise ScenarioError(f"--kernel: expected a preset name, got {preset!r}")
    resolve_kernel(preset, patches, "--")  # names the CLI option in errors
    return replace(cfg, kernel=_override_kernel(cfg.kernel, preset, patches))


def scenario_for(cfg: ScenarioConfig) -> Scenario:
    """A ``Scenario`` whose ``make`` builds ``cfg`` (after overrides)."""

    def make(overrides: dict[str, Any]) -> Program:
        if is_full_config(overrides) and ("memory_model" in overrides or "removed_barriers" in overrides):
            # A weak-memory program's own config (``with_memory_model`` adds the keys).
            from vcoresim.engine.memory import split_memory_config, with_memory_model

            rest, model, removed = split_memory_config(overrides)
            return with_memory_model(program_from_config(apply_overrides(cfg, rest)), model, removed)
        return program_from_config(apply_overrides(cfg, overrides))

    c = cfg.check
    variants = {n: dump(v, exclude_none=True) for n, v in cfg.variants.items()}
    return Scenario(
        name=cfg.name,
        description=cfg.description,
        kind="kvm",
        make=make,
        expected=cfg.expect.verdict,
        expected_invariant=cfg.expect.invariant,
        strategy=c.strategy,
        bounds=Bounds(max_steps=c.max_steps, max_preemptions=c.max_preemptions, max_executions=c.max_executions, max_seconds=c.max_seconds),
        seed=c.seed,
        variants=variants,
    )


def scenarios_of(cfg: ScenarioConfig) -> list[Scenario]:
    """The scenario and one per variant."""
    return [scenario_for(cfg)] + [scenario_for(variant_config(cfg, v)) for v in cfg.variants]


def builtin_configs() -> list[ScenarioConfig]:
    out = []
    for entry in sorted(resources.files("vcoresim.scenarios").iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            out.append(loads(entry.read_text(encoding="utf-8"), entry.name, trusted=True))
    return out


#: What a built-in scenario's file is called (``stray-ipi``, ``p8-idle-lockup``).
_BUILTIN_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def builtin_config(name: str) -> ScenarioConfig | None:
    """The built-in scenario ``name`` from its own file, if there is one."""
    if not _BUILTIN_NAME.fullmatch(name):
        return None  # not a built-in's name (nor a path to probe: it may be too long for one)
    entry = resources.files("vcoresim.scenarios").joinpath(f"{name}.toml")
    try:
        if not entry.is_file():
            return None
    except OSError:
        return None
    cfg = loads(entry.read_text(encoding="utf-8"), entry.name, trusted=True)
    return cfg if cfg.name == name else None


def provider() -> list[Scenario]:
    return [sc for cfg in builtin_configs() for sc in scenarios_of(cfg)]


def file_scenario(path: str) -> Scenario:
    """``vcoresim check path/to/file.toml``: the file's scenario, or ``path@VARIANT``."""
    file, _, variant = path.partition("@") if not Path(path).is_file() else (path, "", "")
    cfg = load(file)
    if variant:
        if variant not in cfg.variants:
            raise ScenarioError(f"{Path(file).name}: no variant {variant!r} (known: {', '.join(cfg.variants) or 'none'})")
        cfg = variant_config(cfg, variant)
    return scenario_for(cfg)

