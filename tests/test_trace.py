"""Counterexample traces: shrinking, the v1 file, loading it back, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vcoresim.check.driver import check, replay
from vcoresim.check.trace import FORMAT, VERSION, TraceError, context_switches, load_trace, shrink
from vcoresim.engine.strategies.base import Bounds, run_schedule
from vcoresim.engine.strategies.sampling import random_walk
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import program_for

BUGGY = ["peterson-broken", "lost-update", "lock-order"]


@pytest.mark.parametrize("name", BUGGY)
@pytest.mark.parametrize("seed", [3, 7])
def test_shrinking_is_no_worse_and_still_reproduces(name: str, seed: int) -> None:
    prog = example_program(name)
    found = random_walk(prog, Bounds(max_executions=2000), seed=seed)
    assert found.violation is not None and found.schedule is not None
    small = shrink(prog, found.schedule, found.violation)
    assert len(small) <= len(found.schedule)
    assert context_switches(small) <= context_switches(found.schedule)
    ex = run_schedule(prog, small)  # strict: every step of the shrunk schedule is enabled
    assert ex.violation is not None and ex.violation.name == found.violation.name


def test_shrinking_removes_padding() -> None:
    # lost-update needs only: P0 load, P1 load/store/load/store, P0 store/load/store = 8 steps,
    # and no schedule with fewer than 2 switches loses an update.  The shrinker only moves
    # a step earlier, next to its actor's previous run, so it may stop at 3 switches
    # (P1 first, P0's load, then P1 again): minimal in steps, not always in switches.
    prog = example_program("lost-update")
    found = random_walk(prog, Bounds(max_executions=2000), seed=5)
    assert found.violation is not None and found.schedule is not None
    small = shrink(prog, found.schedule, found.violation)
    assert len(small) == 8 and 2 <= context_switches(small) <= 3


@pytest.mark.parametrize("name", BUGGY)
def test_trace_file_v1_fields_and_replay(name: str, tmp_path: Path) -> None:
    path = tmp_path / f"{name}.json"
    res = check(example_program(name), strategy="random", seed=7, bounds=Bounds(max_executions=2000), trace_out=path)
    assert res.verdict == "violation" and res.trace == str(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == FORMAT and doc["version"] == VERSION == 1
    assert doc["scenario"] == f"example/{name}" and doc["config"] == {"model": f"example:{name}"}
    assert doc["strategy"]["name"] == "random" and doc["strategy"]["seed"] == 7
    assert doc["violation"]["invariant"] == res.invariant
    assert doc["shrink"]["steps_after"] == len(doc["schedule"]) <= doc["shrink"]["steps_before"]
    assert len(doc["steps"]) == len(doc["schedule"])
    for step, (actor, alt) in zip(doc["steps"], doc["schedule"], strict=True):
        assert step["actor"] == actor and step["alt"] == alt
        assert step["ops"] and {"stack", "op", "loc", "value", "msr"} <= set(step["ops"][0])
    out = replay(path, program_for)
    assert out.reproduced and out.summary.startswith("REPRODUCED")


def test_replay_notices_a_different_outcome(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    check(example_program("lost-update"), trace_out=path)
    doc = json.loads(path.read_text())
    doc["violation"]["invariant"] = "something-else"
    path.write_text(json.dumps(doc))
    out = replay(path, program_for)
    assert not out.reproduced and out.summary.startswith("NOT REPRODUCED")


def _trace_doc(tmp_path: Path) -> dict:
    path = tmp_path / "good.json"
    check(example_program("lost-update"), trace_out=path)
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.update(format="something"), "field 'format'"),
        (lambda d: d.pop("schedule"), "field 'schedule'"),
        (lambda d: d.update(schedule=[["P0"]]), "schedule[0]"),
        (lambda d: d.update(violation="x"), "field 'violation'"),
    ],
)
def test_load_trace_rejects_bad_documents(tmp_path: Path, mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    doc = _trace_doc(tmp_path)
    mutate(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(TraceError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_trace(bad)


def test_load_trace_rejects_truncated_and_missing_files(tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    check(example_program("lost-update"), trace_out=good)
    cut = tmp_path / "cut.json"
    cut.write_text(good.read_text()[:200])
    with pytest.raises(TraceError, match="not valid JSON"):
        load_trace(cut)
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "absent.json")


def test_replay_rejects_unknown_actor_and_impossible_step(tmp_path: Path) -> None:
    doc = _trace_doc(tmp_path)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**doc, "schedule": [["P9", 0]]}))
    with pytest.raises(TraceError, match="P9"):
        replay(bad, program_for)
    # a branch the operation does not have: the trace does not match the model
    bad.write_text(json.dumps({**doc, "schedule": [["P0", 3]]}))
    with pytest.raises(TraceError, match="does not match"):
        replay(bad, program_for)
