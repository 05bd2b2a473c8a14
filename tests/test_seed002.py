"""Seed 002 (hmi-subcore-sync): a timebase-error HMI while a migrated guest runs leaves
the host's timebase tb_offset off the TOD before the fix (unsplit, 2- and 4-way split),
and not after; traces tell the story and replay; the residual window the checker finds
in the fixed protocol with two guests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vcoresim.check.driver import check, replay
from vcoresim.scenarios.registry import get_scenario, program_for


def run(name: str, tmp_path: Path, overrides: dict | None = None, select: list[str] | None = None, **kw):  # type: ignore[no-untyped-def]
    sc = get_scenario(name)
    prog = sc.make(overrides or {})
    if select is not None:
        prog.select = select
    kw.setdefault("strategy", sc.strategy)
    kw.setdefault("bounds", sc.bounds)
    return check(prog, seed=sc.seed, trace_out=tmp_path / "t.json", **kw)


def steps(path: Path) -> list[tuple[str, list[str], str]]:
    doc = json.loads(path.read_text())
    return [(s["actor"], o["stack"], o["op"]) for s in doc["steps"] for o in s["ops"]]


def test_unsplit_found_without_the_fix(tmp_path: Path) -> None:
    res = run("hmi-tb-resync", tmp_path)
    assert res.verdict == "violation" and res.invariant == "tb-host-reads-tod"
    assert "hmi-subcore-sync" not in res.config["patches"]
    assert "reads TB = TOD-0x1000000" in (res.message or "")  # tb_offset behind
    ops = steps(Path(res.trace))  # type: ignore[arg-type]
    # Root cause A: OPAL recovers the TB from the HMI vector while the thread is
    # still in the guest (guest_run is on its stack), then the exit subtracts.
    recover = next(i for i, (a, st, o) in enumerate(ops) if a == "cpu0" and "TB recovered" in o)
    assert "guest_run" in ops[recover][1] and "hmi_exception_early" in ops[recover][1]
    subtract = next(i for i, (a, _st, o) in enumerate(ops) if a == "cpu0" and o == "store core[0].tb[0] = -16777216")
    assert recover < subtract
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["hmi-tb-resync@split2", "hmi-tb-resync@split4"])
def test_split_core_found_without_the_fix(tmp_path: Path, name: str) -> None:
    res = run(name, tmp_path)
    assert res.verdict == "violation" and res.invariant == "tb-host-reads-tod"
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "preemptions"),
    [("hmi-tb-resync@fixed", None), ("hmi-tb-resync@no-offset", None), ("hmi-tb-resync@split2-fixed", None), ("hmi-tb-resync@split4-fixed", 1), ("hmi-tb-resync@two-guests-fixed", None)],
)
def test_holds_with_the_fix(tmp_path: Path, name: str, preemptions: int | None) -> None:
    res = run(name, tmp_path)
    assert res.verdict == "holds" and res.coverage == "complete"
    assert res.strategy["phases"][-1]["max_preemptions"] == preemptions


def test_root_cause_b_a_host_thread_reloads_a_running_guests_tb(tmp_path: Path) -> None:
    """Guest-side symptom: after the corrupted exit the next entry gives the guest TOD, not TOD + offset."""
    doc = get_scenario("hmi-tb-resync@split2").make({}).config
    doc["workload"]["rounds"] = 2
    res = run("hmi-tb-resync@split2", tmp_path, doc, select=["tb-guest-reads-offset"])
    assert res.verdict == "violation" and res.invariant == "tb-guest-reads-offset"
    assert "reads TB = TOD, expected TOD+0x1000000" in (res.message or "")
    fixed = get_scenario("hmi-tb-resync@split2-fixed").make({}).config
    fixed["workload"]["rounds"] = 2
    assert run("hmi-tb-resync@split2-fixed", tmp_path, fixed, select=["tb-guest-reads-offset"]).verdict == "holds"


def test_two_guests_gap_without_the_firmware_rendezvous(tmp_path: Path) -> None:
    """Not a kernel bug: with OPAL that does not gather the core's threads for a
    TB error (before skiboot 5.0) the protocol leaves a window; skiboot 5.x and
    6.0 close it (@two-guests-fixed, @two-guests-fixed-skiboot6 hold)."""
    res = run("hmi-tb-resync@two-guests-fixed-no-rendezvous", tmp_path)
    assert res.verdict == "violation" and res.invariant == "tb-host-reads-tod"
    assert "reads TB = TOD+0x" in (res.message or "")  # a guest's offset left in host time (0x1000000 or 0x2000000)
    ops = steps(Path(res.trace))  # type: ignore[arg-type]
    # The leader resyncs; the other primary then applies its offset, takes its HMI,
    # finds bit 63 still set (not the leader) and never resyncs.  (Which primary
    # leads depends on the search order: either story is the same gap.)
    resync = next(i for i, (_a, _s, o) in enumerate(ops) if "TB resync" in o)
    leader = ops[resync][0]
    other = "cpu4" if leader == "cpu0" else "cpu0"
    late = next(i for i, (a, _s, o) in enumerate(ops) if a == other and o.startswith("test_and_set_bit(63)"))
    assert resync < late and not ops[late][2].endswith("-> 0")
    # Its timing window: the leader must stall about a microsecond between its
    # resync and the bit-63 clear (code the model charges nothing).
    stalls = [n for n in res.window["needs"] if n["kind"] == "stall"]
    assert any(n["actor"] == leader and n["ns"] >= 1_000 and "opal_resync_timebase" in n["first"] and "clear_bit(63)" in n["last"] for n in stalls)
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


def test_opal_tb_scope_per_subcore(tmp_path: Path) -> None:
    """The reload scope is a parameter: per subcore, root cause A stays; the residual goes."""
    doc = get_scenario("hmi-tb-resync@split2").make({}).config
    doc["machine"]["opal_tb_scope"] = "subcore"
    assert run("hmi-tb-resync@split2", tmp_path, doc).invariant == "tb-host-reads-tod"
    doc = get_scenario("hmi-tb-resync@two-guests-fixed-no-rendezvous").make({}).config
    doc["machine"]["opal_tb_scope"] = "subcore"
    assert run("hmi-tb-resync@two-guests-fixed-no-rendezvous", tmp_path, doc).verdict == "holds"


def test_timebase_helpers() -> None:
    from vcoresim.machine.timebase import round_tb_offset, tb_value, tbu40, tod_ticks

    assert round_tb_offset(1) == 1 << 24 and round_tb_offset(1 << 24) == 1 << 24 and round_tb_offset(0) == 0
    assert tod_ticks(1000) == 512 and tb_value(-512, 1000) == 0
    assert tbu40(0x12_345678, 0xAB_000000) == 0xAB_345678


def test_timebase_model_rejects_what_it_does_not_model(tmp_path: Path) -> None:
    from vcoresim.scenarios.registry import ScenarioError

    f = tmp_path / "p9.toml"
    f.write_text('name = "p9"\nmodel = "timebase"\n[machine]\ncpu = "POWER9"\n')
    with pytest.raises(ScenarioError, match=r"^p9: machine.cpu: the timebase model is POWER8"):
        get_scenario(str(f)).make({})
    f.write_text('name = "three"\nmodel = "timebase"\n[machine]\ncpu = "POWER8"\nsplit_core = 2\n[[vm]]\n[[vm]]\nname = "b"\n[[vm]]\nname = "c"\n')
    with pytest.raises(ScenarioError, match=r"^three: vm: one VM per subcore: 3 VMs on 2 subcore"):
        get_scenario(str(f)).make({})
