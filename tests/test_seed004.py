"""Seed 004 (entry-irq-hard-disable): a signal or reschedule request in the guest-entry
window waits a whole timeslice, and a radix exit runs with MSR[RI] clear, before the
fix and not after; the traces tell the story and replay; each entry invariant is
violated by a broken copy of the code."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vcoresim.check.driver import check, replay
from vcoresim.engine.ops import Load, Store, StoreN
from vcoresim.kvm import entry_p9
from vcoresim.kvm.state import hstate, vcpu
from vcoresim.scenarios.registry import get_scenario, program_for


def run(name: str, tmp_path: Path, **kw):  # type: ignore[no-untyped-def]
    sc = get_scenario(name)
    kw.setdefault("strategy", sc.strategy)
    kw.setdefault("bounds", sc.bounds)
    return check(sc.make({}), seed=sc.seed, trace_out=tmp_path / "t.json", **kw)


def trace_ops(path: Path) -> list[tuple[str, str]]:
    doc = json.loads(path.read_text())
    return [(s["actor"], o["op"]) for s in doc["steps"] for o in s["ops"]]


def _index(ops: list[tuple[str, str]], actor: str, text: str) -> int:
    return next(i for i, (a, o) in enumerate(ops) if a == actor and text in o)


@pytest.mark.parametrize(("name", "flag"), [("signal-entry-race", "sigpending"), ("signal-entry-race@resched", "need_resched")])
def test_request_in_entry_window_found_without_the_fix(tmp_path: Path, name: str, flag: str) -> None:
    res = run(name, tmp_path)
    assert res.verdict == "violation" and res.invariant == "signal-exits-guest"
    assert "entry-irq-hard-disable" not in res.config["patches"]
    ops = trace_ops(Path(res.trace))  # type: ignore[arg-type]
    # The story of the seed: the flag is set and its IPI is taken in the host
    # (interrupts still on) before __kvmppc_vcore_entry hard-disables; the guest
    # then runs until the HDEC expires.
    flagged = next(i for i, (_a, o) in enumerate(ops) if f"{flag} = 1" in o)
    taken = _index(ops, "cpu0", "interrupt external")
    handled = _index(ops, "cpu0", "reschedule IPI handled")
    disable = _index(ops, "cpu0", "hard_irq_disable")
    enter = _index(ops, "cpu0", "hrfid: enter guest")
    assert flagged < taken < handled < disable < enter
    assert ops[-1] == ("cpu0", "store core[0].hdec_expired = 1")
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["signal-entry-race@fixed", "signal-entry-race@resched-fixed", "signal-entry-race@radix-nmi-fixed"])
def test_holds_with_the_fix(tmp_path: Path, name: str) -> None:
    res = run(name, tmp_path)
    assert res.verdict == "holds" and res.coverage == "complete"
    assert "entry-irq-hard-disable" in res.config["patches"]
    assert res.strategy["phases"][-1]["max_preemptions"] is None  # no preemption bound


def test_radix_cross_call_holds_with_the_fix(tmp_path: Path) -> None:
    res = run("signal-entry-race@radix-fixed", tmp_path)
    assert res.verdict == "holds" and res.coverage == "complete"


def test_radix_exit_with_ri_clear_found_without_the_fix(tmp_path: Path) -> None:
    res = run("signal-entry-race@radix-nmi", tmp_path)
    assert res.verdict == "violation" and res.invariant == "no-nmi-ri-clear"
    ops = trace_ops(Path(res.trace))  # type: ignore[arg-type]
    # The exit is taken with the MMU on and nothing sets RI before the NMI lands.
    reloc = _index(ops, "cpu0", "relocation-on interrupt")
    nmi = _index(ops, "cpu0", "interrupt nmi")
    assert reloc < nmi and "set RI" not in ops[reloc][1]
    assert replay(Path(res.trace), program_for).reproduced  # type: ignore[arg-type]


def test_fix_without_its_recheck_has_the_race_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The C6′ test is what closes the window: without it the fixed kernel loses the signal."""

    def no_recheck(k, vc):  # type: ignore[no-untyped-def]
        return False
        yield

    monkeypatch.setattr(entry_p9, "recheck_signals", no_recheck)
    res = run("signal-entry-race@fixed", tmp_path, do_shrink=False)
    assert res.verdict == "violation" and res.invariant == "signal-exits-guest"


def test_naive_fix_cross_calls_with_interrupts_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reference §3.4: hard-disabling before kvmppc_start_thread without moving the radix
    TLB-flush preparation out of it makes the cross-call with interrupts off."""

    def prepare_left_in_start_thread(k, v, pcpu):  # type: ignore[no-untyped-def]
        return
        yield

    def naive_start_thread(k, v, cpu):  # type: ignore[no-untyped-def]
        prev = yield Load(vcpu(v, "prev_cpu"))
        if prev is not None and prev // k.threads_per_core != cpu // k.threads_per_core:
            yield from entry_p9.radix_flush_cpu(k, cpu, prev)
        yield Store(vcpu(v, "prev_cpu"), cpu)
        yield StoreN({hstate(cpu, "kvm_vcpu"): v, hstate(cpu, "kvm_vcore"): k.vc})

    monkeypatch.setattr(entry_p9, "kvmppc_prepare_radix_vcpu", prepare_left_in_start_thread)
    monkeypatch.setattr(entry_p9, "kvmppc_start_thread", naive_start_thread)
    res = run("signal-entry-race@radix-fixed", tmp_path, do_shrink=False)
    assert res.verdict == "violation" and res.invariant == "no-xcall-irqs-off"
    assert "hard-disabled" in (res.message or "")


def test_entry_model_rejects_what_it_does_not_model(tmp_path: Path) -> None:
    from vcoresim.scenarios.registry import ScenarioError

    f = tmp_path / "two.toml"
    f.write_text('name = "two"\nmodel = "entry"\n[machine]\ncpu = "POWER9"\n[[vm]]\nvcpus = [0, 1]\n')
    with pytest.raises(ScenarioError, match=r"^two: vm: the entry model runs one VM with one vCPU"):
        get_scenario(str(f)).make({})
    f.write_text('name = "inv"\nmodel = "entry"\ninvariants = ["req-honoured"]\n[machine]\ncpu = "POWER9"\n')
    with pytest.raises(ScenarioError, match=r"^inv: invariants: 'req-honoured' does not apply to the entry model"):
        get_scenario(str(f)).make({})
