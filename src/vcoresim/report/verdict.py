"""A check's verdict as text: one headline and labelled lines, no Python reprs.

The paragraph is a list of *sections*, each a function of the result that
returns ``(label, text)`` lines (or none).  A new part of the verdict (say,
a timing window) is one more function appended to :data:`SECTIONS`; the CLI
and the Python API print whatever the sections return.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vcoresim.check.driver import CheckResult

Line = tuple[str, str]
Section = Callable[[CheckResult, bool], list[Line]]

#: Rich colour of each verdict.
COLOURS = {"holds": "green", "violation": "red", "bounded": "yellow", "sampled": "yellow", "incomplete": "yellow", "not run": "yellow"}


def _bound(v: Any) -> str:
    return "none" if v is None else f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def describe_strategy(strategy: dict[str, Any], violation: bool = False) -> str:
    """``auto, seed 0: random walks (200), then DPOR + sleep sets at preemption bound 0 (17), 1 (152), none (920)``."""
    name = strategy.get("name", "?")
    head = name + (f", seed {strategy['seed']}" if "seed" in strategy else "")
    if name == "pct":
        head += f", depth {strategy.get('depth', '?')}"
    reductions = []
    if strategy.get("dpor"):
        reductions.append("source-set DPOR" if strategy.get("source_sets") else "DPOR")
    if strategy.get("sleep_sets"):
        reductions.append("sleep sets")
    if strategy.get("state_cache"):
        reductions.append("state cache" + (" with symmetry" if strategy.get("symmetry") else ""))
    search = " + ".join(reductions) or "search"
    if strategy.get("search") == "frontier":
        search = f"frontier search ({search}, exact preemption bound)"
    parts = []
    phases = strategy.get("phases") or []
    bounds = [p for p in phases if p.get("phase") == "exhaustive"]
    for p in phases:
        if p.get("phase") in ("random", "sampling", "pct"):
            label = {"random": "random walks", "sampling": "PCT and random walks", "pct": "PCT"}[p["phase"]]
            parts.append(f"{label} ({p['executions']:,})")
    if bounds:
        last = "stopped at the violation" if violation else "cut short"
        steps = ", ".join(f"{_bound(p.get('max_preemptions'))} ({p['executions']:,}{'' if p.get('complete', True) else ', ' + last})" for p in bounds)
        parts.append(f"{search} at preemption bound {steps}")
    elif name in ("exhaustive", "dfs"):
        parts.append(search)
    if (strategy.get("workers") or 0) > 1:
        parts.append(f"{strategy['workers']} workers")
    if strategy.get("ray"):
        parts.append(f"on Ray ({strategy['ray']})")
    return head + (": " + ", then ".join(parts) if parts else "")


def describe_bounds(bounds: dict[str, Any]) -> str:
    """``max_steps 4,000, max_preemptions none; model: guest_rounds 2, scheduler any, faults stray_ipi 1``."""
    search = [f"max_steps {_bound(bounds.get('max_steps'))}", f"max_preemptions {_bound(bounds.get('max_preemptions'))}"]
    budgets = [f"{k} {_bound(bounds[k])}" for k in ("max_executions", "max_seconds") if bounds.get(k) is not None]
    model = []
    for k, v in bounds.items():
        if k in ("max_steps", "max_preemptions", "max_executions", "max_seconds"):
            continue
        if isinstance(v, dict):
            model.append(f"{k} " + ", ".join(f"{a} {b}" for a, b in v.items()))
        else:
            model.append(f"{k} {_bound(v)}")
    text = ", ".join(search)
    if budgets:
        text += "; budgets: " + ", ".join(budgets)
    if model:
        text += "; model: " + ", ".join(model)
    return text


def describe_stats(r: CheckResult, reproducible: bool) -> str:
    s = r.stats
    secs = "" if reproducible else f" in {s.seconds:.2f} s"
    text = f"{s.executions:,} executions, {s.states:,} states, {s.steps:,} steps{secs}"
    if s.truncated and r.verdict != "bounded":
        text += f" ({s.truncated:,} cut at max_steps" + (", in the sampling phase" if not r.cut and r.strategy.get("phases") else "") + ")"
    return text


def _headline(r: CheckResult, reproducible: bool) -> list[Line]:
    return [("verdict", r.summary)]


def _expectation(r: CheckResult, reproducible: bool) -> list[Line]:
    e = r.expectation()
    return [("expected", e)] if e else []


def _setup(r: CheckResult, reproducible: bool) -> list[Line]:
    patches = r.config.get("patches")
    lines = [("memory model", r.memory_model)]
    if isinstance(patches, list):
        lines.append(("patches", ", ".join(patches) or "none"))
    mutation = r.config.get("mutation")
    if isinstance(mutation, dict):
        lines.append(("mutation", str(mutation.get("label", mutation))))
    lines += [("strategy", describe_strategy(r.strategy, r.verdict == "violation")), ("bounds", describe_bounds(r.bounds)), ("covered", describe_stats(r, reproducible))]
    return lines


def _trace(r: CheckResult, reproducible: bool) -> list[Line]:
    lines: list[Line] = []
    if r.checkpoint:
        lines.append(("checkpoint", f"{r.checkpoint}; continue with: vcoresim check --resume {r.checkpoint}"))
    if r.verdict == "violation":
        sh = r.shrink
        if sh.get("shrunk", True) and sh.get("steps_before") != sh.get("steps_after"):
            size = f"{sh.get('steps_after')} steps, shrunk from {sh.get('steps_before')}"
        elif sh.get("shrunk", True):
            size = f"{sh.get('steps_after')} steps, already minimal for the shrinker"
        else:
            size = f"{sh.get('steps_after')} steps, not shrunk"
        if sh.get("stopped"):
            size += f"; shrinking stopped early ({sh['stopped']})"
        if r.trace:
            lines.append(("trace", f"{r.trace} ({size}); replay with: vcoresim replay {r.trace}"))
        else:
            lines.append(("trace", f"not written ({size})"))
    return lines


#: Unreached places listed in text (``--json`` has them all).
UNREACHED_SHOWN = 12


def _unreached(r: CheckResult, reproducible: bool) -> list[Line]:
    if "unreached" not in r.extra:
        return []
    u = r.extra["unreached"]
    if u is None:
        return [("unreached", "not recorded (split across workers)")]
    pts = u["yield_points"]
    scope = "in any execution within the bounds" if r.verdict == "holds" else f"in the {u['executions']:,} executions run (not a complete check)"
    items = u["unreached"]
    head = f"{len(items)} places of model code never executed {scope}; {pts['reached']} of {pts['total']} operation sites reached"
    lines: list[Line] = [("unreached", head if items else f"none: every operation site of {', '.join(u['files'])} reached {scope}")]
    order = {"function": 0, "branch": 1, "operations": 2}
    shown = sorted(items, key=lambda x: (order.get(x["kind"], 3), x["file"], x["line"]))  # whole functions first
    for x in shown[:UNREACHED_SHOWN]:
        text = x["text"]
        if x["kind"] == "branch":
            loop = text.startswith(("for ", "while "))
            text = f"{'loop body never run' if loop else 'branch never taken'}: {text}"
        what = "never executed" if x["kind"] == "function" else text
        lines.append(("", f"{x['file']}:{x['line']}{'-' + str(x['end']) if x['end'] != x['line'] else ''} {x['function']}: {what}"))
    if len(items) > UNREACHED_SHOWN:
        lines.append(("", f"... and {len(items) - UNREACHED_SHOWN} more (--json lists them all)"))
    for v in u["vacuous"]:
        lines.append(("vacuous", f"{v['name']} ({v['kind']}): {v['why']}"))
    return lines


def _window(r: CheckResult, reproducible: bool) -> list[Line]:
    """The counterexample's timing window (simulate/window.py): every delay it
    needs, stalls first, or that it happens at the threads' normal speed."""
    w = r.window
    if w is None:
        return []
    needs = [n["text"] for n in w.get("needs") or []]
    texts = needs or [w["summary"]]
    return [("timing window", texts[0])] + [("", t) for t in texts[1:]]


#: The parts of the verdict paragraph, in order; append to add one.
SECTIONS: list[Section] = [_headline, _expectation, _setup, _window, _trace, _unreached]


def verdict_lines(r: CheckResult, reproducible: bool = False) -> list[Line]:
    out: list[Line] = []
    for section in SECTIONS:
        out.extend(section(r, reproducible))
    return out


def verdict_text(r: CheckResult, reproducible: bool = False) -> str:
    """The paragraph as plain text (what ``str()`` of an API result prints)."""
    lines = [f"{r.scenario}: {r.verdict}"]
    lines += [f"  {label}: {text}" if label else f"    {text}" for label, text in verdict_lines(r, reproducible)]
    return "\n".join(lines)
