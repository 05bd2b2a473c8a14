"""Operation mutation (``check --mutate``): mutants applied by the engine at run time.

Each kind is shown to change what the model does (a check that could not
notice it would be a test that cannot fail), the kills replay from their
trace files, equivalent mutants are not run, and the CLI is scriptable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Cli

from vcoresim.check.driver import check, replay
from vcoresim.check.mutation import mutate, select_mutants
from vcoresim.engine import ops as O
from vcoresim.engine.memory import with_memory_model
from vcoresim.engine.mutants import KINDS, Mutant, Site, SiteInfo, discovering, mutants_of, mutated
from vcoresim.engine.strategies.base import Bounds, run_schedule
from vcoresim.engine.world import Body, Invariant, Program, World
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import get_scenario, program_for

HERE = Path(__file__).name


def _sites(program: Program) -> dict[Site, SiteInfo]:
    found: dict[Site, SiteInfo] = {}
    res = check(discovering(program, found), strategy="exhaustive")
    assert res.verdict == "holds"
    return found


def _one(program: Program, kind: str, line_text: str) -> Mutant:
    """The mutant of ``kind`` at the site whose operation reads ``line_text``."""
    ms = [m for m in mutants_of(_sites(program), (kind,)) if m.what == line_text]
    assert len(ms) == 1, [m.what for m in mutants_of(_sites(program), (kind,))]
    return ms[0]


# -------------------------------------------------------------- a small model
def _handshake(w: World) -> None:
    """Writer publishes data then a flag and kicks the reader; the reader waits
    for the kick, reads the flag and, if set, the data."""
    for name in ("data", "flag", "kick", "seen", "done"):
        w.loc(name, 0)

    def writer() -> Body:
        yield O.Store("data", 42)
        yield O.Store("flag", 1)
        yield O.SendIPI("kick", 1, "reader")

    def reader() -> Body:
        yield O.WaitUntil(("kick",), lambda k: k == 1, what="kick")
        f = yield O.Load("flag")
        if f:
            v = yield O.Load("data")
            yield O.Store("seen", v)
        yield O.Store("done", 1)

    w.spawn("writer", writer())
    w.spawn("reader", reader())

    def ok(ex):  # type: ignore[no-untyped-def]
        m = ex.mem
        if m["done"] and m["seen"] != 42:
            return f"reader finished having seen {m['seen']}"
        return None

    w.add_invariant(Invariant("reader-sees-data", "the reader sees the published data", ("done", "seen"), ok))


HANDSHAKE = Program("handshake", _handshake, {"model": "test:handshake"})


def test_discovery_finds_every_mutable_operation_as_a_site() -> None:
    found = _sites(HANDSHAKE)
    kinds = sorted((m.kind, m.what) for m in mutants_of(found))
    assert ("drop-store", "store data = 42") in kinds and ("swap", "store flag = 1") in kinds
    assert ("skip-ipi", "ipi -> reader (kick = 1)") in kinds
    assert ("invert-load", "load flag") in kinds
    assert ("invert-load", "load data") not in kinds  # it reads 42: not a flag
    for m in mutants_of(found):
        assert m.site.file.endswith(HERE) and m.site.name in ("writer", "reader")


@pytest.mark.parametrize(
    ("kind", "what"),
    [("drop-store", "store data = 42"), ("drop-store", "store flag = 1"), ("skip-ipi", "ipi -> reader (kick = 1)"), ("invert-load", "load flag")],
)
def test_each_kind_is_caught_here(kind: str, what: str) -> None:
    m = _one(HANDSHAKE, kind, what)
    res = check(mutated(HANDSHAKE, m), strategy="exhaustive")
    # a dropped kick leaves the reader waiting forever (a deadlock); the others break the invariant
    assert res.verdict == "violation", res.summary
    assert res.invariant == ("no-deadlock" if kind == "skip-ipi" else "reader-sees-data")


def test_dropping_the_done_store_survives_and_says_why() -> None:
    # nothing checks anything once 'done' is never set: the invariant is never armed
    m = _one(HANDSHAKE, "drop-store", "store done = 1")
    assert check(mutated(HANDSHAKE, m), strategy="exhaustive").verdict == "holds"


def test_swap_moves_the_store_after_the_next_visible_operation_only() -> None:
    m = _one(HANDSHAKE, "swap", "store data = 42")
    ex = run_schedule(mutated(HANDSHAKE, m), [(0, 0)] * 3, record=True)
    ops = [o.op for r in ex.records for o in r.ops]
    assert ops[:3] == ["store flag = 1", "store data = 42", "ipi -> reader (kick = 1)"]
    # the store is held while the other thread can run in between
    assert check(mutated(HANDSHAKE, m), strategy="exhaustive").verdict == "holds"  # the kick still follows both


def test_swap_past_a_barrier_breaks_store_buffering_under_sc() -> None:
    sb = example_program("store-buffering")
    m = _one(sb, "swap", "store x = 1")
    res = check(mutated(sb, m), strategy="exhaustive")
    assert res.verdict == "violation" and res.invariant == "sb-forbidden"
    ex = run_schedule(mutated(sb, m), [(0, 0)] * 2, record=True)
    ops = [o.op for r in ex.records for o in r.ops]
    # (the barrier, fused into the thread's first step, ran before recording began)
    assert ops[:2] == ["load y", "store x = 1"]


def test_dropped_barrier_matters_only_under_a_weak_model(tmp_path: Path) -> None:
    sb = example_program("store-buffering")
    sc_run = mutate(sb, strategy="exhaustive", bounds=Bounds(), mutant_bounds=Bounds(), seed=0, trace_dir=tmp_path, kinds=("drop-barrier",))
    assert [o.status for o in sc_run.outcomes] == ["equivalent"] and sc_run.kill_rate is None
    tso = with_memory_model(sb, "tso")
    tso_run = mutate(tso, strategy="exhaustive", bounds=Bounds(), mutant_bounds=Bounds(), seed=0, trace_dir=tmp_path, kinds=("drop-barrier",))
    assert [o.status for o in tso_run.outcomes] == ["killed"] and tso_run.kill_rate == 1.0


def test_kills_replay_from_their_trace_and_name_the_mutant(tmp_path: Path) -> None:
    sb = example_program("store-buffering")
    run = mutate(sb, strategy="exhaustive", bounds=Bounds(), mutant_bounds=Bounds(), seed=0, trace_dir=tmp_path)
    kills = [o for o in run.outcomes if o.status == "killed"]
    assert kills
    for o in kills:
        assert o.result is not None and o.result.trace
        doc = json.loads(Path(o.result.trace).read_text())
        assert doc["config"]["mutation"]["kind"] == o.mutant.kind and doc["config"]["mutation"]["line"] == o.mutant.site.line
        out = replay(Path(o.result.trace), program_for)
        assert out.reproduced, out.summary
        ops = [op.op for r in out.execution.records for op in r.ops]
        if o.mutant.kind.startswith("drop"):
            # never performed (the stand-in note says so where it is recorded)
            assert o.mutant.what not in ops
        if o.mutant.kind == "invert-load":
            assert any("mutation invert-load: the model sees" in t for t in ops)


def test_the_unmutated_program_is_untouched() -> None:
    sb = example_program("store-buffering")
    m = _one(sb, "drop-store", "store x = 1")
    assert "mutation" not in sb.config and mutated(sb, m).config["mutation"]["kind"] == "drop-store"
    assert check(sb, strategy="exhaustive").verdict == "holds"


def test_model_code_never_knows_about_mutation() -> None:
    src = Path(__file__).resolve().parent.parent / "src" / "vcoresim"
    for package in ("kvm", "machine", "examples"):
        for path in (src / package).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            assert "mutation" not in text.lower() and "mutant" not in text.lower(), path


def test_site_selection() -> None:
    ms = mutants_of(_sites(HANDSHAKE))
    assert {m.site.name for m in select_mutants(ms, "reader")} == {"reader"}
    assert {m.kind for m in select_mutants(ms, "swap")} == {"swap"}
    line = ms[0].site.line
    assert all(m.site.line == line for m in select_mutants(ms, f"*:{line}"))
    assert select_mutants(ms, None) == ms


def test_unknown_mutation_in_a_trace_config_is_one_line() -> None:
    with pytest.raises(ValueError, match="mutation.kind: unknown mutation 'frob'"):
        Mutant.from_dict({"kind": "frob", "file": "x", "function": "f", "line": 1})


def test_kinds_are_documented() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    for k in KINDS:
        assert f"`{k}`" in readme


# ----------------------------------------------------------------------- CLI
def test_cli_mutate_json_is_scriptable_and_deterministic(cli: Cli) -> None:
    runs = [cli("check", "store-buffering", "--mutate", "--json", "--reproducible") for _ in range(2)]
    assert runs[0].code == 0 and runs[0].stdout == runs[1].stdout
    doc = json.loads(runs[0].stdout)
    assert doc["baseline"]["verdict"] == "holds" and doc["mutants"] == len(doc["outcomes"]) == 9
    assert doc["equivalent"] == 1 and doc["killed"] + doc["survived"] + doc["equivalent"] == 9
    assert doc["kill_rate"] == round(doc["killed"] / 8, 4)
    for o in doc["outcomes"]:
        assert o["status"] in ("killed", "survived", "equivalent", "crashed")
        if o["status"] == "killed":
            assert o["invariant"] == "sb-forbidden" and cli("replay", o["trace"], "--quiet").code == 0
    only = json.loads(cli("check", "store-buffering", "--mutate", "--json", "--mutations", "swap", "--sites", "proc:96").stdout)
    assert [(o["kind"], o["line"]) for o in only["outcomes"]] == [("swap", 96)] or [o["kind"] for o in only["outcomes"]] == ["swap"]


def test_cli_mutate_table_fits_80_columns(cli: Cli) -> None:
    r = cli("check", "store-buffering", "--mutate", "--reproducible", columns=80)
    assert r.code == 0, r.stderr
    assert max(len(ln) for ln in r.stdout.splitlines()) <= 80
    assert "mutants killed" in r.stdout and "caught by" in r.stdout


def test_cli_mutate_errors(cli: Cli) -> None:
    r = cli("check", "store-buffering", "--mutate", "--mutations", "drop-stores")
    assert r.code == 2 and r.stderr_lines == ["vcoresim: error: --mutations: unknown mutation 'drop-stores' (did you mean 'drop-store'?) (known: drop-store, drop-barrier, swap, invert-load, skip-ipi)"]
    r = cli("check", "store-buffering", "peterson", "--mutate")
    assert r.code == 2 and r.stderr_lines == ["vcoresim: error: --mutate: give exactly one scenario"]
    r = cli("check", "store-buffering", "--sites", "x")
    assert r.code == 2 and "only with --mutate" in r.stderr_lines[0]


def test_cli_mutate_on_a_violating_scenario_says_so(cli: Cli) -> None:
    r = cli("check", "lost-update", "--mutate")
    assert r.code == 1 and "already violates no-lost-update" in r.stdout


@pytest.mark.slow
def test_skip_ipi_of_start_thread_is_caught_in_the_kvm_model(tmp_path: Path) -> None:
    sc = get_scenario("stray-ipi@fixed")
    run = mutate(sc.make({}), strategy=sc.strategy, bounds=sc.bounds, mutant_bounds=Bounds(sc.bounds.max_steps, None, 300), seed=0, trace_dir=tmp_path, kinds=("skip-ipi",))
    assert run.outcomes and all(o.status == "killed" for o in run.outcomes), run.summary()


def test_mutants_under_the_state_cache_agree_with_the_plain_search() -> None:
    """The state cache must not merge a state with a swapped store in flight with one without."""
    for kind, what in (("swap", "store data = 42"), ("swap", "store flag = 1"), ("drop-store", "store flag = 1"), ("invert-load", "load flag")):
        m = _one(HANDSHAKE, kind, what)
        plain = check(mutated(HANDSHAKE, m), strategy="exhaustive")
        cached = check(mutated(HANDSHAKE, m), strategy="exhaustive", cache=True)
        assert (plain.verdict, plain.invariant) == (cached.verdict, cached.invariant), (kind, what)


# ------------------------------------------- a livelock within a sampled budget
def _countdown(w: World) -> None:
    """A worker counts ``rounds`` down to 0 (it reads ``x`` first, which another
    thread stores: two executions); every execution ends in a few steps."""
    for name in ("rounds", "x", "seen"):
        w.loc(name, 0)
    w.mem["rounds"] = 3

    def worker() -> Body:
        seen = yield O.Load("x")
        yield O.Store("seen", seen + 1)
        n = yield O.Load("rounds")
        while n > 0:
            yield O.Store("rounds", n - 1)
            n = yield O.Load("rounds")

    def other() -> Body:
        yield O.Store("x", 1)

    w.spawn("worker", worker())
    w.spawn("other", other())


COUNTDOWN = Program("countdown", _countdown, {"model": "test:countdown"})


def test_a_livelock_is_a_kill_even_when_the_per_mutant_budget_runs_out() -> None:
    # Dropping the decrement loops forever: the first execution is cut at
    # max_steps, and the mutant's complete check would be bounded, not holds.
    bounds = Bounds(max_steps=60)
    assert check(COUNTDOWN, strategy="exhaustive", bounds=bounds).verdict == "holds"
    run = mutate(COUNTDOWN, strategy="exhaustive", bounds=bounds, mutant_bounds=Bounds(max_steps=60, max_executions=1), seed=0, trace_dir=None, kinds=("drop-store",), sites="worker")
    by_what = {o.mutant.what.split(" =")[0]: o for o in run.outcomes}
    loop = by_what["store rounds"]
    assert loop.result is not None and loop.result.verdict == "incomplete"  # the budget ran out first
    assert loop.status == "killed" and loop.caught_by == "max_steps"
    # a mutant that changes nothing observable within the budget still survives
    assert by_what["store seen"].status == "survived"
