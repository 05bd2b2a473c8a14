"""vcoresim's memory models against herd7, on the kernel's litmus tests and
vcoresim's own.

    python benchmarks/litmus_herd.py                 # kernel tests + shipped tests
    python benchmarks/litmus_herd.py DIR_OR_FILE...  # any C litmus tests
    python benchmarks/litmus_herd.py --json out.json

Needs herd7 (``$VCORESIM_HERD7`` or on ``PATH``, see docs/memory-models.md)
and, for the kernel's tests, Debian's ``linux-source`` package (or
``$VCORESIM_LKMM_DIR`` = a kernel's ``tools/memory-model``).  Prints, per
suite: how many tests vcoresim accepts (and why it refuses the others), and
per model how many verdicts agree with herd7's, listing every disagreement.
References: sc/tso/pso = herd7 with ``litmus/cats/{sc,tso,pso}.cat``;
power = herd7's ``ppc.cat`` on the test translated with the kernel's powerpc
mapping; lkmm (beside) = the kernel's ``linux-kernel.cat``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from vcoresim.litmus.oracle import HERD_MODELS, Row, compare, find_herd, kernel_tests, kernel_tree
from vcoresim.litmus.runner import shipped


def _files(args: list[str]) -> list[Path]:
    out: list[Path] = []
    for a in args:
        p = Path(a)
        out.extend(sorted(p.rglob("*.litmus")) if p.is_dir() else [p])
    return out


def report(title: str, rows: list[Row], models: tuple[str, ...]) -> dict[str, object]:
    acc = [r for r in rows if r.accepted]
    print(f"\n== {title}: {len(acc)} of {len(rows)} tests accepted")
    reasons = Counter(r.reason.split(" (")[0] for r in rows if not r.accepted)
    for why, n in reasons.most_common():
        print(f"   refused x{n}: {why}")
    summary: dict[str, object] = {"tests": len(rows), "accepted": len(acc), "models": {}}
    for m in models:
        if m == "lkmm":
            continue
        agree = [r for r in acc if r.agrees(m) is True]
        differ = [r for r in acc if r.agrees(m) is False]
        nohrd = [r for r in acc if r.agrees(m) is None]
        secs = sum(r.seconds.get(m, 0.0) for r in acc)
        print(f"   {m:6s} agree {len(agree):3d} / {len(agree) + len(differ):3d} compared; no reference {len(nohrd):3d}; vcoresim {secs:6.1f} s")
        for r in differ:
            print(f"          differs: {r.name}: vcoresim {r.ours[m]}, herd7 {r.herd[m].verdict}")
        for r in nohrd:
            why = r.herd[m].detail if r.herd[m].verdict is None else f"vcoresim {r.ours.get(m)}"
            print(f"          no comparison: {r.name}: {why}")
        summary["models"][m] = {"agree": len(agree), "differ": [r.name for r in differ], "no_reference": len(nohrd), "seconds": round(secs, 2)}  # type: ignore[index]
    if "lkmm" in models:
        lk = [r for r in acc if r.herd.get("lkmm") and r.herd["lkmm"].verdict]
        same = [r for r in lk if r.ours.get("power") == r.herd["lkmm"].verdict]
        print(f"   lkmm (beside): vcoresim power gives the LKMM's verdict on {len(same)} of {len(lk)}")
        for r in lk:
            if r not in same:
                print(f"          power {r.ours.get('power')}, LKMM {r.herd['lkmm'].verdict}: {r.name}")
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="*")
    ap.add_argument("--models", default=",".join(HERD_MODELS))
    ap.add_argument("--max-seconds", type=float, default=120.0, help="vcoresim budget per test and model")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    herd = find_herd()
    if herd is None:
        print("herd7 not found (set VCORESIM_HERD7 or put herd7 on PATH)", file=sys.stderr)
        return 2
    mm = kernel_tree()
    if mm is None:
        print("the kernel's tools/memory-model not found (install linux-source or set VCORESIM_LKMM_DIR)", file=sys.stderr)
        return 2
    models = tuple(m for m in a.models.split(",") if m)
    suites = [("given", _files(a.paths))] if a.paths else [("kernel", kernel_tests(mm)), ("shipped", shipped())]
    out = {}
    t0 = time.perf_counter()
    for title, files in suites:
        rows = compare(files, models, herd, mm, a.max_seconds)
        out[title] = report(title, rows, models)
    print(f"\nwall {time.perf_counter() - t0:.1f} s (herd7 {herd}; kernel tree {mm})")
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
