"""Which parts of a state multiply the states the cache stores (issue 13).

    python benchmarks/state_diversity.py stray-ipi-p8-r1.toml@k1
    python benchmarks/state_diversity.py stray-ipi-p8-r1.toml@k2 --budget 20
    python benchmarks/state_diversity.py stray-ipi@fixed --top 30

Runs the stateful search (the state cache with stateful DPOR, as ``vcoresim
check --cache``) for at most ``--budget`` CPU seconds and decomposes every
*stored* state (every new fingerprint) into components: each memory
location, each actor's mode and each frame on its stack, switched-out
tasks, saved-frame records, monitor clocks.  For each component it prints

- ``values``: how many distinct values it takes over the stored states;
- ``x``: the factor it multiplies the count by, i.e. stored states over the
  number of distinct states once that component alone is left out (1.00:
  the others already determine it; 2.00: leaving it out would halve them).

It also counts the frames identified by their history instead of a snapshot
(those never merge with a frame reached another way), by function, where
the encoder gave up and why, and the states that would merge if each such
frame were identified by its code positions alone (an optimistic bound on
what making it encodable could give, not a sound identity).

The decomposition uses the same canonical encoder as the fingerprint
(``engine/fingerprint.py``'s ``Encoder``), in the same order, so saved
frames are renamed canonically; it is a diagnostic, the search itself is
unchanged.  Scenario names are built-ins (``stray-ipi@fixed``) or files under
``benchmarks/scenarios/``.
"""

from __future__ import annotations

import argparse
import collections
import resource
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _cpu() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def _why_opaque(enc: Any, fr: Any) -> str:
    """Where the snapshot of a frame fails: 'function@line: reason'."""
    from vcoresim.engine import fingerprint as F

    g = fr.gen
    while g is not None:
        code = getattr(g, "gi_code", None)
        frame = g.gi_frame if code is not None else None
        if frame is None:
            return f"{getattr(code, 'co_name', '?')}: not suspended"
        at = F._clean(code, frame.f_lasti)
        name = f"{code.co_name}@{frame.f_lineno}"
        if at is None:
            return f"{name}: value stack (with/except/...)"
        _hidden, live = at
        for n in live:
            if n in frame.f_locals:
                try:
                    F.Encoder(enc.ex).value(frame.f_locals[n])
                except F._Opaque as e:
                    return f"{name}: local {n!r} is {e}"
        g = g.gi_yieldfrom
    try:
        F.Encoder(enc.ex).op(fr.op)
    except F._Opaque as e:
        return f"pending op holds {e}"
    return "?"


def _positions(fr: Any) -> tuple[Any, ...]:
    """A frame's code positions (function, line) down its generator chain."""
    out = []
    g = fr.gen
    while g is not None:
        code = getattr(g, "gi_code", None)
        if code is None or g.gi_frame is None:
            out.append((getattr(code, "co_name", "?"), -1))
            break
        out.append((code.co_name, g.gi_frame.f_lasti))
        g = g.gi_yieldfrom
    return tuple(out)


