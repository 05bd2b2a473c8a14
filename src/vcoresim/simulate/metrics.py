"""Metrics of a timed run, computed from its event log alone.

Event vocabulary.  The model emits these with
``Note(text, event=NAME, data={...})``; ``vm`` is optional everywhere (a vCPU
is identified by ``(vm, vcpu)``) and extra keys are ignored:

=================  =========================================  ==================================
event              data                                       meaning
=================  =========================================  ==================================
``guest_enter``    ``vcpu``, ``vm``, ``thread``?, ``core``?   the vCPU starts running guest code
                                                              (on ``thread``, default: the actor
                                                              that emits it; ``core`` groups
                                                              threads for per-core figures)
``guest_exit``     ``vcpu``, ``vm``, ``reason``?              the vCPU stops running guest code
``vcpu_runnable``  ``vcpu``, ``vm``                           the vCPU wants to run (its task was
                                                              woken / entered KVM_RUN)
``signal``         ``vcpu``, ``vm``                           a signal is pending for its task
``ipi_sent``       ``target``, ``stray`` (bool)               one per IPI the model sends, right
                                                              before the ``SendIPI``; ``stray`` for
                                                              an IPI nobody asked for (a fault)
``work``           ``vcpu``, ``vm``, ``units``? (default 1)   guest work completed (throughput)
``entry_abort``    ``vcpu``                                   the runner backed out of a guest
                                                              entry (ends ``signal_to_exit``)
``kvm_run_return`` ``vcpu``                                   ``KVM_RUN`` returned to QEMU (ends
                                                              ``signal_to_exit``)
``tb_error``       (any)                                      a timebase error: an HMI follows
``tb_read``        ``subcore``, ``who``, ``tb_minus_tod``,    software read the timebase
                   ``expected``, ``valid``                    (``who``: host / guest)
=================  =========================================  ==================================

The driver logs, without help from the model: ``nap`` and ``wake`` (data:
``reason``) for a hardware thread, ``irq`` (``kind``), ``ipi`` (``target``,
``loc``; one per ``SendIPI`` op), ``timeout`` (``what``).  So the model need
not (and should not) emit ``nap``/``wake`` notes.

A latency pair also counts what ended its samples (``ends``: the end event,
as ``guest_exit:REASON`` when the event carries a ``reason``), so a signal
that waited for the guest's timeslice shows as ``guest_exit:hdec``.
Timebase error (``timebase``, per subcore and reader): ``|tb_minus_tod −
expected|`` of every valid ``tb_read``, its maximum, and after how many of
the ``tb_error`` events (each opens a window that lasts until the next) at
least one read was wrong; reads before the first error are window 0.

Definitions.  Guest time of a vCPU: the sum of its ``guest_enter`` →
``guest_exit`` intervals, an interval still open at the end closed there.
Napping time of a thread: ``nap`` → ``wake``, likewise.  A latency pair
``start → end`` matches every ``start`` with the first later ``end`` having
the same key (the vCPU, or IPI target = the woken thread); starts never
matched are reported as ``open``.  Percentiles are nearest-rank on
integer nanoseconds, so figures are exact and reproducible.
"""

from __future__ import annotations

import csv
import io
import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from vcoresim.simulate.timed import Event, SimResult


@dataclass(frozen=True)
class LatencyPair:
    """``start`` → first later ``end`` with the same key.  A key names a data field,
    ``vcpu`` (meaning ``(vm, vcpu)``), or ``actor`` (the emitting actor)."""

    name: str
    start: str
    end: str | tuple[str, ...]  # the first later event of any of these ends it
    start_key: str = "vcpu"
    end_key: str = "vcpu"


DEFAULT_PAIRS: tuple[LatencyPair, ...] = (
    LatencyPair("wake_to_entry", "vcpu_runnable", "guest_enter"),
    # A signal ends at the vCPU's next guest exit, or, if it never re-enters the guest, at an
    # aborted entry or the KVM_RUN return that hands the signal to QEMU.
    LatencyPair("signal_to_exit", "signal", ("guest_exit", "entry_abort", "kvm_run_return")),
    LatencyPair("exit_to_entry", "guest_exit", "guest_enter"),
    # An IPI to a running thread ends at its interrupt, not at some later wake-up.
    LatencyPair("ipi_to_wake", "ipi", ("wake", "irq"), "target", "actor"),
)


