"""Traces of timed runs: what a simulation hit, replayable.

A timed run is deterministic for its program, seed, timing and duration, but
its steps are not a checker's schedule (delays are steps of their own,
timeouts fire at deadlines, timers write memory between steps), so a trace
of a timed run is replayed by simulating again: the trace's ``strategy`` is
``{"name": "simulate", "seed", "duration_ns", "timing"}``, its ``schedule``
and ``steps`` are the run's (for people), and ``vcoresim replay`` re-runs the
simulation with recording on and compares the violation (property and step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vcoresim.check.driver import ReplayOutcome
from vcoresim.check.trace import Trace, TraceError, jsonable, steps_as_json
from vcoresim.engine.world import Program
from vcoresim.simulate.timed import SimResult, TimedDriver, Timing

STRATEGY = "simulate"


def is_timed(trace: Trace) -> bool:
    return trace.strategy.get("name") == STRATEGY


def _recorded_run(program: Program, *, seed: int, timing: Timing, duration_ns: int) -> tuple[TimedDriver, SimResult]:
    drv = TimedDriver(program, seed=seed, timing=timing)
    drv.ex.record = True  # boot is not recorded; every step from the first is
    return drv, drv.run(duration_ns)


def timed_trace(program: Program, *, seed: int, timing: Timing, duration_ns: int) -> Trace | None:
    """Re-run a timed run with recording on; its trace if it stops at a violation."""
    drv, res = _recorded_run(program, seed=seed, timing=timing, duration_ns=duration_ns)
    ex = drv.ex
    if ex.violation is None:
        return None
    names = [a.name for a in ex.actors]
    return Trace(
        scenario=program.name,
        config=jsonable(program.config),
        strategy={"name": STRATEGY, "seed": seed, "duration_ns": duration_ns, "timing": timing.as_dict()},
        bounds={"duration_ns": duration_ns},
        violation={**ex.violation.as_dict(), "t_ns": res.end_ns},
        schedule=[(names[i], alt) for i, alt in ex.schedule],
        steps=steps_as_json(ex),
        shrink={},
    )


def replay_timed(trace: Trace, program_for: Any, path: Path) -> ReplayOutcome:
    """``vcoresim replay`` of a timed run's trace: simulate again, compare."""
    st = trace.strategy
    try:
        seed, duration = int(st["seed"]), int(st["duration_ns"])
        timing = Timing().replace(**dict(st.get("timing") or {}))
    except (KeyError, TypeError, ValueError) as e:
        raise TraceError(f"{path}: field 'strategy' of a timed run needs seed, duration_ns and timing ({e})") from None
    program = program_for(trace.scenario, trace.config)
    drv, _res = _recorded_run(program, seed=seed, timing=timing, duration_ns=duration)
    ex = drv.ex
    want = trace.violation or {}
    got = ex.violation
    if got is not None and got.name == want.get("invariant") and got.step == want.get("step"):
        return ReplayOutcome(trace, ex, True, f"REPRODUCED: {got.name} violated at step {got.step} (t = {_t(want.get('t_ns'))}): {got.message}")
    if got is None and not want:
        return ReplayOutcome(trace, ex, True, "REPRODUCED: the run ends without a violation, as recorded")
    what = f"{got.name} at step {got.step}" if got is not None else "no violation"
    return ReplayOutcome(trace, ex, False, f"NOT REPRODUCED: the trace records {want.get('invariant') or 'no violation'} at step {want.get('step')}, the simulation gives {what}")


def _t(ns: Any) -> str:
    return f"{ns / 1000:.3f} µs" if isinstance(ns, (int, float)) else "?"


def write_if_violated(program: Program, result: SimResult, path: Path | None, *, timing: Timing, folder: Path = Path("traces")) -> Path | None:
    """After a timed run that stopped at a violation: its trace, written to ``path``
    (default: named by its content in ``folder``); the path, or None."""
    if result.outcome not in ("violation", "deadlock"):
        return None
    trace = timed_trace(program, seed=result.seed, timing=timing, duration_ns=result.duration_ns)
    if trace is None:
        return None
    text = trace.to_json()
    return Path(trace.write(path if path is not None else trace.default_path(folder, text), text=text))


def replay_any(path: Path, program_for: Any) -> ReplayOutcome:
    """Replay a trace file: a checker's trace re-executes its schedule, a timed
    run's trace simulates again."""
    from vcoresim.check.driver import replay
    from vcoresim.check.trace import load_trace

    trace = load_trace(path)
    if is_timed(trace):
        return replay_timed(trace, program_for, path)
    return replay(path, program_for)
