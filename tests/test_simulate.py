"""The timed driver and its metrics, on small models written here."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from vcoresim.engine.msr import MSR_EE, MSR_IR
from vcoresim.engine.ops import TIMEOUT, Choose, Delay, Load, Nap, Note, SendIPI, Store, WaitUntil
from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Body, HwThread, Program, World
from vcoresim.simulate.metrics import compute, write_csv
from vcoresim.simulate.timed import SimContext, SimResult, Timing, simulate
from conftest import Cli

NO_IPI = 0xFF
#: Round figures so expected times can be written down by hand.
T = Timing(ipi_send_ns=0, ipi_latency_ns=1_000, nap_entry_ns=0, nap_wakeup_ns=5_000, irq_entry_ns=0, guest_entry_ns=0, guest_exit_ns=0)


def _empty() -> Body:
    return
    yield  # pragma: no cover


def xics_thread(mfrr: str, handler: Callable[[str], Body] | None = None, on_wake: Callable[[str], Body] | None = None) -> HwThread:
    """A thread whose only interrupt is an IPI raised by writing ``mfrr``."""
    return HwThread(
        (mfrr,),
        pending=lambda m: "ipi" if m[mfrr] != NO_IPI else None,
        wakeup=lambda m: "ipi" if m[mfrr] != NO_IPI else None,
        vector=handler or (lambda kind: _empty()),
        reset_vector=on_wake or (lambda kind: _empty()),
        stale_frame=_empty,
    )


def events_of(r: SimResult, name: str | None = None) -> list[tuple[int, str, str, dict[str, Any]]]:
    return [tuple(e) for e in r.events if name is None or e.event == name]  # type: ignore[misc]


# ---------------------------------------------------------------- determinism
def _random_model(w: World) -> None:
    w.loc("x", 0)

    def worker(me: int) -> Body:
        for _ in range(20):
            kind = yield Choose(("short", "long", "never"), "kind", weights=(3, 1, 0))
            assert kind != "never"  # weight 0 is never drawn
            yield Delay({"dist": "exp", "mean_ns": 1_000} if kind == "short" else {"dist": "uniform", "lo_ns": 5_000, "hi_ns": 9_000})
            v = yield Load("x")
            yield Store("x", v + 1)
            yield Note("tick", event="work", data={"vcpu": me})

    for i in range(3):
        w.spawn(f"W{i}", worker(i))


def _dump(r: SimResult) -> str:
    return json.dumps(r.as_dict(), sort_keys=False)


def test_same_seed_same_run_byte_for_byte() -> None:
    prog = Program("random", _random_model)
    a = simulate(prog, duration_ns=1_000_000, seed=7)
    b = simulate(prog, duration_ns=1_000_000, seed=7)
    assert _dump(a) == _dump(b)
    assert json.dumps(compute(a).as_dict()) == json.dumps(compute(b).as_dict())
    assert a.counts["choices"] == 60


def test_different_seeds_differ() -> None:
    prog = Program("random", _random_model)
    a = simulate(prog, duration_ns=1_000_000, seed=1)
    b = simulate(prog, duration_ns=1_000_000, seed=2)
    assert [e.t for e in a.events] != [e.t for e in b.events]


def test_durations_are_instant_in_checking_and_resolved_in_time() -> None:
    """The same model: checking runs its delays as no-ops (no step of their own, even
    with interrupts on); the timed driver resolves distributions, parameters and ticks."""
    from vcoresim.engine.msr import MSR_EE
    from vcoresim.engine.timing import NextTick, Param

    def build(w: World) -> None:
        w.loc("x", 0)
        w.loc("mfrr", NO_IPI)

        def a() -> Body:
            yield Delay({"dist": "const", "us": 2}, event="d1")
            yield Delay(Param("entry_path_ns"), event="d2")
            yield Delay(NextTick("host_tick_ns"), event="d3")
            yield Store("x", 1)

        w.spawn("A", a(), hw=xics_thread("mfrr"), msr=MSR_EE)

    ex = Execution(Program("p", build))
    assert ex.actors[0].op.__class__ is Store  # the delays were fused into the priming
    r = simulate(Program("p", build), duration_ns=10_000_000, timing=T)
    t1, t2 = 2_000, 2_000 + T.entry_path_ns
    assert [(e.event, e.t) for e in r.events] == [("d1", t1), ("d2", t2), ("d3", T.host_tick_ns)]


def test_a_timer_writes_its_location_when_it_fires() -> None:
    from vcoresim.engine.ops import SetTimer, WaitUntil
    from vcoresim.engine.timing import Until

    def build(w: World) -> None:
        w.loc("hdec", 0)

        def a() -> Body:
            yield SetTimer("hdec", 7_000)
            yield Delay(Until("hdec"), event="until")
            yield WaitUntil(("hdec",), lambda h: h == 1)
            yield Note("woke", event="woke")
            yield SetTimer("hdec", 1_000)
            yield SetTimer("hdec", None)  # disarmed: never fires

        w.spawn("A", a())

    r = simulate(Program("t", build), duration_ns=1_000_000, timing=T)
    # a timer due at the same time as a step fires first (the hardware, then the threads)
    assert [(e.event, e.t) for e in r.events] == [("timer", 7_000), ("until", 7_000), ("woke", 7_001)]
    assert r.counts["timers"] == 1


def test_sample_specs() -> None:
    sim = SimContext(3, Timing())
    assert sim.sample(250) == 250
    assert sim.sample({"dist": "const", "us": 2}) == 2_000
    assert 100 <= sim.sample({"dist": "uniform", "lo_ns": 100, "hi_us": 0.9}) <= 900
    with pytest.raises(ValueError, match="unknown distribution"):
        sim.sample({"dist": "zipf"})
    with pytest.raises(ValueError, match="unknown parameter"):
        Timing().replace(warp_ns=1)


# ---------------------------------------------------------------------- time
def test_delay_advances_time() -> None:
    def build(w: World) -> None:
        def a() -> Body:
            yield Note("a", event="a")
            yield Delay(5_000)
            yield Note("b", event="b")
            yield Store("x", 1)  # 1 ns
            yield Note("c", event="c")

        w.loc("x", 0)
        w.spawn("A", a())

    r = simulate(Program("delay", build), duration_ns=1_000_000, timing=T)
    assert events_of(r) == [(0, "A", "a", {}), (5_000, "A", "b", {}), (5_001, "A", "c", {})]
    assert (r.outcome, r.end_ns, r.busy_ns["A"]) == ("done", 5_001, 5_001)


def _waiter(write_at: int | None) -> Program:
    def build(w: World) -> None:
        w.loc("flag", 0)

        def waiter() -> Body:
            yield Delay(1_000)
            got = yield WaitUntil(("flag",), lambda f: f == 1, timeout=10_000, what="flag")
            yield Note("after", event="after", data={"timeout": got is TIMEOUT})

        def writer() -> Body:
            assert write_at is not None
            yield Delay(write_at - 1)
            yield Store("flag", 1)  # lands at write_at

        w.spawn("W", waiter())
        if write_at is not None:
            w.spawn("S", writer())

    return Program("wait", build)


def test_timeout_fires_at_deadline() -> None:
    r = simulate(_waiter(None), duration_ns=1_000_000, timing=T)
    # pending from t=1000, timeout 10 µs: gives up at 11000, not before
    assert events_of(r) == [(11_000, "W", "timeout", {"what": "flag"}), (11_000, "W", "after", {"timeout": True})]
    assert r.wait_ns["W"] == 10_000


def test_wait_satisfied_before_deadline_does_not_time_out() -> None:
    r = simulate(_waiter(6_000), duration_ns=1_000_000, timing=T)
    assert events_of(r) == [(6_001, "W", "after", {"timeout": False})]  # the write, then its load (1 ns)
    assert r.counts["timeouts"] == 0


def test_write_after_deadline_is_too_late() -> None:
    r = simulate(_waiter(11_500), duration_ns=1_000_000, timing=T)
    assert events_of(r, "after") == [(11_000, "W", "after", {"timeout": True})]


def test_duration_stops_the_run() -> None:
    r = simulate(_waiter(None), duration_ns=5_000, timing=T)
    assert (r.outcome, r.end_ns, r.events) == ("duration", 5_000, [])


# ------------------------------------------------------------- IPIs and nap
def _nap_model(w: World) -> None:
    w.loc("mfrr", NO_IPI)

    def sender() -> Body:
        yield Delay(10_000)
        yield SendIPI("mfrr", 5, target="T1")

    def wake(kind: str) -> Body:
        yield Store("mfrr", NO_IPI)
        yield Note("back", event="back")

    def idle() -> Body:
        yield Nap()

    w.spawn("T0", sender())
    w.spawn("T1", idle(), hw=xics_thread("mfrr", on_wake=wake))


def test_napping_thread_wakes_after_ipi_latency_plus_wakeup() -> None:
    r = simulate(Program("nap", _nap_model), duration_ns=1_000_000, timing=T)
    assert events_of(r) == [
        (0, "T1", "nap", {"what": "nap"}),
        (10_000, "T0", "ipi", {"target": "T1", "loc": "mfrr"}),
        (16_000, "T1", "wake", {"reason": "ipi"}),  # + 1 µs IPI latency + 5 µs wake-up
        (16_001, "T1", "back", {}),
    ]
    assert r.nap_ns["T1"] == 16_000


class Kick(Exception):
    """Thrown into the interrupted code: the interrupt does not return there."""


def test_ipi_preempts_a_delay_and_the_delay_resumes() -> None:
    """A handler that returns: the delay ends when it would have; one that throws: it ends at the IPI."""

    def build(w: World) -> None:
        w.loc("mfrr", NO_IPI)
        w.loc("mfrr2", NO_IPI)

        def sender() -> Body:
            yield Delay(2_000)
            yield SendIPI("mfrr", 5, target="T1")
            yield SendIPI("mfrr2", 5, target="T2")

        def handler(loc: str) -> Callable[[str], Body]:
            def h(kind: str) -> Body:
                yield Store(loc, NO_IPI)
                yield Note("irq done", event="handled")

            return h

        def guest() -> Body:
            yield Delay(50_000)
            yield Note("end", event="end")

        def guest_kicked() -> Body:
            try:
                yield Delay(50_000)
            except Kick:
                yield Note("kicked", event="kicked")

        w.spawn("T0", sender())
        w.spawn("T1", guest(), hw=xics_thread("mfrr", handler("mfrr")), msr=MSR_EE)
        w.spawn("T2", guest_kicked(), hw=HwThread(("mfrr2",), lambda m: "ipi" if m["mfrr2"] != NO_IPI else None, lambda m: None, lambda k: Kick(), lambda k: _empty(), _empty), msr=MSR_EE)

    r = simulate(Program("preempt", build), duration_ns=1_000_000, timing=T)
    got = [(t, a, e) for t, a, e, _ in events_of(r)]
    assert (3_000, "T1", "irq") in got and (3_001, "T1", "handled") in got
    assert (50_000, "T1", "end") in got
    assert (3_000, "T2", "irq") in got and (3_000, "T2", "kicked") in got


def test_nmi_is_taken_with_ee_off() -> None:
    """A ``HwThread(nmi=True)`` is interrupted whatever MSR[EE] is (its ``pending`` decides), as in checking."""

    def build(w: World) -> None:
        w.loc("nmi", 0)
        w.loc("mfrr", NO_IPI)

        def sender() -> Body:
            yield Delay(2_000)
            yield SendIPI("mfrr", 5, target="T1")  # maskable: stays pending while EE is off
            yield SendIPI("nmi", 1, target="T1")

        def pending(m: dict[str, Any]) -> str | None:
            # EE off: only the NMI counts; the handler runs in real mode (IR off), not re-entered.
            return "nmi" if m["nmi"] and ref[0].msr & MSR_IR else None

        def handler(kind: str) -> Body:
            yield Store("nmi", 0)
            yield Note("nmi handled", event="handled")

        def body() -> Body:
            yield Delay(50_000)

        ref: list[Any] = [None]
        w.spawn("T0", sender())
        ref[0] = w.spawn("T1", body(), hw=HwThread(("nmi", "mfrr"), pending, lambda m: None, handler, lambda k: _empty(), _empty, nmi=True), msr=MSR_IR)

    r = simulate(Program("nmi", build), duration_ns=1_000_000, timing=T)
    got = [(t, a, e, d) for t, a, e, d in events_of(r) if e in ("irq", "handled")]
    assert got == [(3_000, "T1", "irq", {"kind": "nmi"}), (3_001, "T1", "handled", {})]


# ------------------------------------------------------------------ metrics
def _metrics_model(w: World) -> None:
    """vCPU 0 runs twice; vm1/1 enters once and is still in the guest at the end;
    an injector signals vCPU 0 and wakes T2 with an IPI it marks stray."""
    w.loc("mfrr", NO_IPI)

    def vcpu0() -> Body:
        yield Note("runnable", event="vcpu_runnable", data={"vcpu": 0})
        yield Delay(1_000)
        yield Note("enter", event="guest_enter", data={"vcpu": 0, "core": 0})
        yield Delay(5_000)
        yield Note("exit", event="guest_exit", data={"vcpu": 0})
        yield Note("work", event="work", data={"vcpu": 0, "units": 3})
        yield Delay(2_000)
        yield Note("enter", event="guest_enter", data={"vcpu": 0, "core": 0})
        yield Delay(3_000)
        yield Note("exit", event="guest_exit", data={"vcpu": 0})

    def vcpu1() -> Body:
        yield Note("runnable", event="vcpu_runnable", data={"vcpu": 1, "vm": "vm1"})
        yield Delay(3_000)
        yield Note("enter", event="guest_enter", data={"vcpu": 1, "vm": "vm1", "core": 0})
        yield Delay(100_000)

    def injector() -> Body:
        yield Delay(4_000)
        yield Note("signal", event="signal", data={"vcpu": 0})
        yield Note("stray", event="ipi_sent", data={"target": "T2", "stray": True})
        yield SendIPI("mfrr", 5, target="T2")

    def wake(kind: str) -> Body:
        yield Store("mfrr", NO_IPI)
        yield Nap()

    def idle() -> Body:
        yield Nap()

    w.spawn("T0", vcpu0())
    w.spawn("T1", vcpu1())
    w.spawn("T2", idle(), hw=xics_thread("mfrr", on_wake=wake))
    w.spawn("INJ", injector(), role="fault")


def test_metrics_exact() -> None:
    r = simulate(Program("metrics", _metrics_model), duration_ns=20_000, timing=T)
    m = compute(r)
    assert (m.outcome, m.end_ns) == ("duration", 20_000)
    assert m.vcpus == {
        "0": {"guest_ns": 8_000, "entries": 2, "exits": 2, "work": 3, "guest_share": 0.4},
        "vm1/1": {"guest_ns": 17_000, "entries": 1, "exits": 0, "work": 0, "guest_share": 0.85},
    }
    assert m.totals == {"guest_ns": 25_000, "entries": 3, "exits": 2, "guest_cpus": 1.25, "work": 3, "work_per_s": 150_000.0}
    assert m.ipis == {"intended": 0, "stray": 1, "sent_ops": 1}  # intended = SendIPI ops not marked stray
    # T2: napping 0..10000 (IPI at 4000 + 1 µs + 5 µs), wakes, naps again at 10001 until the end
    assert m.threads["T2"] == {"busy_ns": 1, "wait_ns": 0, "nap_ns": 19_999, "naps": 2, "guest_ns": 0, "guest_util": 0.0}
    assert r.nap_ns["T2"] == 19_999  # the driver's own accounting agrees
    assert m.threads["T0"]["busy_ns"] == 11_000 and m.threads["T0"]["guest_ns"] == 8_000
    assert m.threads["T1"]["busy_ns"] == 20_000 and m.threads["T1"]["guest_util"] == 0.85
    assert m.cores == {"0": {"threads": 2, "guest_ns": 25_000, "guest_util": 0.625}}
    lat = {k: vars(v) for k, v in m.latencies.items()}
    assert lat["wake_to_entry"] == {"count": 2, "open": 0, "p50": 1_000, "p99": 3_000, "max": 3_000, "mean": 2_000}
    assert lat["signal_to_exit"] == {"count": 1, "open": 0, "p50": 2_000, "p99": 2_000, "max": 2_000, "mean": 2_000}
    assert lat["exit_to_entry"] == {"count": 1, "open": 1, "p50": 2_000, "p99": 2_000, "max": 2_000, "mean": 2_000}
    assert lat["ipi_to_wake"] == {"count": 1, "open": 0, "p50": 6_000, "p99": 6_000, "max": 6_000, "mean": 6_000}


def test_metrics_csv(tmp_path: Path) -> None:
    m = compute(simulate(Program("metrics", _metrics_model), duration_ns=20_000, timing=T))
    out = tmp_path / "m.csv"
    write_csv(m, out)
    lines = out.read_text().splitlines()
    assert lines[0] == "section,name,metric,value"
    assert "vcpus,vm1/1,guest_ns,17000" in lines and "latency,ipi_to_wake,p99,6000" in lines


# ---------------------------------------------------------------------- CLI


def test_cli_simulate_json_is_reproducible(cli: Cli, tmp_path: Path) -> None:
    a = cli("simulate", "example/peterson", "--json", "--seed", "3", "--csv", "m.csv")
    b = cli("simulate", "example/peterson", "--json", "--seed", "3")
    assert a.code == 0 and a.stdout == b.stdout
    doc = json.loads(a.stdout)
    assert doc["seed"] == 3 and doc["metrics"]["outcome"] == "done"
    assert (tmp_path / "m.csv").read_text().startswith("section,name,metric,value\n")


def test_cli_simulate_deadlock_exits_1(cli: Cli) -> None:
    r = cli("simulate", "lock-order")
    assert r.code == 1 and "deadlock" in r.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("no-such-scenario",), "scenario"),
        (("peterson", "--duration-us", "0"), "--duration-us"),
        (("peterson", "--patch", "smt-guests"), "--patch"),
    ],
)
def test_cli_simulate_bad_input(cli: Cli, args: tuple[str, ...], needle: str) -> None:
    r = cli("simulate", *args)
    assert r.code == 2
    assert len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith("vcoresim: error: ") and needle in r.stderr_lines[0]


# ------------------------------------------------------------- the KVM model
def _kvm(duration_us: int = 2_000, seed: int = 0, **patches: bool) -> Any:
    from vcoresim.scenarios.registry import get_scenario

    program = get_scenario("smt-vcore").make({"patches": patches} if patches else {})
    return simulate(program, duration_ns=duration_us * 1_000, seed=seed)


def test_kvm_guest_runs_for_drawn_durations() -> None:
    r = _kvm()
    m = compute(r)
    assert r.outcome == "duration"
    # Both vCPUs ran guest code for a good share of the time, in many entries (workload draws, not rounds).
    for name in ("0", "1"):
        d = m.vcpus[name]
        assert d["guest_ns"] > 200_000 and d["entries"] > 5 and d["work"] > 0
        assert d["exits"] in (d["entries"], d["entries"] - 1)
    # Guest stretches between exits are the run draws: far longer than any op cost.
    enters = [e.t for e in r.events if e.event == "guest_enter" and e.data["vcpu"] == "0"]
    exits = [e.t for e in r.events if e.event == "guest_exit" and e.data["vcpu"] == "0"]
    spans = [b - a for a, b in zip(enters, exits)]
    assert max(spans) > 20_000 and len(set(spans)) > 3
    assert m.ipis["sent_ops"] > 0 and m.ipis["stray"] == 0
    assert m.latencies["wake_to_entry"].count > 0 and m.latencies["wake_to_entry"].p99 is not None


def test_kvm_seed_changes_the_draws() -> None:
    a, b = compute(_kvm(seed=1)), compute(_kvm(seed=2))
    assert a.totals != b.totals


def test_kvm_timed_run_is_open_ended() -> None:
    """A scenario's program carries its open-ended counterpart, which a timed run executes:
    guest rounds go on past the check's bound, and guests log units of work."""
    from vcoresim.scenarios.registry import get_scenario

    program = get_scenario("smt-vcore").make({})
    assert not program.config["workload"]["open_ended"] and program.timed is not None
    assert program.timed.config["workload"]["open_ended"]
    r = _kvm(duration_us=2_000)
    assert r.config["workload"]["open_ended"]
    entries = [e for e in r.events if e.event == "guest_enter"]
    assert len(entries) > 2 * program.config["workload"]["rounds"]
    assert any(e.event == "work" for e in r.events)