def _key(e: Event, key: str) -> Any:
    if key == "actor":
        return e.actor
    if key == "vcpu":
        return (e.data.get("vm"), e.data.get("vcpu"))
    return e.data.get(key)


def vcpu_name(vm: Any, vcpu: Any) -> str:
    return f"{vm}/{vcpu}" if vm is not None else str(vcpu)


def percentile(sorted_values: Sequence[int], p: float) -> int:
    """Nearest-rank percentile of an ascending list (``p`` in 0..100)."""
    n = len(sorted_values)
    return sorted_values[max(0, math.ceil(p / 100 * n) - 1)]


@dataclass
class Distribution:
    count: int = 0
    open: int = 0
    p50: int | None = None
    p99: int | None = None
    max: int | None = None
    mean: int | None = None

    @classmethod
    def of(cls, values: list[int], open_: int) -> Distribution:
        if not values:
            return cls(0, open_)
        v = sorted(values)
        return cls(len(v), open_, percentile(v, 50), percentile(v, 99), v[-1], sum(v) // len(v))


@dataclass
class Metrics:
    program: str
    seed: int
    end_ns: int
    outcome: str
    vcpus: dict[str, dict[str, int]] = field(default_factory=dict)
    threads: dict[str, dict[str, int]] = field(default_factory=dict)
    cores: dict[str, dict[str, int]] = field(default_factory=dict)
    ipis: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, Distribution] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=dict)
    events: dict[str, int] = field(default_factory=dict)
    violation: dict[str, Any] | None = None
    #: Per pair: what ended its samples (end event, ``event:reason`` when it has one) -> count.
    ends: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Timebase error per ``subcore S host|guest`` (present when the run logged ``tb_read``).
    timebase: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Every latency sample (ns) per pair, in event order: for plots, not serialised.
    samples: dict[str, list[int]] = field(default_factory=dict, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "program": self.program,
            "seed": self.seed,
            "end_ns": self.end_ns,
            "outcome": self.outcome,
            "violation": self.violation,
            "totals": self.totals,
            "vcpus": self.vcpus,
            "threads": self.threads,
            "cores": self.cores,
            "ipis": self.ipis,
            "latencies": {k: vars(v) for k, v in self.latencies.items()},
            "ends": self.ends,
            "timebase": self.timebase,
            "events": self.events,
        }

    def rows(self) -> list[tuple[str, str, str, Any]]:
        """Long-format rows (section, name, metric, value): the CSV layout."""
        out: list[tuple[str, str, str, Any]] = [("run", "", k, v) for k, v in (("program", self.program), ("seed", self.seed), ("end_ns", self.end_ns), ("outcome", self.outcome))]
        out += [("totals", "", k, v) for k, v in self.totals.items()]
        for section in ("vcpus", "threads", "cores"):
            for name, d in getattr(self, section).items():
                out += [(section, name, k, v) for k, v in d.items()]
        out += [("ipis", "", k, v) for k, v in self.ipis.items()]
        for name, dist in self.latencies.items():
            out += [("latency", name, k, v) for k, v in vars(dist).items()]
        for name, ends in self.ends.items():
            out += [("latency_ends", name, k, v) for k, v in ends.items()]
        for name, d in self.timebase.items():
            out += [("timebase", name, k, v) for k, v in d.items()]
        out += [("events", name, "count", n) for name, n in self.events.items()]
        return out


