"""Checkpoint / resume: an interrupted search continued from its checkpoint
ends where the uninterrupted one ends (same verdict, same statistics)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_cpu

from vcoresim.check.driver import explore
from vcoresim.engine.strategies.base import Bounds
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import get_scenario

STAT_KEYS = ("executions", "states", "steps", "truncated", "pruned")


def _stats(res: Any) -> tuple[int, ...]:
    d = res.stats.as_dict()
    return tuple(d[k] for k in STAT_KEYS)


def _in_pieces(program: Any, strategy: str, bounds: Bounds, chunk: int) -> tuple[Any, int]:
    """Run in budgets of ``chunk`` executions, resuming each time from the JSON checkpoint."""
    resume = None
    pieces = 0
    while True:
        b = Bounds(bounds.max_steps, bounds.max_preemptions, chunk, None)
        res = explore(program, strategy, b, 0, resume=resume)
        pieces += 1
        if res.checkpoint is None:
            return res, pieces
        resume = json.loads(json.dumps(res.checkpoint))  # through JSON, as the file does


@pytest.mark.parametrize("name", ["store-buffering", "peterson", "lost-update", "peterson-broken"])
@pytest.mark.parametrize("strategy", ["exhaustive", "dfs"])
def test_resumed_search_equals_uninterrupted(name: str, strategy: str) -> None:
    prog = example_program(name)
    whole = explore(prog, strategy, Bounds(), 0)
    parts, pieces = _in_pieces(prog, strategy, Bounds(), 2)
    assert (whole.violation is None) == (parts.violation is None) and whole.complete == parts.complete
    if whole.violation is not None:
        assert parts.schedule == whole.schedule and parts.violation.name == whole.violation.name  # type: ignore[union-attr]
    assert _stats(parts) == _stats(whole)
    assert pieces > 1 or whole.stats.executions <= 2


def test_resumed_auto_on_kvm_equals_uninterrupted() -> None:
    sc = get_scenario("stray-ipi@fixed")
    prog = sc.make({})
    bounds = Bounds(sc.bounds.max_steps, 1)
    whole = explore(prog, "auto", bounds, 0)
    parts, pieces = _in_pieces(prog, "auto", bounds, 20)
    assert whole.complete and parts.complete and whole.violation is None and parts.violation is None
    assert pieces > 3
    assert _stats(parts) == _stats(whole)
    assert [p["phase"] for p in parts.params["phases"]] == [p["phase"] for p in whole.params["phases"]]


def _json(run: Any) -> dict[str, Any]:
    return json.loads(run.stdout)


def test_cli_budget_writes_checkpoint_and_resume_finishes(cli: Any, tmp_path: Path) -> None:
    args = ("check", "stray-ipi@fixed", "--max-preemptions", "1", "--json", "--reproducible")
    whole = cli(*args)
    assert whole.code == 0
    cp = tmp_path / "cp.json"
    first = cli(*args, "--max-executions", "100", "--checkpoint", str(cp))
    assert first.code == 3 and _json(first)["coverage"] == "partial" and _json(first)["checkpoint"] == str(cp)
    again = cli("check", "--resume", str(cp), "--json", "--reproducible")
    assert again.code == 0
    a, b = _json(whole), _json(again)
    assert b["verdict"] == a["verdict"] == "holds" and b["coverage"] == "complete"
    assert {k: b["stats"][k] for k in STAT_KEYS} == {k: a["stats"][k] for k in STAT_KEYS}


def test_cli_ctrl_c_writes_checkpoint(tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    p = subprocess.Popen([sys.executable, "-m", "vcoresim.cli", "check", "smt-vcore", "--quiet", "--checkpoint", str(cp)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_cpu(p.pid, 3.0)  # the search is under way (imports take about 1 s of CPU)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert "interrupted" in err and "incomplete" in out and cp.exists()
    doc = json.loads(cp.read_text())
    assert doc["format"] == "vcoresim-checkpoint" and doc["scenario"] == "smt-vcore"
    r = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", "--resume", str(cp), "--max-executions", "5", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    res = json.loads(r.stdout)
    assert res["checkpoint"] == str(cp) and res["stats"]["executions"] > doc["state"]["total"]["executions"]


@pytest.mark.parametrize("content", ["{", "[]", '{"format": "vcoresim-checkpoint", "version": 9}', '{"format": "vcoresim-checkpoint", "version": 1}'])
def test_bad_checkpoint_is_one_line_error(cli: Any, tmp_path: Path, content: str) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = cli("check", "--resume", str(f))
    assert r.code == 2 and len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith("vcoresim: error: ")


def test_resume_refuses_scenario_arguments(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    r = cli("check", "stray-ipi", "--resume", str(f))
    assert r.code == 2 and r.stderr_lines[0].startswith("vcoresim: error: --resume")
