"""The fast path to the first bug: what a command imports, the first phase of
``auto`` (PCT and uniform walks taking turns), and the cheap shrinking moves
(the causal slice, regrouping into fewer context switches, the budget).
Timings are benchmarks (benchmarks/first_bug.py), not tests."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any
from unittest import mock

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_strategies import SOUNDNESS, Item, _frozen, make_program, programs

import vcoresim.check.trace as trace_mod
from vcoresim.check.trace import causal_slice, context_switches, regroup, shrink
from vcoresim.cli import COMMANDS, main
from vcoresim.engine.runtime import Execution
from vcoresim.engine.strategies.base import Bounds, run_schedule
from vcoresim.engine.strategies.sampling import pct, portfolio, random_walk
from vcoresim.examples import example_program
from vcoresim.kvm.config import dump
from vcoresim.scenarios.loader import loads
from vcoresim.scenarios.registry import get_scenario


def _modules_after(code: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_command() -> None:
    mods = _modules_after("import sys\nfrom vcoresim.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    # The group and what every command shares (one-line errors, interruptions, files); no command, no engine.
    assert not [m for m in mods if m.startswith("vcoresim.") and m not in ("vcoresim.cli", "vcoresim.cli.app", "vcoresim.cli.common", "vcoresim.errors", "vcoresim.files")]


def test_lazy_help_lists_what_the_commands_say() -> None:
    """The table the group lists commands from must say what the commands do."""
    ctx = click.Context(main)
    for name, (_mod, _attr, first) in COMMANDS.items():
        cmd = main.get_command(ctx, name)
        assert cmd is not None and cmd.name == name
        for limit in (30, 45, 70, 200):
            # A command's docstring changed: update its line in vcoresim/cli/app.py's COMMANDS.
            assert cmd.get_short_help_str(limit) == click.utils.make_default_short_help(first, limit), name


def test_check_loads_only_what_it_needs(tmp_path: Any) -> None:
    code = f"import os\nos.chdir({str(tmp_path)!r})\nfrom vcoresim.cli import main\ntry:\n    main(['check', 'hmi-tb-resync', '--quiet'])\nexcept SystemExit:\n    pass"
    mods = _modules_after(code)
    # The verdict's text (report/verdict.py) is what check prints; no other report format.
    reports = ("html", "perfetto", "plots", "tables", "text", "timeline", "visual")
    # A violation's timing window (simulate/window.py) replays it with the timed
    # driver's costs: those modules, and no other part of simulate, come with it.
    window = {"vcoresim.simulate", "vcoresim.simulate.window", "vcoresim.simulate.timed", "vcoresim.simulate.states"}
    for unwanted in ("vcoresim.engine.memory", "vcoresim.simulate", "vcoresim.litmus", *(f"vcoresim.report.{r}" for r in reports), "vcoresim.cli.simulate", "rich.table", "rich.progress", "pydantic"):
        assert not [m for m in mods if (m == unwanted or m.startswith(unwanted + ".")) and m not in window], unwanted


def test_check_json_imports_neither_rich_nor_pydantic(tmp_path: Any) -> None:
    """A built-in scenario is trusted (no pydantic: its test compares both ways of
    loading it) and JSON needs no console (rich is made when first printed to)."""
    code = f"import os\nos.chdir({str(tmp_path)!r})\nfrom vcoresim.cli import main\ntry:\n    main(['check', 'hmi-tb-resync', '--quiet', '--json'])\nexcept SystemExit:\n    pass"
    mods = _modules_after(code)
    assert [m for m in mods if m.split(".")[0] in ("rich", "pydantic", "pydantic_core")] == []
    assert list((tmp_path / "traces").iterdir())  # the check ran and wrote its trace


def test_trusted_build_types_values_as_pydantic_does() -> None:
    """Ints in float fields become floats both ways (a trace's config is compared by type)."""
    text = 'name = "x"\n[check]\nmax_seconds = 5\n[workload]\nactions = ["exit", "cede"]\nweights = [1, 2]\nrun = {dist = "lognormal", median_us = 40, sigma = 1}\n[[vm]]\nvcpus = [0, 1]\n'
    checked, trusted = loads(text, "x.toml"), loads(text, "x.toml", trusted=True)
    assert checked == trusted and json.dumps(dump(checked)) == json.dumps(dump(trusted))
    assert trusted.check.max_seconds == 5.0 and isinstance(trusted.check.max_seconds, float) and trusted.vm[0].name == "vm0"


# ----------------------------------------------------------- first phase
def _preemptions(program: Any, schedule: list[tuple[int, int]]) -> int:
    ex = Execution(program)
    prev, n = -1, 0
    for q, alt in schedule:
        if prev >= 0 and q != prev and prev in ex.enabled():
            n += 1
        prev = q
        ex.step(q, alt)
    return n


def test_pct_walks_keep_the_preemption_bound_uniform_walks_do_not() -> None:
    prog = example_program("lost-update")  # its bug needs preemptions
    free = pct(prog, Bounds(max_executions=2000), seed=1, depth=3)
    assert free.violation is not None and free.schedule is not None and _preemptions(prog, free.schedule) >= 1
    bounded = pct(prog, Bounds(max_preemptions=0, max_executions=300), seed=1, depth=3)
    assert bounded.violation is None  # nothing within 0 preemptions
    uniform = random_walk(prog, Bounds(max_preemptions=0, max_executions=2000), seed=7)
    assert uniform.violation is not None  # uniform walks ignore the bound (auto's random phase always has)


def test_portfolio_is_deterministic_and_takes_turns() -> None:
    prog = get_scenario("hmi-tb-resync@fixed").make({})  # executions of varying length
    key = lambda r: (r.stats.executions, r.stats.steps, r.stats.truncated)
    assert key(portfolio(prog, Bounds(500, None, 40), seed=3)) == key(portfolio(prog, Bounds(500, None, 40), seed=3))
    # Turns: the canonical walk (no choice), PCT's first walk, then the uniform
    # sampler's first walk, both seeded with the seed.
    canonical = portfolio(prog, Bounds(500, None, 1), seed=3).stats.steps
    assert canonical == portfolio(prog, Bounds(500, None, 1), seed=99).stats.steps
    three = portfolio(prog, Bounds(500, None, 3), seed=3)
    assert three.stats.steps == canonical + pct(prog, Bounds(500, None, 1), seed=3).stats.steps + random_walk(prog, Bounds(500, None, 1), seed=3).stats.steps


@pytest.mark.parametrize(
    ("name", "invariant"),
    [
        ("stray-ipi", "no-host-code-in-guest"),
        ("stray-ipi@2vcpu", "no-host-code-in-guest"),
        ("stray-ipi@guard-only", "no-host-code-in-guest"),
        ("p8-idle-lockup", "no-host-code-in-guest"),
        ("smt-vcore@late-join", "no-wait-for-nap-timeout"),
        ("signal-entry-race", "signal-exits-guest"),
        ("hmi-tb-resync", "tb-host-reads-tod"),
    ],
)
def test_first_phase_finds_each_seed_bug(name: str, invariant: str) -> None:
    """auto's first phase (200 walks of at most 500 steps) finds every seed bug with the scenario's seed."""
    sc = get_scenario(name)
    res = portfolio(sc.make({}), Bounds(500, sc.bounds.max_preemptions, 200), sc.seed)
    assert res.violation is not None and res.violation.name == invariant


# ------------------------------------------------------------ shrinking
@SOUNDNESS
@given(programs(), st.integers(0, 1000))
def test_regrouped_steps_reach_the_same_state(spec: list[tuple[Item, ...]], seed: int) -> None:
    """Regrouping keeps every dependency in order: every step is still enabled
    when reached (a strict replay) and the final state is the same."""
    prog = make_program(spec)
    walk = random_walk(prog, Bounds(max_executions=1), seed)
    ex = run_schedule(prog, walk.schedule or _one_schedule(prog, seed))
    grouped = regroup(list(ex.schedule), list(ex.footprints))
    again = run_schedule(prog, grouped)
    assert sorted(grouped) == sorted(ex.schedule) and _frozen(again.mem) == _frozen(ex.mem)
    assert context_switches(grouped) <= context_switches(ex.schedule)


def _one_schedule(prog: Any, seed: int) -> list[tuple[int, int]]:
    import random

    rng = random.Random(seed)
    ex = Execution(prog)
    while ex.enabled():
        en = ex.enabled()
        ex.step(en[rng.randrange(len(en))], 0)
    return list(ex.schedule)


@pytest.mark.parametrize("name", ["lost-update", "peterson-broken"])
def test_causal_slice_reproduces(name: str) -> None:
    prog = example_program(name)
    found = random_walk(prog, Bounds(max_executions=2000), seed=7)
    assert found.violation is not None and found.schedule is not None
    ex = run_schedule(prog, found.schedule)
    keep = causal_slice(ex, found.violation.name)
    assert keep is not None and keep[-1]
    sliced = [t for t, k in zip(ex.schedule, keep, strict=True) if k]
    again = run_schedule(prog, sliced)
    assert again.violation is not None and again.violation.name == found.violation.name


def test_shrink_budget_bounds_the_replays_and_still_reproduces() -> None:
    sc = get_scenario("p8-idle-lockup")
    prog = sc.make({})
    found = random_walk(prog, Bounds(500, None, 200), sc.seed)
    assert found.violation is not None and found.schedule is not None
    calls: list[int] = []
    real = trace_mod.run_schedule

    def counting(*a: Any, **k: Any) -> Any:
        ex = real(*a, **k)
        calls.append(ex.steps)
        return ex

    with mock.patch.object(trace_mod, "run_schedule", counting):
        small = shrink(prog, found.schedule, found.violation, budget=3000)
    # the cheap moves (3 replays), then candidates until 3000 steps are spent: one replay over at most
    assert sum(calls) <= 3000 + 4 * len(found.schedule)
    assert len(small) <= len(found.schedule) and context_switches(small) < context_switches(found.schedule) // 2
    ex = run_schedule(prog, small)  # strict: every step enabled
    assert ex.violation is not None and ex.violation.name == found.violation.name