class MetricsStream:
    """The metrics of a timed run, computed event by event (in time order), so a
    long run need not keep its event log: memory grows with the number of
    vCPUs, threads and pending latency starts, plus 8 bytes per latency sample
    (kept, so percentiles stay exact).  ``feed`` every event in time order, then
    ``finish`` with the run's result.  :func:`compute` does both from a log."""

    def __init__(self, pairs: Sequence[LatencyPair] = DEFAULT_PAIRS) -> None:
        self.pairs = tuple(pairs)
        self.vcpus: dict[tuple[Any, Any], dict[str, int]] = {}
        self.guest_open: dict[tuple[Any, Any], tuple[int, str, Any]] = {}
        self.thread_guest: dict[str, int] = {}
        self.core_guest: dict[str, int] = {}
        self.core_threads: dict[str, dict[str, None]] = {}
        self.nap_open: dict[str, int] = {}
        self.nap_ns: dict[str, int] = {}
        self.naps: dict[str, int] = {}
        self.ipis = {"intended": 0, "stray": 0, "sent_ops": 0}
        self.ends = {p.name: (p.end,) if isinstance(p.end, str) else p.end for p in self.pairs}
        self.events: dict[str, int] = {}
        self.pending: dict[str, dict[Any, list[int]]] = {p.name: {} for p in self.pairs}
        self.samples: dict[str, array[int]] = {p.name: array("q") for p in self.pairs}
        self.ended: dict[str, dict[str, int]] = {p.name: {} for p in self.pairs}
        self.tb_errors = 0
        self.tb: dict[str, dict[str, Any]] = {}

    def _vc(self, key: tuple[Any, Any]) -> dict[str, int]:
        d = self.vcpus.get(key)
        if d is None:
            d = self.vcpus[key] = {"guest_ns": 0, "entries": 0, "exits": 0, "work": 0}
        return d

    def _close_guest(self, key: tuple[Any, Any], t: int, end: int | None) -> None:
        t0, thread, core = self.guest_open.pop(key)
        span = max(0, (t if end is None else min(t, end)) - t0)
        self._vc(key)["guest_ns"] += span
        self.thread_guest[thread] = self.thread_guest.get(thread, 0) + span
        if core is not None:
            self.core_guest[str(core)] = self.core_guest.get(str(core), 0) + span

    def feed(self, e: Event, end: int | None = None) -> None:
        """One event, in time order; ``end``: the run's end if known (later events are clipped to it)."""
        name = e.event
        self.events[name] = self.events.get(name, 0) + 1
        t = e.t if end is None else min(e.t, end)
        d = e.data
        if name == "guest_enter":
            key = (d.get("vm"), d.get("vcpu"))
            self._vc(key)["entries"] += 1
            if key not in self.guest_open:  # a second enter while inside is a model slip; keep the first
                thread = str(d.get("thread", e.actor))
                core = d.get("core")
                self.guest_open[key] = (t, thread, core)
                if core is not None:
                    self.core_threads.setdefault(str(core), {})[thread] = None
        elif name == "guest_exit":
            key = (d.get("vm"), d.get("vcpu"))
            self._vc(key)["exits"] += 1
            if key in self.guest_open:
                self._close_guest(key, t, end)
        elif name == "work":
            self._vc((d.get("vm"), d.get("vcpu")))["work"] += int(d.get("units", 1))
        elif name == "nap":
            self.nap_open.setdefault(e.actor, t)
            self.naps[e.actor] = self.naps.get(e.actor, 0) + 1
        elif name == "wake":
            t0 = self.nap_open.pop(e.actor, None)
            if t0 is not None:
                self.nap_ns[e.actor] = self.nap_ns.get(e.actor, 0) + t - t0
        elif name == "ipi_sent" and d.get("stray"):
            self.ipis["stray"] += 1
        elif name == "ipi":
            self.ipis["sent_ops"] += 1
        elif name == "tb_error":
            self.tb_errors += 1
        elif name == "tb_read":
            row = self.tb.setdefault(f"subcore {d.get('subcore')} {d.get('who')}", {"reads": 0, "max_err_ticks": 0, "windows": set()})
            if d.get("valid", True):
                err = abs(int(d["tb_minus_tod"]) - int(d.get("expected", 0)))
                row["reads"] += 1
                row["max_err_ticks"] = max(row["max_err_ticks"], err)
                if err:
                    row["windows"].add(self.tb_errors)
        for p in self.pairs:
            if name in self.ends[p.name]:
                waiting = self.pending[p.name].pop(_key(e, p.end_key), None)
                if waiting:
                    self.samples[p.name].extend(e.t - s for s in waiting)
                    how = f"{name}:{d['reason']}" if "reason" in d else name
                    self.ended[p.name][how] = self.ended[p.name].get(how, 0) + len(waiting)
            if name == p.start:
                self.pending[p.name].setdefault(_key(e, p.start_key), []).append(e.t)

    def finish(self, result: SimResult) -> Metrics:
        end = result.end_ns
        m = Metrics(result.program, result.seed, end, result.outcome, violation=result.violation)
        for key in sorted(self.guest_open, key=repr):
            self._close_guest(key, end, end)
        for actor, t0 in self.nap_open.items():
            self.nap_ns[actor] = self.nap_ns.get(actor, 0) + max(0, end - t0)
        self.nap_open = {}
        vcpus = self.vcpus

        def ratio(x: int, y: int) -> float:
            return round(x / y, 4) if y else 0.0

        for key in sorted(vcpus, key=lambda k: (str(k[0]), str(k[1]))):
            d = vcpus[key]
            m.vcpus[vcpu_name(*key)] = {**d, "guest_share": ratio(d["guest_ns"], end)}  # type: ignore[dict-item]
        for actor in result.actors:
            g = self.thread_guest.get(actor, 0)
            m.threads[actor] = {
                "busy_ns": result.busy_ns.get(actor, 0),
                "wait_ns": result.wait_ns.get(actor, 0),
                "nap_ns": self.nap_ns.get(actor, 0),
                "naps": self.naps.get(actor, 0),
                "guest_ns": g,
                "guest_util": ratio(g, end),  # type: ignore[dict-item]
            }
        for core in sorted(self.core_guest):
            n = len(self.core_threads.get(core, {}))
            m.cores[core] = {"threads": n, "guest_ns": self.core_guest[core], "guest_util": ratio(self.core_guest[core], end * max(n, 1))}  # type: ignore[dict-item]
        ipis = dict(self.ipis)
        ipis["intended"] = max(0, ipis["sent_ops"] - ipis["stray"])  # every IPI the model sends is KVM's or the host's, but faults
        m.ipis = ipis
        for p in self.pairs:
            m.latencies[p.name] = Distribution.of(list(self.samples[p.name]), sum(len(v) for v in self.pending[p.name].values()))
        total_guest = sum(d["guest_ns"] for d in vcpus.values())
        total_work = sum(d["work"] for d in vcpus.values())
        m.totals = {
            "guest_ns": total_guest,
            "entries": sum(d["entries"] for d in vcpus.values()),
            "exits": sum(d["exits"] for d in vcpus.values()),
            # Throughput: guest CPU time delivered per unit of simulated time (vCPUs' worth).
            "guest_cpus": ratio(total_guest, end),
            "work": total_work,
            "work_per_s": round(total_work * 1e9 / end, 3) if end else 0.0,
        }
        m.events = dict(sorted(self.events.items()))
        m.samples = {k: list(v) for k, v in self.samples.items()}
        m.ends = {k: dict(sorted(v.items())) for k, v in self.ended.items() if v}
        for key in sorted(self.tb):
            row = dict(self.tb[key])
            w = row.pop("windows")
            m.timebase[key] = {**row, "tb_errors": self.tb_errors, "wrong_after_errors": len(w - {0}), "wrong_before_any": int(0 in w)}
        return m