def test_kvm_workload_weights_and_dists(tmp_path: Path, cli: Cli) -> None:
    scen = tmp_path / "w.toml"
    scen.write_text(
        'name = "w"\n[machine]\ncpu = "POWER7"\n[[vm]]\nvcpus = [0, 1]\n'
        '[workload]\nactions = ["exit", "cede"]\nweights = [1, 0]\nrun = {dist = "uniform", lo_us = 10, hi_us = 20}\n'
        'userspace = {dist = "const", us = 5}\n'
    )
    r = cli("simulate", str(scen), "--duration-us", "1000", "--json")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["metrics"]["events"].get("kvm_run_return", 0) > 0
    assert doc["counts"]["choices"] > 0
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "b"\n[workload]\nrun = {dist = "zipf", mean_us = 3}\n')
    r = cli("simulate", str(bad))
    assert r.code == 2 and r.stderr_lines[0].startswith("vcoresim: error: ") and "workload.run" in r.stderr_lines[0]
    bad.write_text('name = "b"\n[workload]\nactions = ["exit"]\nweights = [1, 2]\n')
    r = cli("simulate", str(bad))
    assert r.code == 2 and "workload.weights" in r.stderr_lines[0]


def test_smt_guests_on_off_throughput() -> None:
    """Issue 3 item 8: a 4-vCPU guest, smt-guests on vs off (the model decides the figures)."""
    from vcoresim.scenarios.registry import get_scenario
    from vcoresim.simulate import compare

    config = get_scenario("smt-vcore").make({}).config
    rows = compare.smt_guests(config, vcpus=4, duration_ns=3_000_000, seed=0, timing=Timing())
    by = {r.label: r for r in rows}
    assert [r.cores for r in rows] == [1, 1, 4] and all(r.outcome == "duration" for r in rows)
    # Off, on one core, only one vCPU runs at a time: at most one CPU's worth.
    assert by["off, same cores"].guest_cpus <= 1.0
    # On, the vcore uses several threads of the one core at once.
    assert by["on"].guest_cpus > by["off, same cores"].guest_cpus
    # The old kernel's only way to run 4 vCPUs at once costs 4 cores.
    assert by["off, one core per vCPU"].guest_cpus > by["on"].guest_cpus


def test_cli_simulate_smt_vcore(cli: Cli, tmp_path: Path) -> None:
    args = ("simulate", "smt-vcore", "--duration-us", "2000", "--compare-smt", "4")
    a = cli(*args, "--json", "--csv", "m.csv")
    b = cli(*args, "--json")
    assert a.code == 0 and a.stdout == b.stdout  # deterministic, byte for byte
    doc = json.loads(a.stdout)
    assert set(doc["metrics"]["vcpus"]) == {"0", "1"}
    assert [r["label"] for r in doc["smt_guests"]["rows"]] == ["on", "off, same cores", "off, one core per vCPU"]
    csv_text = (tmp_path / "m.csv").read_text()
    assert "\nsmt_guests,on,guest_cpus," in csv_text and "\nlatency,wake_to_entry,p99," in csv_text
    t = cli("simulate", "smt-vcore", "--duration-us", "2000")
    assert t.code == 0
    for needle in ("vCPUs", "entries", "IPIs:", "wake_to_entry", "p99", "smt-guests on", "smt-guests off, one core per vCPU"):
        assert needle in t.stdout
