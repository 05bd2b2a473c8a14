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


def _param(spec: Mapping[str, Any], kind: str, name: str) -> float:
    for suffix, scale in (("_ns", 1), ("_us", NS_PER_US), ("_ms", NS_PER_MS)):
        if name + suffix in spec:
            return float(spec[name + suffix]) * scale
    if name == "ns" and "us" in spec:
        return float(spec["us"]) * NS_PER_US
    if name in spec:
        return float(spec[name])
    raise ValueError(f"dist {kind!r}: missing parameter {name!r} (with _ns/_us/_ms)")


def sample(spec: float | Mapping[str, Any], rng: random.Random) -> int:
    """Draw whole nanoseconds from a distribution spec (a number is a constant)."""
    if isinstance(spec, int | float):
        return max(0, round(spec))
    kind = spec.get("dist", "const")

    def p(name: str) -> float:
        return _param(spec, kind, name)

    if kind == "const":
        return max(0, round(p("ns")))
    if kind == "exp":
        mean = p("mean")
        return max(0, round(rng.expovariate(1.0 / mean))) if mean > 0 else 0
    if kind == "uniform":
        return max(0, round(rng.uniform(p("lo"), p("hi"))))
    if kind == "normal":
        return max(0, round(rng.gauss(p("mean"), p("sd"))))
    if kind == "lognormal":
        return max(0, round(p("median") * math.exp(rng.gauss(0.0, float(spec.get("sigma", 0.5))))))
    raise ValueError(f"dist: unknown distribution {kind!r} ({', '.join(DISTRIBUTIONS)})")


def check_dist(spec: float | Mapping[str, Any]) -> None:
    """Raise ``ValueError`` (naming the parameter) unless ``spec`` is a distribution :func:`sample` reads."""
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            if key != "dist" and (not isinstance(value, int | float) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{key}: expected a non-negative number, got {value!r}")
    sample(spec, random.Random(0))


def exp_us(mean_us: float) -> dict[str, Any]:
    """An exponential distribution of mean ``mean_us`` microseconds (memoryless arrivals)."""
    return {"dist": "exp", "mean_us": mean_us}
