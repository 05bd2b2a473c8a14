"""Unreached model code and vacuous monitors (``check --unreached``, the SPIN habit).

A small model with a branch the explored executions never take, a function
never called, an invariant that reads nothing that changes and a liveness
property never armed: the report must name exactly those, by this file's
lines; recording must not change what the check explores.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

from conftest import Cli

from vcoresim.check.driver import check
from vcoresim.check.unreached import analyse
from vcoresim.engine import ops as O
from vcoresim.engine.coverage import Coverage, covering
from vcoresim.engine.world import Body, Invariant, Liveness, Program, World
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import get_scenario

HERE = Path(__file__).name


def never_called() -> Body:
    yield O.Store("x", 99)


def worker(me: int) -> Body:
    v = yield O.Load("x")
    if v > 5:  # x only ever holds 0, 1, 2: never taken
        yield O.Store("big", 1)
        yield from never_called()
    else:
        yield O.Store("x", v + 1)
    yield O.Store(f"done.{me}", 1)


def _build(w: World) -> None:
    for loc in ("x", "big", "calm", "done.0", "done.1"):
        w.loc(loc, 0)
    w.spawn("P0", worker(0))
    w.spawn("P1", worker(1))
    w.add_invariant(Invariant("x-small", "x stays below 10", ("x",), lambda ex: "x too big" if ex.mem["x"] >= 10 else None))
    w.add_invariant(Invariant("calm", "calm stays 0 (nothing writes it)", ("calm",), lambda ex: "calm changed" if ex.mem["calm"] else None))
    w.add_liveness(Liveness("big-handled", "once big is set, x is reset", ("big", "x"), lambda ex: bool(ex.mem["big"]), lambda ex: ex.mem["x"] == 0, 5))


PROGRAM = Program("unreached-test", _build, {"model": "test:unreached"})


def _line(fn: object, text: str) -> int:
    src, start = inspect.getsourcelines(fn)  # type: ignore[arg-type]
    return start + next(i for i, ln in enumerate(src) if text in ln)


def test_the_report_names_the_branch_the_function_and_the_vacuous_monitors() -> None:
    res = check(PROGRAM, strategy="exhaustive", coverage=True)
    assert res.verdict == "holds"
    rep = res.extra["unreached"]
    mine = [u for u in rep["unreached"] if u["file"].endswith(HERE)]
    branch = [u for u in mine if u["kind"] == "branch"]
    assert [(u["function"], u["line"], u["text"]) for u in branch] == [("worker", _line(worker, 'yield O.Store("big", 1)'), "if v > 5:")]
    assert branch[0]["end"] == _line(worker, "yield from never_called()")
    funcs = [u for u in mine if u["kind"] == "function"]
    assert [(u["function"], u["line"]) for u in funcs] == [("never_called", _line(never_called, "def never_called"))]
    assert not [u for u in mine if u["kind"] == "operations"]
    assert rep["yield_points"]["reached"] < rep["yield_points"]["total"]
    vac = {v["name"]: v for v in rep["vacuous"]}
    assert set(vac) == {"calm", "big-handled"}
    assert vac["calm"]["why"].startswith("never read a changed value") and vac["big-handled"]["why"].startswith("never armed")


def test_recording_changes_nothing_the_check_explores() -> None:
    for program in (PROGRAM, example_program("peterson"), example_program("store-buffering")):
        plain = check(program, strategy="exhaustive")
        rec = check(program, strategy="exhaustive", coverage=True)
        assert (plain.verdict, plain.stats.executions, plain.stats.states, plain.stats.steps) == (rec.verdict, rec.stats.executions, rec.stats.states, rec.stats.steps)
        assert "unreached" not in plain.extra


def test_every_reached_point_is_a_yield_of_model_code() -> None:
    cov = Coverage()
    check(covering(PROGRAM, cov), strategy="exhaustive")
    files = {code.co_filename for code, _off in cov.points}
    assert any(f.endswith(HERE) for f in files)
    rep = analyse(cov)
    assert all(not f.startswith(("engine/", "check/")) for f in rep.files)  # drivers are not model code
    assert cov.executions >= 1 and "x" in cov.changed and "calm" not in cov.changed


def test_a_kvm_scenario_without_nmis_never_exercises_the_nmi_path() -> None:
    """signal-entry-race@fixed injects no NMI: the NMI source never runs and
    no-nmi-ri-clear reads a flag that never changes; the radix-nmi variant
    injects one, so its source runs (the invariant's flag is the failure
    itself: it stays vacuous while the kernel is fixed, and the report names it)."""
    def report(name: str) -> dict:
        sc = get_scenario(name)
        return check(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, seed=sc.seed, coverage=True).extra["unreached"]

    plain = report("signal-entry-race@fixed")
    assert "no-nmi-ri-clear" in {v["name"] for v in plain["vacuous"]}
    assert any(u["function"] == "nmi_source" and u["kind"] == "function" for u in plain["unreached"])
    assert "ghost[0].unrecoverable_nmi" in next(v["why"] for v in plain["vacuous"] if v["name"] == "no-nmi-ri-clear")
    nmi = report("signal-entry-race@radix-nmi-fixed")
    assert not any(u["function"] == "nmi_source" for u in nmi["unreached"])
    for u in plain["unreached"]:
        assert u["file"] == "kvm/entry_p9.py" and u["line"] <= u["end"]


def test_cli_lists_unreached_code_for_one_scenario_and_in_json(cli: Cli) -> None:
    r = cli("check", "signal-entry-race@fixed", "--quiet", columns=80)
    assert r.code == 0, r.stderr
    assert "unreached: " in r.stdout and "kvm/entry_p9.py:" in r.stdout and "never executed" in r.stdout
    assert "vacuous: no-nmi-ri-clear (invariant): never read a changed value" in " ".join(r.stdout.split())
    assert all(len(ln) <= 80 for ln in r.stdout.splitlines())
    doc = json.loads(cli("check", "signal-entry-race@fixed", "--json").stdout)
    assert doc["unreached"]["unreached"] and doc["unreached"]["vacuous"]
    off = json.loads(cli("check", "signal-entry-race@fixed", "--json", "--no-unreached").stdout)
    assert "unreached" not in off