def compute(result: SimResult, pairs: Sequence[LatencyPair] = DEFAULT_PAIRS) -> Metrics:
    """The metrics of a run from its event log (``result.events``, in time order)."""
    stream = MetricsStream(pairs)
    end = result.end_ns
    for e in result.events:
        stream.feed(e, end)
    return stream.finish(result)


def run(
    program: Any,
    *,
    duration_ns: int,
    seed: int = 0,
    timing: Any = None,
    keep_events: bool = False,
    record_states: bool = False,
    stop: Any = None,
    progress: Any = None,
) -> tuple[SimResult, Metrics]:
    """A timed run and its metrics, computed as the run goes: the event log is kept
    only with ``keep_events`` (Perfetto timelines and plots need it), so a long run
    holds no more than its metrics.  ``stop`` (Ctrl-C) ends the run early
    (outcome ``interrupted``), with the metrics of the time covered.
    ``progress(now_ns, steps)``: called every 16,384 steps."""
    from vcoresim.simulate.timed import TimedDriver

    if duration_ns <= 0:
        raise ValueError("duration: must be positive")
    stream = MetricsStream()
    driver = TimedDriver(program, seed=seed, timing=timing, record_states=record_states, sink=stream.feed, keep_events=keep_events)
    result = driver.run(duration_ns, stop=stop, progress=progress)
    return result, stream.finish(result)