def decompose(ex: Any, hist_frames: collections.Counter[str], why: collections.Counter[str]) -> dict[str, Any]:
    """The state's components (name -> hashable), one canonical traversal.
    Also: the same with history-identified frames replaced by their code positions,
    under the name prefix '~'."""
    from vcoresim.engine import fingerprint as F

    enc = F.Encoder(ex)
    comp: dict[str, Any] = {}
    for loc, v in ex.mem.items():
        comp[f"mem {loc}"] = hash(enc.value(v))
    alt: dict[str, Any] = {}
    for a in ex.actors:
        comp[f"mode {a.name}"] = (a.status, a.msr, len(a.stack) if a.status != F.DONE else -1)
        if a.status == F.DONE:
            continue
        enc.stacks[id(a.stack)] = len(enc.stacks)
        for i, fr in enumerate(a.stack):
            key = f"frame {a.name}[{i}] {fr.label or ''}".rstrip()
            body = enc.frame(fr)
            comp[key] = hash(body)
            if body[3][0] == F._HIST:
                where = _why_opaque(enc, fr)
                hist_frames[f"{a.name}[{i}] {fr.label}"] += 1
                why[where] += 1
                alt[key] = ("pos", _positions(fr))
    comp["tasks"] = hash(tuple([(n, t.msr, enc.stack(t.stack)) for n, t in sorted(ex.switched.items()) if t.stack is not None]))
    comp["saved-frame records"] = hash(enc.records())
    comp["monitor clocks"] = ex.liveness_clocks()
    comp["observed"] = None if ex.world.observed is None else hash(F.stable(ex.world.observed()))
    comp.update({"~" + k: v for k, v in alt.items()})
    return comp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", help="built-in name[@variant] or a file under benchmarks/scenarios/")
    ap.add_argument("--budget", type=float, default=30.0, help="CPU seconds for the search (default 30)")
    ap.add_argument("--top", type=int, default=25, help="components to list (default 25)")
    args = ap.parse_args()

    from vcoresim.engine.runtime import Execution
    from vcoresim.engine.strategies.base import Bounds
    from vcoresim.engine.strategies.dpor import exhaustive
    from vcoresim.scenarios.registry import get_scenario

    name = args.scenario
    base = name.split("@")[0]
    if base.endswith(".toml") and not Path(base).exists():
        name = str(HERE / "scenarios" / name)
    sc = get_scenario(name)
    program = sc.make({})
    b = sc.bounds

    states: dict[int, dict[str, Any]] = {}
    hist_frames: collections.Counter[str] = collections.Counter()
    why: collections.Counter[str] = collections.Counter()
    original = Execution.fingerprint
    spent = [0.0]

    def fingerprint(self: Any) -> int:
        fp = original(self)
        if fp not in states:
            t = _cpu()
            states[fp] = decompose(self, hist_frames, why)
            spent[0] += _cpu() - t
        return fp

    Execution.fingerprint = fingerprint  # type: ignore[method-assign]
    t0 = _cpu()
    bounds = Bounds(b.max_steps, b.max_preemptions, None, None)
    r = exhaustive(program, bounds, dpor=True, cache=True, stop=lambda: _cpu() - t0 - spent[0] >= args.budget)
    Execution.fingerprint = original  # type: ignore[method-assign]

    n = len(states)
    verdict = "complete" if r.complete else "incomplete (budget)"
    search = _cpu() - t0 - spent[0]
    print(f"{sc.name}: {verdict}, {r.stats.executions:,} executions, {n:,} stored states (fingerprints), search {search:.1f} CPU s")
    keys = sorted({k for c in states.values() for k in c if not k.startswith("~")})
    rows = [list(c.get(k) for k in keys) for c in states.values()]
    out = []
    for j, k in enumerate(keys):
        values = len({row[j] for row in rows})
        if values == 1:
            continue
        without = len({tuple(row[:j] + row[j + 1 :]) for row in rows})
        out.append((n / without, values, k))
    out.sort(key=lambda x: (-x[0], -x[1], x[2]))
    print(f"\n{'x':>6} {'values':>7}  component (left out alone; {len(out)} of {len(keys)} vary)")
    for x, values, k in out[: args.top]:
        print(f"{x:6.2f} {values:7,}  {k}")

    def distinct(drop: Any) -> int:
        return len({tuple(v for kk, v in sorted(c.items()) if not kk.startswith("~") and not drop(kk)) for c in states.values()})

    print("\nLeft out together (states remaining of {:,}):".format(n))
    groups = {
        "all memory": lambda k: k.startswith("mem "),
        "all frames": lambda k: k.startswith("frame "),
        "all modes": lambda k: k.startswith("mode "),
        "saved-frame records": lambda k: k == "saved-frame records",
        "tasks": lambda k: k == "tasks",
    }
    actors = sorted({k.split()[1].split("[")[0] for k in keys if k.startswith("frame ")})
    for a in actors:
        groups[f"frames of {a}"] = lambda k, a=a: k.startswith(f"frame {a}[")
    for label, drop in groups.items():
        print(f"{distinct(drop):9,}  without {label}")
    print("\nEach actor alone (its mode and frames: distinct over the stored states):")
    for a in actors:
        print(f"{distinct(lambda k, a=a: not (k.startswith(f'frame {a}[') or k == f'mode {a}')):9,}  {a}")
    hw = [a for a in actors if a.startswith("cpu") and a != "cpu0"]
    if hw:
        only = lambda k: not any(k.startswith(f"frame {a}[") or k == f"mode {a}" for a in hw)  # noqa: E731
        print(f"{distinct(lambda k: only(k)):9,}  {', '.join(hw)} together (modes and frames)")
        print(f"{distinct(lambda k: not only(k)):9,}  everything else together")
    # History-identified frames by their code positions instead.
    swapped = len({tuple(c.get("~" + kk, v) for kk, v in sorted(c.items()) if not kk.startswith("~")) for c in states.values()})
    print(f"{swapped:9,}  with every history-identified frame replaced by its code positions (optimistic, unsound)")

    total = sum(hist_frames.values())
    with_hist = sum(1 for c in states.values() if any(k.startswith("~") for k in c))
    print(f"\nFrames identified by history: {total:,} in {with_hist:,} of {n:,} states")
    for k, c in hist_frames.most_common(args.top):
        print(f"{c:9,}  {k}")
    print("\nWhere the snapshot failed:")
    for k, c in why.most_common(args.top):
        print(f"{c:9,}  {k}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
