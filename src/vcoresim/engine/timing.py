"""Durations in model code: data a timed run interprets and checking ignores.

Model code never asks what time it is or whether it is being timed.  Where
time matters it yields an operation that carries a *duration* (``Delay``, a
``WaitUntil`` timeout, ``SetTimer``); the timed driver (``vcoresim.simulate``)
resolves the duration against its clock, its ``Timing`` parameters and its
seeded random stream, and the checker treats the operation as instant (a
timeout fires only when nothing else can move).

A duration is one of:

* an ``int``: nanoseconds;
* a distribution, as a scenario file writes it: ``{dist = "exp", mean_us =
  50}``, ``{dist = "uniform", lo_ns = 100, hi_ns = 900}``, ``{dist =
  "normal", mean_us = 10, sd_us = 2}``, ``{dist = "lognormal", median_us =
  20, sigma = 0.5}``, ``{dist = "const", ns = 10}`` (units ``_ns``, ``_us``
  or ``_ms``);
* ``Param(name)``: a parameter of the timed driver's ``Timing`` (say the
  guest's timeslice), so the figure lives in one documented place;
* ``NextTick(name)``: until the next multiple of that ``Timing`` period
  (host ticks come at a fixed phase);
* ``Until(loc)``: until the timer armed on ``loc`` by ``SetTimer`` fires.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

NS_PER_US = 1_000
NS_PER_MS = 1_000_000

DISTRIBUTIONS = ("const", "exp", "uniform", "normal", "lognormal")


@dataclass(frozen=True)
class Param:
    """A parameter of the timed driver's ``Timing``, by name (``"timeslice_ns"``)."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class NextTick:
    """Until the next multiple of the ``Timing`` period ``name`` (``"host_tick_ns"``)."""

    name: str

    def __str__(self) -> str:
        return f"next {self.name}"


@dataclass(frozen=True)
class Until:
    """Until the timer armed on location ``loc`` fires (0 if none is armed)."""

    loc: str

    def __str__(self) -> str:
        return f"until {self.loc}"


Duration: TypeAlias = int | Mapping[str, Any] | Param | NextTick | Until


def describe(d: Duration) -> str:
    """How a trace line shows a duration."""
    if isinstance(d, int):
        return f"{d}ns"
    if isinstance(d, Mapping):
        args = ", ".join(f"{k}={v}" for k, v in d.items() if k != "dist")
        return f"{d.get('dist', 'const')}({args})"
    return str(d)


#: Longest duration any parameter or draw may have: 1000 s of simulated time.
MAX_DURATION_NS = 1_000 * 1_000_000_000
#: Range of a lognormal's ``sigma`` (e^4 is a factor of 55 per standard deviation).
MAX_SIGMA = 4.0
#: The parameters of each distribution (each with a unit suffix ``_ns``/``_us``/``_ms``).
PARAMETERS: dict[str, tuple[str, ...]] = {
    "const": ("ns",),
    "exp": ("mean",),
    "uniform": ("lo", "hi"),
    "normal": ("mean", "sd"),
    "lognormal": ("median",),
}
_UNITS = (("_ns", 1), ("_us", NS_PER_US), ("_ms", NS_PER_MS))


def _keys(kind: str, name: str) -> list[tuple[str, int]]:
    """The spellings of parameter ``name`` and their scale to nanoseconds."""
    keys = [(name + suffix, scale) for suffix, scale in _UNITS]
    if name == "ns":  # {dist = "const", us = 10}
        keys.append(("us", NS_PER_US))
    keys.append((name, 1))
    return keys


def _param(spec: Mapping[str, Any], kind: str, name: str) -> float:
    for key, scale in _keys(kind, name):
        if key in spec:
            return float(spec[key]) * scale
    raise ValueError(f"dist {kind!r}: missing parameter {name!r} (with _ns/_us/_ms)")


def _clamp(ns: float) -> int:
    return min(MAX_DURATION_NS, max(0, round(ns)))


def sample(spec: float | Mapping[str, Any], rng: random.Random) -> int:
    """Draw whole nanoseconds from a distribution spec (a number is a constant),
    within [0, ``MAX_DURATION_NS``]."""
    if isinstance(spec, int | float):
        return _clamp(spec)
    kind = spec.get("dist", "const")

    def p(name: str) -> float:
        return _param(spec, kind, name)

    if kind == "const":
        return _clamp(p("ns"))
    if kind == "exp":
        mean = p("mean")
        return _clamp(rng.expovariate(1.0 / mean)) if mean > 0 else 0
    if kind == "uniform":
        return _clamp(rng.uniform(p("lo"), p("hi")))
    if kind == "normal":
        return _clamp(rng.gauss(p("mean"), p("sd")))
    if kind == "lognormal":
        return _clamp(p("median") * math.exp(rng.gauss(0.0, float(spec.get("sigma", 0.5)))))
    raise ValueError(f"dist: unknown distribution {kind!r} ({', '.join(DISTRIBUTIONS)})")


def check_dist(spec: float | Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (naming the key) unless ``spec`` is a distribution
    :func:`sample` reads: a known ``dist``, each of its parameters given once
    (in one unit), no other key, every value a finite number with its
    duration in [0, ``MAX_DURATION_NS``] ns (``sigma`` in [0, ``MAX_SIGMA``]),
    ``lo <= hi``."""
    if not isinstance(spec, Mapping):
        if isinstance(spec, bool) or not isinstance(spec, int | float) or not math.isfinite(spec) or not 0 <= spec <= MAX_DURATION_NS:
            raise ValueError(f"expected a number of nanoseconds in [0, {MAX_DURATION_NS}], got {spec!r:.40}")
        return
    kind = spec.get("dist", "const")
    if not isinstance(kind, str) or kind not in PARAMETERS:
        raise ValueError(f"dist: unknown distribution {str(kind)[:40]!r} (known: {', '.join(DISTRIBUTIONS)})")
    known: dict[str, int] = {}
    for name in PARAMETERS[kind]:
        for key, scale in _keys(kind, name):
            known[key] = scale
    if kind == "lognormal":
        known["sigma"] = 0
    given: dict[str, str] = {}
    for key, value in spec.items():
        if key == "dist":
            continue
        if key not in known:
            raise ValueError(f"{str(key)[:40]}: not a parameter of dist {kind!r} (known: {', '.join(known)})")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{key}: expected a finite number, got {value!r:.40}")
        scale = known[key]
        if scale == 0:  # sigma
            if not 0 <= value <= MAX_SIGMA:
                raise ValueError(f"{key}: {value} is not in [0, {MAX_SIGMA:g}]")
            continue
        if not 0 <= value * scale <= MAX_DURATION_NS:
            raise ValueError(f"{key}: {value} is not in [0, {MAX_DURATION_NS // scale}]")
        name = next(n for n in PARAMETERS[kind] if key in dict(_keys(kind, n)))
        if name in given:
            raise ValueError(f"{key}: parameter {name!r} given twice ({given[name]} and {key})")
        given[name] = key
    for name in PARAMETERS[kind]:
        if name not in given:
            raise ValueError(f"dist {kind!r}: missing parameter {name!r} (with _ns/_us/_ms)")
    if kind == "uniform" and _param(spec, kind, "lo") > _param(spec, kind, "hi"):
        raise ValueError("lo: greater than hi")
    sample(spec, random.Random(0))


def exp_us(mean_us: float) -> dict[str, Any]:
    """An exponential distribution of mean ``mean_us`` microseconds (memoryless arrivals)."""
    return {"dist": "exp", "mean_us": mean_us}