# ----------------------------------------------------------------- output
def _ns(v: int | None) -> str:
    if v is None:
        return "-"
    if v >= 1_000_000:
        return f"{v / 1e6:.3f} ms"
    if v >= 1_000:
        return f"{v / 1e3:.3f} µs"
    return f"{v} ns"


def render(m: Metrics, console: Console) -> None:
    colour = {"violation": "red", "deadlock": "red"}.get(m.outcome, "green")
    console.print(f"[bold]{m.program}[/] seed {m.seed}: simulated {_ns(m.end_ns)}, outcome [{colour}]{m.outcome}[/]")
    if m.violation:
        console.print(f"  [red]{m.violation.get('invariant')}: {m.violation.get('message')}[/]", markup=True)
    tot = m.totals
    console.print(
        f"  guest time {_ns(tot['guest_ns'])} ({tot['guest_cpus']} vCPUs' worth), {tot['entries']} entries, {tot['exits']} exits"
        + (f", {tot['work']} work units ({tot['work_per_s']}/s)" if tot["work"] else ""),
        markup=False,
    )
    if m.vcpus:
        t = Table(title="vCPUs", title_justify="left")
        for col in ("vcpu", "guest time", "share", "entries", "exits", "work"):
            t.add_column(col, justify="left" if col == "vcpu" else "right")
        for name, d in m.vcpus.items():
            t.add_row(name, _ns(d["guest_ns"]), f"{d['guest_share']:.1%}", str(d["entries"]), str(d["exits"]), str(d["work"]))
        console.print(t)
    t = Table(title="Threads and actors", title_justify="left")
    for col in ("actor", "busy", "waiting", "napping", "naps", "guest", "guest util"):
        t.add_column(col, justify="left" if col == "actor" else "right")
    for name, d in m.threads.items():
        t.add_row(name, _ns(d["busy_ns"]), _ns(d["wait_ns"]), _ns(d["nap_ns"]), str(d["naps"]), _ns(d["guest_ns"]), f"{d['guest_util']:.1%}")
    console.print(t)
    if m.cores:
        t = Table(title="Cores", title_justify="left")
        for col in ("core", "threads", "guest", "guest util"):
            t.add_column(col, justify="left" if col == "core" else "right")
        for name, d in m.cores.items():
            t.add_row(name, str(d["threads"]), _ns(d["guest_ns"]), f"{d['guest_util']:.1%}")
        console.print(t)
    ip = m.ipis
    console.print(f"IPIs: {ip['sent_ops']} sent: {ip['intended']} intended (KVM, host), {ip['stray']} stray (injected faults)", markup=False)
    t = Table(title="Latencies", title_justify="left")
    for col in ("pair", "count", "open", "p50", "p99", "max"):
        t.add_column(col, justify="left" if col == "pair" else "right")
    for name, dist in m.latencies.items():
        t.add_row(name, str(dist.count), str(dist.open), _ns(dist.p50), _ns(dist.p99), _ns(dist.max))
    console.print(t)
    for name, ends in m.ends.items():
        if len(ends) < 2:  # one way to end: nothing to tell
            continue
        console.print(f"  {name} ended by: " + ", ".join(f"{k} {v}" for k, v in ends.items()), markup=False)
    if m.timebase:
        render_timebase(m, console)


def tb_ticks(v: int) -> str:
    """Ticks and their duration at 512 MHz."""
    return f"{v} ({_ns(v * 1_000_000_000 // 512_000_000)})" if v else "0"


