"""The large fuzz run (issue 16): >= 10,000 generated inputs, with figures.

    python benchmarks/fuzz.py                      # 2,000 cases of each of the 5 kinds (10,000)
    python benchmarks/fuzz.py --cases 200 --jobs 1 # a smaller run
    python benchmarks/fuzz.py --interrupts 40      # also 40 runs interrupted at random times

Kinds (``tests/fuzzing.py``): mutated built-in scenario files (run by
``check`` and ``simulate``), mutated traces the tool wrote (``replay``),
mutated and forged checkpoints (``check --resume``), mutated and generated
litmus files (``litmus``), and random argument vectors over every command.
Every case runs in-process (click's runner) under a time bound; one in
``--subprocess-every`` runs as a real process.  ``--jobs`` splits the seeds
over processes.  Printed per kind: cases, exit codes, uncaught exceptions
(tracebacks / exit 4), bad exit-2 messages, lying replays, hangs, known
(referenced) model errors, case time (median, max) and the wall time.  Any
problem is listed with its seed and command, and the exit code is 1.

``--interrupts N``: N subprocess runs (``check`` of several scenarios,
``check --workers 2``, ``swarm``, ``simulate``, ``litmus``) sent SIGINT,
SIGINT twice or SIGTERM at a seeded random time; each must exit 1 or 3 (or
0 if it finished first), write traces that replay, write a checkpoint when
asked, and leave no worker process behind.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

import fuzzing  # noqa: E402


def _job(args: tuple[list[str], list[int], str, int]) -> dict[str, Any]:
    kinds, seeds, work, every = args
    out: dict[str, Any] = {k: {"cases": 0, "codes": {}, "problems": [], "known": 0, "hangs": 0, "times": []} for k in kinds}

    done = [0]
    start = time.perf_counter()

    def on(case: fuzzing.Case, o: fuzzing.Outcome, verdict: str, detail: str) -> None:
        done[0] += 1
        if done[0] % 500 == 0:
            print(f"  [{os.getpid()}] {done[0]} cases, {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
        t = out[case.kind]
        t["cases"] += 1
        t["codes"][o.code] = t["codes"].get(o.code, 0) + 1
        t["times"].append(round(o.seconds, 4))
        t["hangs"] += int(o.hung)
        if verdict == "problem":
            t["problems"].append({"seed": case.seed, "what": case.what, "argv": case.argv, "detail": detail})
        elif verdict == "known":
            t["known"] += 1

    fuzzing.fuzz(kinds, seeds, Path(work), subprocess_every=every, on_case=on)
    return out


def _job_to_queue(args: tuple[list[str], list[int], str, int], results: Any) -> None:
    results.put(_job(args))


# -------------------------------------------------------------- interruptions
def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    out = []
    try:
        kids = [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return out
    for k in kids:
        out += [k, *_descendants(k)]
    return out


INTERRUPTED_COMMANDS = [
    ["check", "stray-ipi", "example/lost-update", "p8-idle-lockup", "smt-vcore", "stray-ipi@fixed", "--json"],
    ["check", "smt-vcore", "--strategy", "exhaustive", "--workers", "2", "--checkpoint", "cp.json", "--json"],
    ["check", "smt-vcore@late-join", "--memory-model", "tso", "--json"],
    ["check", "stray-ipi@fixed-2vcpu", "--checkpoint", "cp.json", "--json"],
    ["swarm", "example/lost-update", "example/peterson-broken", "--runs", "300", "--json"],
    ["simulate", "smt-vcore", "--duration-us", "100000000", "--json", "--compare-smt", "0"],
    ["litmus", "--json"],
]


def interrupt_run(n: int, seed: int) -> dict[str, Any]:
    from vcoresim.check.driver import replay
    from vcoresim.scenarios.registry import program_for

    rng = random.Random(f"vcoresim-interrupt-{seed}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])}
    tally: dict[str, Any] = {"runs": 0, "codes": {}, "problems": [], "traces_replayed": 0, "checkpoints": 0}
    for i in range(n):
        argv = rng.choice(INTERRUPTED_COMMANDS)
        how = rng.choice(["SIGINT", "SIGINT twice", "SIGTERM"])
        delay = rng.uniform(0.5, 8.0)
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.Popen([sys.executable, "-m", "vcoresim.cli", *argv], cwd=d, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            kids = _descendants(p.pid)
            p.send_signal(signal.SIGTERM if how == "SIGTERM" else signal.SIGINT)
            if how == "SIGINT twice":
                time.sleep(rng.uniform(0.05, 1.0))
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                tally["problems"].append(f"{' '.join(argv)} ({how} after {delay:.1f} s): did not stop within 120 s")
                continue
            tally["runs"] += 1
            tally["codes"][p.returncode] = tally["codes"].get(p.returncode, 0) + 1
            label = f"{' '.join(argv)} ({how} after {delay:.1f} s)"
            if p.returncode not in (0, 1, 3) or "Traceback" in err:
                tally["problems"].append(f"{label}: exit {p.returncode}: {err.strip().splitlines()[-1:] if err.strip() else ''}")
                continue
            time.sleep(0.3)
            left = [k for k in kids if _alive(k)]
            if left:
                tally["problems"].append(f"{label}: {len(left)} worker processes outlived the parent")
            try:
                doc = json.loads(out) if out.strip() else None
            except json.JSONDecodeError:
                tally["problems"].append(f"{label}: stdout is not the JSON result")
                continue
            traces = []
            if isinstance(doc, list):
                traces = [x.get("trace") for x in doc if isinstance(x, dict)]
            elif isinstance(doc, dict):
                traces = [doc.get("trace")] + [r["trace"] for r in doc.get("distinct_counterexamples", [])]
            for t in traces:
                if t:
                    try:
                        ok = replay(Path(d) / t, program_for).reproduced
                    except Exception as e:  # noqa: BLE001 - reported as a problem
                        ok = False
                        tally["problems"].append(f"{label}: trace {t} does not replay: {e}")
                    tally["traces_replayed"] += int(ok)
            if "cp.json" in argv and isinstance(doc, dict) and doc.get("verdict") == "incomplete":
                if doc.get("interrupted") and not (Path(d) / "cp.json").exists() and how != "SIGINT twice":
                    tally["problems"].append(f"{label}: no checkpoint written")
                tally["checkpoints"] += int((Path(d) / "cp.json").exists())
    return tally


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", type=int, default=2000, help="cases per kind (default 2000: 10,000 in all)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--kinds", default=",".join(fuzzing.KINDS))
    ap.add_argument("--jobs", type=int, default=2, help="processes (default 2)")
    ap.add_argument("--subprocess-every", type=int, default=100, help="every Nth seed runs as a real process (0: never)")
    ap.add_argument("--interrupts", type=int, default=0, help="also interrupt N runs at random times")
    ap.add_argument("--json", dest="json_out", default=None, help="write the full results here")
    args = ap.parse_args()
    kinds = args.kinds.split(",")
    seeds = list(range(args.first_seed, args.first_seed + args.cases))
    work = tempfile.mkdtemp(prefix="vcoresim-fuzz-")
    start = time.perf_counter()
    chunks = [seeds[i :: args.jobs] for i in range(args.jobs)]
    jobs = [(kinds, chunk, os.path.join(work, f"job{i}"), args.subprocess_every) for i, chunk in enumerate(chunks) if chunk]
    if args.jobs > 1:
        # Plain (non-daemonic) processes: a case may start its own workers (--workers, swarm).
        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        procs = [ctx.Process(target=_job_to_queue, args=(j, results)) for j in jobs]
        for p in procs:
            p.start()
        parts = [results.get() for _ in procs]
        for p in procs:
            p.join()
    else:
        parts = [_job(j) for j in jobs]
    wall = time.perf_counter() - start
    total: dict[str, Any] = {k: {"cases": 0, "codes": {}, "problems": [], "known": 0, "hangs": 0, "times": []} for k in kinds}
    for part in parts:
        for k, t in part.items():
            tt = total[k]
            tt["cases"] += t["cases"]
            tt["known"] += t["known"]
            tt["hangs"] += t["hangs"]
            tt["times"] += t["times"]
            tt["problems"] += t["problems"]
            for c, n in t["codes"].items():
                tt["codes"][c] = tt["codes"].get(c, 0) + n
    print(f"vcoresim fuzz: seeds {seeds[0]}..{seeds[-1]}, {args.jobs} processes, wall {wall:.0f} s")
    print(f"{'kind':<11} {'cases':>6} {'exit 0':>7} {'exit 1':>7} {'exit 2':>7} {'exit 3':>7} {'uncaught':>9} {'problems':>9} {'hangs':>6} {'known':>6} {'median s':>9} {'max s':>7}")
    n_problems = 0
    for k, t in total.items():
        c = t["codes"]
        uncaught = sum(1 for p in t["problems"] if "traceback" in p["detail"])
        n_problems += len(t["problems"]) + t["hangs"]
        med = statistics.median(t["times"]) if t["times"] else 0.0
        print(
            f"{k:<11} {t['cases']:>6} {c.get(0, 0):>7} {c.get(1, 0):>7} {c.get(2, 0):>7} {c.get(3, 0):>7} {uncaught:>9} {len(t['problems']):>9} "
            f"{t['hangs']:>6} {t['known']:>6} {med:>9.3f} {max(t['times'], default=0):>7.2f}"
        )
    cases = sum(t["cases"] for t in total.values())
    print(f"{'all':<11} {cases:>6}")
    if any(t["known"] for t in total.values()):
        print(f"known: {fuzzing.KNOWN_REFERENCE}")
    for k, t in total.items():
        for p in t["problems"][:20]:
            print(f"PROBLEM {k} seed {p['seed']} [{p['what'][:100]}] {' '.join(p['argv'])[:160]}: {p['detail'][:300]}")
    inter = None
    if args.interrupts:
        t0 = time.perf_counter()
        inter = interrupt_run(args.interrupts, args.first_seed)
        print(
            f"interruptions: {inter['runs']} runs, exit codes {dict(sorted(inter['codes'].items()))}, {inter['traces_replayed']} traces replayed, "
            f"{inter['checkpoints']} checkpoints, {len(inter['problems'])} problems, {time.perf_counter() - t0:.0f} s"
        )
        for p in inter["problems"]:
            print(f"PROBLEM interrupt {p}")
        n_problems += len(inter["problems"])
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"kinds": total, "interrupts": inter, "wall": wall}, indent=1))
    if n_problems:
        print(f"the cases with problems are kept under {work}/job*/cases")
        return 1
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
