"""Timed runs of seeds 004 and 002, without and with their patch (docs/simulate.md).

Every run here simulates at most 20 ms (well under 5 s of wall time each).
"""

from __future__ import annotations

import json

import pytest

from vcoresim.scenarios.registry import get_scenario
from vcoresim.simulate import compare
from vcoresim.simulate.timed import Timing
from conftest import Cli

TIMING = Timing()


def _rows(scenario: str, patch: str, duration_us: int, seed: int = 0) -> list[compare.PatchRow]:
    program = get_scenario(scenario).make({})
    return compare.patch_onoff(program.config, patch, duration_ns=duration_us * 1_000, seed=seed, timing=TIMING, check_invariants=False)


# ------------------------------------------------------------------ seed 004
def test_signal_latency_tick_without_fix_microseconds_with_it() -> None:
    off, on = _rows("signal-entry-race", "entry-irq-hard-disable", 20_000)
    assert (off.on, on.on) == (False, True)
    assert off.outcome == on.outcome == "duration"
    assert off.signals >= 4 and on.signals >= 500
    assert off.signal_p50 is not None and on.signal_p50 is not None and on.signal_max is not None
    # Without the fix most kicks land between the last signal check and the hard-disable:
    # the guest runs until its HDEC (the host's next tick, 4 ms); with it, the kick's IPI
    # exits the guest as soon as it is entered.
    assert off.signal_p50 >= 10 * on.signal_p50
    assert off.signal_p50 > 1_000_000  # milliseconds
    assert on.signal_max < 10_000  # microseconds
    assert off.signal_by_hdec > off.signals // 2
    assert on.signal_by_hdec == 0


def test_signal_latency_reproducible_and_seeded() -> None:
    a = _rows("signal-entry-race", "entry-irq-hard-disable", 5_000, seed=3)
    b = _rows("signal-entry-race", "entry-irq-hard-disable", 5_000, seed=3)
    c = _rows("signal-entry-race", "entry-irq-hard-disable", 5_000, seed=4)
    assert a == b
    assert [r.as_dict() for r in a] != [r.as_dict() for r in c]


def test_cli_signal_entry_race_compares_and_is_byte_identical(cli: Cli) -> None:
    args = ("simulate", "signal-entry-race", "--duration-us", "10000", "--seed", "1")
    r1, r2 = cli(*args), cli(*args)
    assert r1.code == 0, r1.stderr
    assert r1.stdout == r2.stdout
    assert "invariants not checked" in r1.stdout
    assert "entry-irq-hard-disable off" in r1.stdout and "entry-irq-hard-disable on" in r1.stdout
    j = cli(*args, "--json")
    doc = json.loads(j.stdout)
    off, on = doc["compare_patch"]["rows"]
    assert doc["compare_patch"]["patch"] == "entry-irq-hard-disable" and doc["invariants_checked"] is False
    assert off["signal_p50"] >= 10 * on["signal_p50"]
    assert doc["metrics"]["latencies"]["signal_to_exit"]["p50"] == off["signal_p50"]  # the main run is the scenario's kernel (no fix)


# ------------------------------------------------------------------ seed 002
@pytest.mark.parametrize("scenario", ["hmi-tb-resync", "hmi-tb-resync@split2", "hmi-tb-resync@split4"])
def test_timebase_error_without_fix_none_with_it(scenario: str) -> None:
    off, on = _rows(scenario, "hmi-subcore-sync", 20_000)
    assert off.tb_errors == on.tb_errors >= 3
    offsets = {f"subcore {s} {who}": vm["tb_offset"] for s, vm in enumerate(get_scenario(scenario).make({}).config["vm"]) for who in ("host", "guest")}
    # Without the fix each guest's subcore reads its offset as the error, after every HMI
    # (reference hmi-timebase.md §3: host TB left tb_offset behind the TOD, or the guest reads host time).
    for name, offset in offsets.items():
        assert off.tb[name] == (offset, off.tb_errors), name
    # Subcores without a guest keep the TOD; with the fix nobody reads a wrong timebase.
    assert all(err == 0 for name, (err, _) in off.tb.items() if name not in offsets)
    assert on.tb and all(v == (0, 0) for v in on.tb.values())


def test_cli_hmi_tb_resync_prints_both(cli: Cli) -> None:
    r = cli("simulate", "hmi-tb-resync@split2", "--duration-us", "10000")
    assert r.code == 0, r.stderr
    assert "hmi-subcore-sync off: max error" in r.stdout and "16777216 (32.768 ms)" in r.stdout


@pytest.mark.parametrize(("args", "needle"), [(("--compare-patch", "no-such-patch"), "--compare-patch: unknown patch 'no-such-patch'")])
def test_cli_compare_patch_bad_input(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    r = cli("simulate", "signal-entry-race", "--duration-us", "100", *args)
    assert r.code == 2
    assert len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith("vcoresim: error: ") and needle in r.stderr_lines[0]


def test_compare_patch_none(cli: Cli) -> None:
    r = cli("simulate", "signal-entry-race", "--duration-us", "2000", "--compare-patch", "none")
    assert r.code == 0 and "entry-irq-hard-disable on" not in r.stdout


def test_with_invariants_the_timed_run_stops_at_the_bug() -> None:
    """What ``check_invariants = false`` turns off: the monitors find the bug in a timed run too."""
    from vcoresim.simulate.timed import simulate

    r = simulate(get_scenario("hmi-tb-resync").make({}), duration_ns=20_000_000, seed=0)
    assert r.outcome == "violation" and r.violation is not None and r.violation["invariant"] == "tb-host-reads-tod"
    r = simulate(get_scenario("signal-entry-race").make({}), duration_ns=20_000_000, seed=0)
    assert r.outcome == "violation" and r.violation is not None and r.violation["invariant"] == "signal-exits-guest"
