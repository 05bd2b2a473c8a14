"""``--workers``: the split search covers what the serial one covers.

The inline mode runs the work items in one process in a seeded random order,
with donations at random points, so hypothesis can check many completion
orders against the brute-force oracle quickly; one test runs real processes.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from test_strategies import SOUNDNESS, Item, brute_force_finals, make_program, programs, recording_finals
from vcoresim.check.parallel import parallel_exhaustive
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.examples import example_program


@SOUNDNESS
@given(programs(), st.integers(0, 1000))
def test_split_search_reaches_every_final_state(spec: list[tuple[Item, ...]], seed: int) -> None:
    prog = make_program(spec)
    with recording_finals() as finals:
        res = parallel_exhaustive(prog, Bounds(max_steps=100), 2, inline_seed=seed)
    assert res.violation is None and res.complete
    assert finals == brute_force_finals(spec)


@pytest.mark.parametrize("name", ["lost-update", "peterson-broken", "lock-order", "peterson", "store-buffering"])
def test_workers_same_verdict_as_serial(name: str) -> None:
    prog = example_program(name)
    serial = exhaustive(prog, Bounds())
    par = parallel_exhaustive(prog, Bounds(), 2)
    assert (serial.violation is None) == (par.violation is None)
    assert serial.complete == par.complete
    if serial.violation is not None:
        assert par.violation is not None and par.violation.name == serial.violation.name
    else:
        assert par.stats.executions >= 1


def test_workers_cli_same_verdict(cli: Any, tmp_path: Any) -> None:
    import json

    one = cli("check", "example/lost-update", "--strategy", "exhaustive", "--json", "--trace-out", str(tmp_path / "a.json"))
    two = cli("check", "example/lost-update", "--strategy", "exhaustive", "--workers", "2", "--json", "--trace-out", str(tmp_path / "b.json"))
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert one.code == two.code == 1
    assert a["verdict"] == b["verdict"] == "violation" and a["invariant"] == b["invariant"]
    assert b["strategy"]["workers"] == 2
    assert cli("replay", str(tmp_path / "b.json"), "--quiet").code == 0
    held = cli("check", "example/peterson", "--strategy", "exhaustive", "--workers", "2", "--json")
    assert held.code == 0 and json.loads(held.stdout)["coverage"] == "complete"


def test_inline_split_really_splits() -> None:
    """The oracle test above is only meaningful if work is given away and reported back."""
    res = parallel_exhaustive(example_program("store-buffering"), Bounds(), 2, inline_seed=3)
    assert res.complete and res.violation is None and res.params["work_items"] > 3
