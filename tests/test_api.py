"""The Python API (docs/api.md): cheap to import, scenarios you can change, results as
objects, errors that name the field, and the page's pytest example run as written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import vcoresim
from vcoresim.engine.strategies.base import Bounds

ROOT = Path(__file__).resolve().parent.parent


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_importing_a_model_module_does_not_load_the_tool(tmp_path: Path) -> None:
    p = _python(
        "import sys, vcoresim.engine.ops, vcoresim\n"
        "heavy = [m for m in ('vcoresim.api', 'vcoresim.check', 'vcoresim.scenarios.registry', 'vcoresim.kvm.model', 'rich', 'pydantic') if m in sys.modules]\n"
        "print(heavy)",
        tmp_path,
    )
    assert p.returncode == 0 and p.stdout.strip() == "[]", p.stdout + p.stderr


@pytest.mark.parametrize("first", ["import vcoresim", "import vcoresim.check.driver", "from vcoresim.simulate import compare", "import vcoresim.api"])
def test_check_and_simulate_are_callable_in_any_import_order(tmp_path: Path, first: str) -> None:
    p = _python(
        f"{first}\nimport vcoresim, vcoresim.check.driver\n"
        "r = vcoresim.check('peterson')\n"
        "s = vcoresim.simulate('smt-vcore', duration_us=100)\n"
        "print(r.verdict, s.outcome, callable(vcoresim.check), vcoresim.check.driver.check is not None)",
        tmp_path,
    )
    assert p.returncode == 0 and p.stdout.split() == ["holds", "duration", "True", "True"], p.stdout + p.stderr


def test_public_names() -> None:
    assert set(vcoresim.__all__) >= {"load_scenario", "check", "simulate", "replay", "mutate", "Scenario", "CheckResult", "Trace", "ScenarioError"}
    for name in vcoresim.__all__:
        obj = getattr(vcoresim, name)
        assert getattr(obj, "__doc__", None), f"vcoresim.{name} has no docstring"


def test_check_uses_the_scenarios_bounds_strategy_and_seed_and_writes_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sc = vcoresim.load_scenario("hmi-tb-resync")
    assert (sc.bounds.max_steps, sc.strategy, sc.seed) == (2000, "auto", 0)  # the scenario's [check], not a library default
    r = vcoresim.check(sc)
    assert r.bounds["max_steps"] == 2000 and r.strategy["name"] == "auto" and r.strategy["seed"] == 0
    assert r.verdict == "violation" and r.as_expected and r.trace is None and not (tmp_path / "traces").exists()
    assert isinstance(r.counterexample, vcoresim.Trace) and len(r.counterexample.schedule) == r.violation_step
    r.counterexample.write(tmp_path / "t.json")
    assert json.loads((tmp_path / "t.json").read_text())["violation"]["step"] == r.violation_step
    assert vcoresim.replay(tmp_path / "t.json").reproduced and vcoresim.replay(r.counterexample).reproduced
    written = vcoresim.check(sc, trace_out=tmp_path / "u.json")
    assert written.trace == str(tmp_path / "u.json") and (tmp_path / "u.json").exists()


def test_changing_a_scenario() -> None:
    sc = vcoresim.load_scenario("stray-ipi@fixed")
    assert sc.patches["stray-ipi-guard"] and sc.expected == "holds"
    other = sc.copy()
    sc.set_patch("stray-ipi-guard", False)
    assert not sc.patches["stray-ipi-guard"] and other.patches["stray-ipi-guard"]  # copies are independent
    assert sc.expected is None  # the expectation was about the scenario as written
    r = vcoresim.check(sc, bounds=Bounds(max_steps=4000, max_preemptions=1))
    # (@fixed checks every mechanism, so the interlock's own invariants may fire before the headline one)
    interlock = {"no-host-code-in-guest", "req-honoured", "hwthread-state-truthful", "grab-sound", "siblings-requested-at-switch", "release-after-switch-back", "no-stale-vcpu"}
    assert r.verdict == "violation" and r.invariant in interlock, r.invariant
    assert r.config["patches"] == [p for p, on in sc.patches.items() if on] or set(r.config["patches"]) == {p for p, on in sc.patches.items() if on}
    sc.kernel = "v3.1"
    assert sc.kernel == "v3.1" and not sc.patches["stray-ipi-guard"]
    sc.update(faults={"stray_ipi": 2}, workload={"rounds": 2})
    assert sc.config is not None and sc.config.faults.stray_ipi == 2 and sc.config.workload.rounds == 2
    assert sc.program().model_bounds["faults"] == {"stray_ipi": 2}
    sc.update(check={"strategy": "random", "max_steps": 300, "seed": 5})
    assert (sc.strategy, sc.seed, sc.bounds.max_steps) == ("random", 5, 300)


def test_a_scenario_file_and_its_variant(tmp_path: Path) -> None:
    f = tmp_path / "mine.toml"
    f.write_text(
        'name = "mine"\ninvariants = ["no-host-code-in-guest", "req-honoured"]\n[machine]\ncpu = "POWER7"\n[kernel]\npreset = "v3.1"\n[faults]\nstray_ipi = 1\n[workload]\nrounds = 1\n'
        '[expect]\nverdict = "violation"\ninvariant = "no-host-code-in-guest"\n'
        '[variants.fixed]\nkernel = { preset = "v3.5" }\ninvariants = ["no-host-code-in-guest", "req-honoured"]\nexpect = { verdict = "holds" }\ncheck = { max_preemptions = 0 }\n'
    )
    sc = vcoresim.load_scenario(f)
    assert sc.name == "mine" and sc.expected == "violation" and sc.expected_invariant == "no-host-code-in-guest"
    assert vcoresim.check(sc).as_expected
    fixed = vcoresim.load_scenario(f"{f}@fixed")
    r = vcoresim.check(fixed)
    assert r.verdict == "holds" and r.as_expected and r.bounds["max_preemptions"] == 0


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda sc: sc.update(faults={"stray_ipi": 9}), r"^faults\.stray_ipi: "),
        (lambda sc: sc.update(fault={}), r"^fault: unknown table \(did you mean 'faults'\?\)"),
        (lambda sc: sc.set_patch("stray-ipi-gaurd"), r"^kernel\.patches: unknown patch 'stray-ipi-gaurd' \(did you mean 'stray-ipi-guard'\?\)"),
        (lambda sc: setattr(sc, "kernel", "v9.9"), r"^kernel\.preset: unknown preset 'v9\.9'"),
        (lambda sc: setattr(sc, "strategy", "exhaustiv"), r"^strategy: unknown strategy 'exhaustiv' \(did you mean 'exhaustive'\?\)"),
        (lambda sc: sc.update(vm=[{"vcpus": [0, 0]}]), r"^vm\[0\]\.vcpus: duplicate vCPU id"),
        (lambda sc: sc.update(expect={"verdict": "violation", "invariant": "no-such"}), r"^expect\.invariant: unknown invariant 'no-such'"),
        (lambda sc: vcoresim.check(sc, memory_model="arm"), r"^memory_model: unknown model 'arm'"),
        (lambda sc: vcoresim.check(sc, bounds=Bounds(max_steps=0)), r"^bounds\.max_steps: "),
        (lambda sc: vcoresim.load_scenario("stray-ip"), r"^scenario: unknown scenario 'stray-ip' \(did you mean 'stray-ipi'\?\)"),
        (lambda sc: vcoresim.simulate(sc, duration_us=0), r"^duration_us: "),
        (lambda sc: vcoresim.mutate(sc, kinds=("swap", "drop")), r"^kinds: unknown mutation 'drop'"),
    ],
)
def test_errors_are_exceptions_that_name_the_field_not_a_cli_option(action, message: str) -> None:  # type: ignore[no-untyped-def]
    sc = vcoresim.load_scenario("stray-ipi@fixed")
    with pytest.raises(vcoresim.ScenarioError, match=message) as e:
        action(sc)
    assert "--" not in str(e.value)


def test_example_models_have_no_configuration_to_change() -> None:
    sc = vcoresim.load_scenario("peterson")
    assert sc.config is None
    with pytest.raises(vcoresim.ScenarioError, match="faults: example/peterson is an example model"):
        sc.update(faults={"stray_ipi": 1})
    sc.bounds = Bounds(max_steps=100)
    assert vcoresim.check(sc).verdict == "holds"


def test_simulate_through_violations_or_with_a_trace(tmp_path: Path) -> None:
    stopped = vcoresim.simulate("stray-ipi", duration_us=3000, trace_out=tmp_path / "sim.json")
    assert stopped.outcome == "violation" and stopped.trace == str(tmp_path / "sim.json")
    out = vcoresim.replay(tmp_path / "sim.json")
    assert out.reproduced and "no-host-code-in-guest" in out.summary
    through = vcoresim.simulate("stray-ipi", duration_us=3000, check_invariants=False)
    assert through.outcome == "duration" and through.trace is None
    assert through.metrics.totals["guest_cpus"] > stopped.metrics.totals["guest_cpus"] * 0  # figures for the whole run


def test_the_pytest_example_of_docs_api_md_runs_as_written(tmp_path: Path) -> None:
    page = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", page, re.DOTALL)
    example = next(b for b in blocks if b.startswith("# test_my_kvm_change.py"))
    (tmp_path / "test_my_kvm_change.py").write_text(example)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_my_kvm_change.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-2000:]
    assert "5 passed" in p.stdout
    intro = blocks[0]
    assert "vcoresim.load_scenario" in intro and "vcoresim.check(sc)" in intro


def test_a_timed_runs_trace_replays_in_the_cli_as_text_and_json(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("simulate", "stray-ipi", "--duration-us", "3000", "--trace-out", "sim.json", "--compare-patch", "none")
    assert r.code == 1 and (tmp_path / "sim.json").exists(), r.stderr
    text = cli("replay", "sim.json")
    assert text.code == 0 and "REPRODUCED: no-host-code-in-guest" in text.stdout
    doc = json.loads(cli("replay", "sim.json", "--json").stdout)
    assert doc["reproduced"] and doc["steps"] and doc["state"] is None  # a timed run's states are not re-derived
    assert cli("replay", "sim.json", "--states").code == 2
