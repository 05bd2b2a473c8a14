"""vcoresim: an executable, checkable model of KVM on IBM POWER (Book3S HV).

The public Python API (``docs/api.md``)::

    import vcoresim

    sc = vcoresim.load_scenario("stray-ipi@fixed")     # a built-in name or a .toml file
    sc.set_patch("stray-ipi-guard", False)             # change it: patches, kernel, tables, bounds
    result = vcoresim.check(sc)                        # its own bounds, strategy and seed
    result.verdict, result.summary, result.counterexample

``load_scenario``, ``check``, ``simulate``, ``replay``, ``mutate``,
``scenario_names`` and the types they use (``Scenario``, ``CheckResult``,
``Trace``, ``Bounds``, ``ScenarioError`` ...) are loaded on first use, so
``import vcoresim.engine.ops`` does not import the whole tool.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"


__all__ = [
    "Bounds",
    "CheckResult",
    "MutationRun",
    "ReplayOutcome",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "Trace",
    "check",
    "load_scenario",
    "mutate",
    "replay",
    "scenario_names",
    "simulate",
]

if TYPE_CHECKING:
    from vcoresim.api import (
        Bounds,
        CheckResult,
        MutationRun,
        ReplayOutcome,
        Scenario,
        ScenarioError,
        Simulation,
        Trace,
        check,
        load_scenario,
        mutate,
        replay,
        scenario_names,
        simulate,
    )


def __getattr__(name: str) -> Any:
    # PEP 562: the API module (and everything it imports) loads on first use.
    # ``check`` and ``simulate`` are also subpackages: once imported, the import
    # system makes them attributes of this package, and calling them calls the
    # API function (each package is callable), so either way the name works.
    if name in _API:  # (set below: the names of __all__)
        from vcoresim import api

        if name in ("check", "simulate"):
            return sys.modules[f"vcoresim.{name}"]
        return getattr(api, name)
    raise AttributeError(f"module 'vcoresim' has no attribute {name!r}")


#: Names of the public API, all defined in ``vcoresim.api``.
_API = frozenset(__all__)


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})