def render_timebase(m: Metrics, console: Console) -> None:
    t = Table(title="Timebase error seen by software reads: |TB − TOD| (host), |TB − (TOD + tb_offset)| (guest)", title_justify="left")
    for col in ("subcore, reader", "reads", "TB errors", "wrong after", "max error (ticks, time)"):
        t.add_column(col, justify="left" if col.startswith("subcore") else "right")
    for name, d in m.timebase.items():
        t.add_row(name, str(d["reads"]), str(d["tb_errors"]), f"{d['wrong_after_errors']} of {d['tb_errors']}", tb_ticks(d["max_err_ticks"]))
    console.print(t)


def render_compare(rows: Sequence[Any], vcpus: int, console: Console) -> None:
    """The smt-guests on/off table (rows from :func:`vcoresim.simulate.compare.smt_guests`)."""
    t = Table(title=f"Throughput of a {vcpus}-vCPU guest, smt-guests on vs off (same workload, seed and duration)", title_justify="left")
    for col in ("kernel", "cores", "guest CPUs", "work/s", "work/s per core", "wake→entry p50", "p99", "exit→entry p99"):
        t.add_column(col, justify="left" if col == "kernel" else "right")
    for r in rows:
        t.add_row(
            f"smt-guests {r.label}", str(r.cores), f"{r.guest_cpus:.3f}", f"{r.work_per_s:,.0f}", f"{r.work_per_core_s:,.0f}",
            _ns(r.wake_to_entry_p50), _ns(r.wake_to_entry_p99), _ns(r.exit_to_entry_p99),
        )
    console.print(t)
    console.print(
        "  guest CPUs: guest time / simulated time; work: completed guest run bursts. 'off, same cores': each vCPU is its own vcore "
        "and they take turns on the primary threads; 'off, one core per vCPU' needs that many cores (see docs/simulate.md).",
        markup=False,
    )


def render_patch_compare(rows: Sequence[Any], console: Console) -> None:
    """Without / with a patch (rows from :func:`vcoresim.simulate.compare.patch_onoff`)."""
    first = rows[0]
    title = f"Without and with {first.patch} (same workload, seed and duration)"
    if any(r.signals or r.signal_open for r in rows):
        t = Table(title=f"{title}: signal to guest exit / aborted entry / KVM_RUN return", title_justify="left")
        for col in ("kernel", "signals", "open", "p50", "p99", "max", "waited for the timeslice (HDEC)"):
            t.add_column(col, justify="left" if col == "kernel" else "right")
        for r in rows:
            n = r.signals
            share = f"{r.signal_by_hdec} ({r.signal_by_hdec / n:.0%})" if n else "-"
            t.add_row(r.label, str(n), str(r.signal_open), _ns(r.signal_p50), _ns(r.signal_p99), _ns(r.signal_max), share)
        console.print(t)
    if any(r.tb for r in rows):
        errors = " / ".join(f"{r.tb_errors}" for r in rows)
        t = Table(title=f"{title}: timebase error seen by software reads after {errors} TB-error HMIs", title_justify="left")
        t.add_column("subcore, reader")
        for r in rows:
            t.add_column(f"{r.label}: max error", justify="right")
            t.add_column("wrong after", justify="right")
        for name in sorted({name for r in rows for name in r.tb}):
            cells = []
            for r in rows:
                got = r.tb.get(name)
                cells += [tb_ticks(got[0]), f"{got[1]} of {r.tb_errors}"] if got else ["-", "-"]
            t.add_row(name, *cells)
        console.print(t)
    bad = [r.label for r in rows if r.outcome in ("violation", "deadlock")]
    if bad:
        console.print(f"  stopped early at an invariant violation or deadlock: {', '.join(bad)}", markup=False)


def write_csv(m: Metrics, path: Path, extra: Sequence[tuple[str, str, str, Any]] = ()) -> None:
    """The long-format rows as CSV, written atomically (``InputError`` naming ``--csv`` if it cannot be)."""
    from vcoresim.files import write_atomic

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(("section", "name", "metric", "value"))
    for row in m.rows():
        w.writerow(row)
    for row in extra:
        w.writerow(row)
    write_atomic(path, buf.getvalue(), "--csv")
