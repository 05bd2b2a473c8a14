"""Bad input and interruptions never cost a result (issue 16): one regression test
per class the issue measured.  Each names the class it covers."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Cli, CliRun, wait_cpu
from vcoresim.check.checkpoint import _digest
from vcoresim.check.driver import check, replay
from vcoresim.engine.strategies.base import Bounds
from vcoresim.examples import example_program
from vcoresim.scenarios.loader import loads
from vcoresim.scenarios.registry import ScenarioError, get_scenario, program_for

ERROR = "vcoresim: error: "


@pytest.fixture
def run(tmp_path: Path) -> Cli:
    """``vcoresim ARGS`` in this process (click's runner), in ``tmp_path``: fast, for
    bad-input cases (the exit codes of real processes are tested with ``cli``)."""
    from click.testing import CliRunner

    from vcoresim.cli import main

    def go(*args: str, cwd: Path | None = None, timeout: float = 120) -> CliRun:
        old = os.getcwd()
        os.chdir(cwd or tmp_path)
        try:
            r = CliRunner().invoke(main, list(args), env={"COLUMNS": "200"})
        finally:
            os.chdir(old)
        return CliRun(r.exit_code, r.stdout, r.stderr)

    return go


def one_line(r: CliRun, *needles: str) -> str:
    """Exit 2, one line ``vcoresim: error: <where>: <what>`` (no traceback), containing ``needles``."""
    assert r.code == 2, (r.code, r.stdout[-500:], r.stderr[-2000:])
    assert "Traceback" not in r.stdout + r.stderr
    lines = r.stderr_lines
    assert len(lines) == 1 and lines[0].startswith(ERROR), lines
    assert len(lines[0]) <= 400 and lines[0].isprintable(), lines[0][:200]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _scenario(tmp_path: Path, body: str, name: str = "s.toml") -> Path:
    p = tmp_path / name
    p.write_text('name = "s"\n' + body)
    return p


# ---------------------------------------------------- tracebacks on malformed files
def test_deeply_nested_scenario_toml(run: Cli, tmp_path: Path) -> None:
    p = _scenario(tmp_path, "x = " + "[" * 3000 + "]" * 3000 + "\n")
    one_line(run("check", str(p)), "s.toml:2", "nested")


def test_deeply_nested_trace_and_checkpoint(run: Cli, tmp_path: Path) -> None:
    p = tmp_path / "t.json"
    p.write_text('{"format": "vcoresim-trace", "version": 1, "x": ' + "[" * 5000 + "]" * 5000 + "}")
    one_line(run("replay", str(p)), "t.json:1", "nested")
    one_line(run("check", "--resume", str(p)), "t.json:1", "nested")


@pytest.mark.parametrize("command", ["replay", "resume"])
def test_non_utf8_trace_and_checkpoint(run: Cli, tmp_path: Path, command: str) -> None:
    p = tmp_path / "t.json"
    p.write_bytes(b'{"format": "vcoresim-trace",\n "x": "\xff\xfe"}')
    args = ["replay", str(p)] if command == "replay" else ["check", "--resume", str(p)]
    one_line(run(*args), "t.json:2", "not UTF-8", "0xff")


def test_litmus_deep_nesting_long_integer_and_unlock_without_lock(run: Cli, tmp_path: Path) -> None:
    head = "C t\n{}\nP0(int *x, spinlock_t *s) {\n"
    cases = {
        "deep": (head + "WRITE_ONCE(*x, 1);\n}\nexists " + "(" * 5000 + "x=1" + ")" * 5000 + "\n", "deep.litmus: nested too deeply"),
        "digits": (head + "WRITE_ONCE(*x, " + "7" * 5000 + ");\n}\nexists (x=1)\n", "digits.litmus:4: an integer of more than 18 digits"),
        "unlock": (head + "spin_unlock(s);\n}\nexists (x=1)\n", "unlock.litmus: P0: spin_unlock of s it does not hold"),
        "data": (head + "spin_lock(s);\nWRITE_ONCE(*s, 0);\nspin_unlock(s);\n}\nexists (x=1)\n", "data.litmus: P0: spin_unlock of s it does not hold"),
    }
    for name, (text, needle) in cases.items():
        f = tmp_path / f"{name}.litmus"
        f.write_text(text)
        one_line(run("litmus", str(f)), needle)


def test_replay_pictures_into_new_or_unwritable_folders(run: Cli, tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    assert check(example_program("lost-update"), trace_out=trace).verdict == "violation"
    r = run("replay", str(trace), "--quiet", "--html", "no/such/dir/x.html", "--perfetto", "no/such/dir/x.json")
    assert r.code == 0 and (tmp_path / "no/such/dir/x.html").exists() and (tmp_path / "no/such/dir/x.json").exists()
    (tmp_path / "afile").write_text("")
    one_line(run("replay", str(trace), "--html", "afile/x.html"), "--html: cannot create folder afile")
    one_line(run("replay", str(trace), "--perfetto", "x" * 5000), "--perfetto: cannot write")


# ------------------------------------------------ scenario values that crashed or misled
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ('[workload]\nrun = {dist = "exp", mean_us = inf}\n', "workload.run.mean_us: Input should be a finite number"),
        ('[workload]\nrun = {dist = "const", ns = inf}\n', "workload.run.ns: Input should be a finite number"),
        ('[workload]\nrun = {dist = "lognormal", median_us = 20, sigma = 1e300}\n', "workload.run.sigma: 1e+300 is not in [0, 4]"),
        ('[workload]\nrun = {dist = "exp", mean_us = 5, bogus = 1}\n', "workload.run.bogus: not a parameter of dist 'exp'"),
        ('[workload]\nactions = ["exit", "cede"]\nweights = [inf, 1.0]\n', "workload.weights[0]: Input should be a finite number"),
        ('[workload]\nactions = ["exit"]\nweights = [nan]\n', "workload.weights[0]: Input should be a finite number"),
        ("[workload]\nactions = []\n", "workload.actions: at least one action"),
        ("vm = []\n", "vm: a scenario needs at least one [[vm]] table"),
        ('[[vm]]\nname = "a"\n[[vm]]\nname = "a"\nvcpus = [1]\n', "vm[1].name: 'a' names two VMs"),
        ("[simulate]\ntiming = {ipi_latency_ns = -5}\n", "simulate.timing.ipi_latency_ns: -5 is not in [0,"),
        ('[simulate]\ncompare_patch = "nope"\n', "simulate.compare_patch: unknown patch 'nope'"),
    ],
)
def test_scenario_values_rejected_naming_the_field(body: str, needle: str) -> None:
    with pytest.raises(ScenarioError) as e:
        loads('name = "s"\n' + body, "s.toml")
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_empty_actions_and_vm_through_check_and_simulate(run: Cli, tmp_path: Path) -> None:
    p = _scenario(tmp_path, "[workload]\nactions = []\n")
    one_line(run("check", str(p)), "workload.actions")
    one_line(run("simulate", str(p)), "workload.actions")
    q = _scenario(tmp_path, "vm = []\n", "v.toml")
    one_line(run("check", str(q)), "vm: ")


def test_two_unnamed_vms_get_distinct_default_names() -> None:
    cfg = loads('name = "s"\n[machine]\ncpu = "POWER8"\n[[vm]]\nvcpus = [0]\n[[vm]]\nvcpus = [1]\n', "s.toml")
    assert [vm.name for vm in cfg.vm] == ["vm0", "vm1"]


def test_negative_timing_cannot_make_a_violation(tmp_path: Path) -> None:
    from vcoresim.simulate.timed import Timing

    with pytest.raises(ValueError, match="timing.host_tick_ns"):
        Timing().replace(host_tick_ns=0)
    with pytest.raises(ValueError, match="timing.ipi_latency_ns"):
        Timing().replace(ipi_latency_ns=-1)


def test_example_models_refuse_kernel_options(run: Cli) -> None:
    one_line(run("check", "example/peterson", "--kernel", "bogus"), "--kernel: example/peterson is a known-answer model")
    one_line(run("check", "example/peterson", "--patch", "nope=on"), "--patch: example/peterson is a known-answer model")


def test_bad_compare_patch_in_a_file_names_the_file_field(run: Cli, tmp_path: Path) -> None:
    p = _scenario(tmp_path, '[simulate]\ncompare_patch = "nope"\n')
    one_line(run("simulate", str(p)), "simulate.compare_patch")


# ---------------------------------------------------------------- checkpoints
@pytest.fixture(scope="module")
def checkpoint_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("cp")
    path = d / "cp.json"
    sc = get_scenario("stray-ipi@fixed")
    r = check(sc.make({}), strategy="auto", bounds=Bounds(sc.bounds.max_steps, 1, 260), checkpoint_out=path)
    assert r.verdict == "incomplete" and r.checkpoint == str(path)
    return json.loads(path.read_text())


def _write_cp(tmp_path: Path, doc: dict[str, Any], *, forge: bool) -> Path:
    if forge:
        doc["digest"] = _digest(doc)
    p = tmp_path / "cp.json"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize(
    ("edit", "forge", "needle"),
    [
        (lambda d: d["bounds"].update(max_steps=5), False, "digest: the file was changed"),
        (lambda d: d["bounds"].update(max_steps=0), True, "bounds.max_steps: Input should be greater than or equal to 1"),
        (lambda d: d["config"]["kernel"].update(preset="v3.1"), True, "config.patches"),
        (lambda d: d["state"]["search"]["nodes"][1].update(enabled=[0, 99]), True, "state.search.nodes[1].enabled"),
        (lambda d: d["state"]["search"]["nodes"][0].update(backtrack=[57]), True, "state.search.nodes[0].backtrack"),
        (lambda d: d["state"]["search"]["schedule"][0].__setitem__(1, 7), True, "state.search.schedule[0]"),
        (lambda d: d["state"].update(phase=9), True, "state.phase: 9 is past the last phase"),
        (lambda d: d["tool"].update(code="0" * 16), True, "tool: written by vcoresim"),
        (lambda d: d["strategy"].update(name="exhaustive"), True, "state.kind"),
        (lambda d: d.update(scenario="stray-ipi"), True, "scenario: 'stray-ipi', but its config builds"),
        (lambda d: d["state"]["total"].update(executions=True), True, "state.total.executions: Input should be a valid integer"),
    ],
)
def test_checkpoint_bound_to_scenario_config_tool_and_model(run: Cli, tmp_path: Path, checkpoint_doc: dict[str, Any], edit: Any, forge: bool, needle: str) -> None:
    doc = json.loads(json.dumps(checkpoint_doc))
    edit(doc)
    one_line(run("check", "--resume", str(_write_cp(tmp_path, doc, forge=forge)), "--max-executions", "3"), needle)


def test_checkpoint_as_written_resumes(run: Cli, tmp_path: Path, checkpoint_doc: dict[str, Any]) -> None:
    p = _write_cp(tmp_path, json.loads(json.dumps(checkpoint_doc)), forge=False)
    r = run("check", "--resume", str(p), "--max-executions", "3", "--json")
    assert r.code == 3 and json.loads(r.stdout)["verdict"] == "incomplete", r.stderr


@pytest.fixture(scope="module")
def parallel_checkpoint_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A checkpoint of the frontier search (``--workers 2``) cut by a budget."""
    path = tmp_path_factory.mktemp("pcp") / "cp.json"
    sc = get_scenario("smt-vcore")
    r = check(sc.make({}), strategy="exhaustive", bounds=Bounds(sc.bounds.max_steps, None, 30), workers=2, checkpoint_out=path)
    assert r.verdict == "incomplete" and r.checkpoint == str(path)
    doc = json.loads(path.read_text())
    assert doc["state"]["search"]["kind"] == "parallel" and doc["state"]["search"]["items"]
    return doc


def _first_with_todo(s: dict[str, Any]) -> dict[str, Any]:
    return next(it for it in s["items"] if it["todo"])


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda s: s["items"][0]["prefix"][0].__setitem__(1, 7), "state.search.items[0].prefix[0]: actor"),
        (lambda s: s["items"][0]["prefix"].extend([[0, 0]] * 5000), "state.search.items[0].prefix: 5"),
        (lambda s: s["items"][0].update(todo=[[99, 0]]), "state.search.items[0].todo[0]: actor 99"),
        (lambda s: s["items"][0].update(prev=57), "state.search.items[0].prev: actor 57"),
        (lambda s: s["items"][0].update(sleep=[[0, 300, [[], []]]]), "state.search.items[0].sleep: branch 300"),
        (lambda s: s["items"][0].update(done=[[99, 0, [[], []]]]), "state.search.items[0].done: actor 99"),
        (lambda s: s["items"][0].update(todo=[[0, True]]), "state.search.items[0].todo[0][1]: Input should be a valid integer"),
        (lambda s: s["visited"].append([1, "xyz"]), "state.search.visited"),
        (lambda s: s.update(probe=2**64), "state.search.probe"),
        (lambda s: s.update(issued=[]), "state.search.issued"),
    ],
)
def test_parallel_checkpoint_checked_against_the_model(run: Cli, tmp_path: Path, parallel_checkpoint_doc: dict[str, Any], edit: Any, needle: str) -> None:
    doc = json.loads(json.dumps(parallel_checkpoint_doc))
    edit(doc["state"]["search"])
    one_line(run("check", "--resume", str(_write_cp(tmp_path, doc, forge=True)), "--max-executions", "3"), needle)


def test_parallel_checkpoint_as_written_resumes_in_one_process_and_on_workers(run: Cli, tmp_path: Path, parallel_checkpoint_doc: dict[str, Any]) -> None:
    p = _write_cp(tmp_path, json.loads(json.dumps(parallel_checkpoint_doc)), forge=False)
    for extra in ((), ("--workers", "2")):
        r = run("check", "--resume", str(p), "--max-executions", "5", "--json", "--checkpoint", str(tmp_path / "next.json"), *extra)
        assert r.code == 3 and json.loads(r.stdout)["verdict"] == "incomplete", r.stderr
        again = json.loads((tmp_path / "next.json").read_text())["state"]["search"]
        assert again["kind"] == "parallel" and again["items"]


# ------------------------------------------------------------ replay cannot lie
@pytest.fixture(scope="module")
def kvm_trace(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("tr")
    path = d / "t.json"
    assert check(get_scenario("stray-ipi").make({}), trace_out=path).verdict == "violation"
    return json.loads(path.read_text())


def _choose_step(doc: dict[str, Any]) -> int:
    """A step whose transition has more than one branch (the guest's choice of action)."""
    prog = program_for(doc["scenario"], doc["config"])
    from vcoresim.engine.runtime import Execution

    ex = Execution(prog)
    names = [a.name for a in ex.actors]
    for i, (actor, alt) in enumerate(doc["schedule"]):
        q = names.index(actor)
        if ex.alternatives(q) > 1:
            return i
        ex.step(q, alt)
    pytest.skip("no choice in this trace")


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda d, i: d["schedule"][0].__setitem__(1, -1), "'schedule[0][1]': Input should be greater than or equal to 0"),
        (lambda d, i: d["schedule"][0].__setitem__(1, True), "'schedule[0][1]': Input should be a valid integer"),
        (lambda d, i: d["schedule"][i].__setitem__(1, 7), "has no branch 7 there"),
        (lambda d, i: d["schedule"].append(list(d["schedule"][-1])), "comes after the violation"),
        (lambda d, i: d.update(version=True), "field 'version'"),
        (lambda d, i: d.update(version=1.0), "field 'version'"),
        (lambda d, i: d["config"]["patches"].append("idle-nap-real-mode"), "'config.patches'"),
        (lambda d, i: d["config"].update(bogus=1), "config: bogus: unknown field"),
    ],
)
def test_replay_rejects_what_does_not_match_the_model(run: Cli, tmp_path: Path, kvm_trace: dict[str, Any], edit: Any, needle: str) -> None:
    doc = json.loads(json.dumps(kvm_trace))
    edit(doc, _choose_step(doc))
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    one_line(run("replay", str(p), "--quiet"), needle)


def test_negative_branch_on_a_step_without_choice_is_an_error(kvm_trace: dict[str, Any], tmp_path: Path) -> None:
    from vcoresim.engine.strategies.base import ReplayDivergence, run_schedule

    prog = program_for(kvm_trace["scenario"], kvm_trace["config"])
    from vcoresim.engine.runtime import Execution

    names = [a.name for a in Execution(prog).actors]
    sched = [(names.index(a), alt) for a, alt in kvm_trace["schedule"]]
    sched[0] = (sched[0][0], -1)  # Python would take -1 as the last branch
    with pytest.raises(ReplayDivergence, match="has no branch -1"):
        run_schedule(prog, sched)


@pytest.mark.parametrize("field", ["step", "invariant"])
def test_reproduced_only_at_the_same_step_and_property(kvm_trace: dict[str, Any], tmp_path: Path, field: str) -> None:
    doc = json.loads(json.dumps(kvm_trace))
    if field == "step":
        doc["violation"]["step"] -= 1
    else:
        doc["violation"]["invariant"] = "req-honoured"
    p = tmp_path / "t.json"
    p.write_text(json.dumps(doc))
    out = replay(p, program_for)
    assert not out.reproduced and out.summary.startswith("NOT REPRODUCED")


# ------------------------------------------- a reachable model inconsistency (issue 18)
def test_p8_idle_lockup_barrier_discovery_walk_is_consistent() -> None:
    """The walk that raised ``ModelError: cpu8: step 462 changed cpu:cpu8:host-virt
    without declaring it`` (fixed by issue 18's merge)."""
    from vcoresim.check.mutation import discover_sites

    assert discover_sites(get_scenario("p8-idle-lockup").make({}), seed=0, executions=100)


# ----------------------------------------------------------------- budgets
def test_max_seconds_covers_shrinking_and_stats_seconds_includes_it(tmp_path: Path) -> None:
    from vcoresim.engine.memory import with_memory_model

    prog = with_memory_model(get_scenario("smt-vcore@late-join").make({}), "tso")
    start = time.perf_counter()
    r = check(prog, strategy="auto", bounds=Bounds(4000, None, None, 1.0), seed=0, trace_dir=tmp_path)
    wall = time.perf_counter() - start
    if r.verdict == "violation":
        assert r.shrink.get("stopped") == "budget" or r.shrink["steps_after"] <= r.shrink["steps_before"]
    # the budget covers the whole check (a trace build and the checks of one
    # candidate may run past it: a generous margin for a loaded machine)
    assert wall < 1.0 + 6.0, wall
    assert abs(r.stats.seconds - wall) < 1.5, (r.stats.seconds, wall)


def test_max_executions_caps_autos_random_phase() -> None:
    sc = get_scenario("stray-ipi@fixed")
    r = check(sc.make({}), strategy="auto", bounds=Bounds(sc.bounds.max_steps, 1, 50), seed=0)
    assert r.verdict == "incomplete" and r.stats.executions == 50


def test_resume_of_a_cut_random_phase_gives_the_uninterrupted_statistics() -> None:
    from vcoresim.check.driver import explore

    sc = get_scenario("stray-ipi@fixed")
    prog = sc.make({})
    whole = explore(prog, "auto", Bounds(sc.bounds.max_steps, 0), 0)
    resume = None
    for _ in range(200):
        res = explore(prog, "auto", Bounds(sc.bounds.max_steps, 0, 37), 0, resume=resume)
        if res.checkpoint is None:
            break
        resume = json.loads(json.dumps(res.checkpoint))
    assert res.complete and whole.complete
    assert (res.stats.executions, res.stats.states, res.stats.steps) == (whole.stats.executions, whole.stats.states, whole.stats.steps)


# ---------------------------------------------------- interruptions keep everything
def test_second_ctrl_c_while_shrinking_writes_the_trace_shrunk_so_far(tmp_path: Path) -> None:
    calls = [0]

    def stop() -> bool:  # the search runs to its violation; the shrinker's 5th poll is a second Ctrl-C
        calls[0] += 1
        if calls[0] > 1 and shrinking[0]:
            raise KeyboardInterrupt
        return False

    shrinking = [False]
    from vcoresim.check import driver as drv

    real = drv.shrink

    def spy(*a: Any, **k: Any) -> Any:
        shrinking[0] = True
        return real(*a, **k)

    drv.shrink = spy  # type: ignore[assignment]
    try:
        r = check(example_program("lost-update"), strategy="random", seed=7, bounds=Bounds(max_executions=2000), stop=stop, trace_out=tmp_path / "t.json")
    finally:
        drv.shrink = real  # type: ignore[assignment]
    assert r.verdict == "violation" and r.shrink.get("stopped") == "interrupted"
    assert replay(tmp_path / "t.json", program_for).reproduced


def _spawn(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "vcoresim.cli", *args], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_ctrl_c_on_the_table_marks_not_run_and_keeps_every_trace(tmp_path: Path) -> None:
    names = ["stray-ipi", "example/lost-update", "p8-idle-lockup", "smt-vcore@4vcpu", "smt-vcore", "stray-ipi@fixed"]
    p = _spawn(["check", *names, "--json"], tmp_path)
    wait_cpu(p.pid, 6.0)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    docs = json.loads(out)
    assert p.returncode in (1, 3), err
    assert [d["scenario"] for d in docs] == names
    assert "interrupted" in err and "Traceback" not in err
    assert any(d["verdict"] == "not run" for d in docs) or any(d.get("interrupted") for d in docs)
    for d in docs:
        if d["verdict"] == "violation":
            assert replay(tmp_path / d["trace"], program_for).reproduced
    if p.returncode == 1:  # only for an unexpected verdict among those that ran
        assert any(d["expected"] and d["verdict"] in ("holds", "violation") and d["verdict"] != d["expected"] for d in docs)


def _children(pid: int) -> list[int]:
    """Children of every thread of pid (a pool may fork from a helper thread)."""
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            kids += [int(x) for x in (task / "children").read_text().split()]
    except OSError:
        pass
    return sorted(set(kids))


def _wait_for_children(p: subprocess.Popen[str], n: int, timeout: float = 60.0) -> list[int]:
    """Wait until p has n children: a loaded machine may take many seconds to import and fork."""
    deadline = time.time() + timeout
    while len(kids := _children(p.pid)) < n and time.time() < deadline and p.poll() is None:
        time.sleep(0.2)
    return kids


def _alive(pid: int) -> bool:
    try:
        st = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return st != "Z"


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_workers_ctrl_c_writes_one_checkpoint_and_sigterm_leaves_no_orphans(tmp_path: Path) -> None:
    cp = tmp_path / "cp.json"
    p = _spawn(["check", "smt-vcore", "--strategy", "exhaustive", "--workers", "2", "--checkpoint", str(cp), "--quiet"], tmp_path)
    kids = _wait_for_children(p, 2)
    assert len(kids) >= 2, p.poll()
    wait_cpu(kids[0], 0.5)  # the workers are at their share
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert err.count("interrupted (SIGINT)") == 1  # the parent's message, once (workers ignore Ctrl-C)
    assert cp.exists() and json.loads(cp.read_text())["state"]["search"]["kind"] == "parallel"
    time.sleep(0.5)
    assert not any(_alive(k) for k in kids)
    r = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", "--resume", str(cp), "--max-executions", "20", "--json"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and json.loads(r.stdout)["verdict"] == "incomplete", r.stderr
    # SIGTERM (what timeout(1) sends) behaves like Ctrl-C; then SIGKILL: the workers die with the parent
    for sig in (signal.SIGTERM, signal.SIGKILL):
        p = _spawn(["check", "smt-vcore", "--strategy", "exhaustive", "--workers", "2", "--quiet"], tmp_path)
        kids = _wait_for_children(p, 1)
        assert kids, p.poll()
        wait_cpu(kids[0], 0.5)
        p.send_signal(sig)
        p.communicate(timeout=60)
        assert p.returncode == (3 if sig == signal.SIGTERM else -signal.SIGKILL)
        deadline = time.time() + 10
        while any(_alive(k) for k in kids) and time.time() < deadline:
            time.sleep(0.2)
        assert not any(_alive(k) for k in kids), sig


def test_a_second_ctrl_c_in_a_frontier_search_still_writes_the_checkpoint(tmp_path: Path) -> None:
    """Issue 16's leftover: the second Ctrl-C lands in the middle of the
    search (a resumed frontier search runs its batches in this process), and
    the checkpoint is written all the same; it resumes."""
    cp, cp2 = tmp_path / "cp.json", tmp_path / "cp2.json"
    first = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", "stray-ipi@fixed", "--strategy", "exhaustive", "--workers", "2", "--max-executions", "30", "--checkpoint", str(cp), "--quiet"], cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120)
    assert first.returncode == 3 and cp.exists(), first.stderr
    p = _spawn(["check", "--resume", str(cp), "--workers", "1", "--checkpoint", str(cp2), "--quiet"], tmp_path)
    assert wait_cpu(p.pid, 3.0) >= 3.0, p.poll()  # imports done, well into the search
    p.send_signal(signal.SIGINT)
    assert p.stderr is not None and "interrupted (SIGINT)" in p.stderr.readline()
    p.send_signal(signal.SIGINT)
    _out, err = p.communicate(timeout=60)
    assert p.returncode == 3, err
    assert cp2.exists() and json.loads(cp2.read_text())["state"]["search"]["kind"] == "parallel", err
    r = subprocess.run([sys.executable, "-m", "vcoresim.cli", "check", "--resume", str(cp2), "--max-executions", "20", "--json"], cwd=tmp_path, check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3 and json.loads(r.stdout)["verdict"] == "incomplete", r.stderr


def test_swarm_interrupted_writes_what_it_found(tmp_path: Path) -> None:
    p = _spawn(["swarm", "example/lost-update", "example/peterson", "--runs", "400", "--json"], tmp_path)
    wait_cpu(p.pid, 4.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    doc = json.loads(out)
    assert p.returncode in (1, 3) and doc.get("interrupted") and doc["runs"] < doc["runs_planned"], err
    for row in doc["distinct_counterexamples"]:
        assert replay(tmp_path / row["trace"], program_for).reproduced


def test_simulate_interrupted_prints_the_figures_so_far(tmp_path: Path) -> None:
    p = _spawn(["simulate", "smt-vcore", "--duration-us", "100000000", "--json", "--compare-smt", "0"], tmp_path)
    wait_cpu(p.pid, 4.0)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    doc = json.loads(out)
    assert p.returncode == 3 and doc["interrupted"] and 0 < doc["metrics"]["end_ns"] < 100_000_000_000, err


def test_ray_unreachable_address_is_a_quick_one_line_error(cli: Cli) -> None:
    pytest.importorskip("ray")
    start = time.perf_counter()
    one_line(cli("check", "example/peterson", "--ray", "127.0.0.1:1"), "--ray: no Ray cluster at '127.0.0.1:1'")
    assert time.perf_counter() - start < 30


# ------------------------------------------------------------ concurrent runs
def test_concurrent_runs_never_report_each_others_counterexample(tmp_path: Path) -> None:
    runs = [_spawn(["check", "example/lost-update", "--strategy", "random", "--seed", str(s), "--json", "--no-shrink"], tmp_path) for s in (1, 2, 3, 4)]
    for s, p in zip((1, 2, 3, 4), runs, strict=True):
        out, err = p.communicate(timeout=120)
        doc = json.loads(out)
        assert p.returncode == 1, err
        trace = json.loads((tmp_path / doc["trace"]).read_text())
        assert trace["strategy"]["seed"] == s and doc["trace"].startswith("traces/example-lost-update.sc.")
    assert not list((tmp_path / "traces").glob("*.tmp")) and not list((tmp_path / "traces").glob(".*"))


def test_default_names_carry_memory_model(tmp_path: Path) -> None:
    from vcoresim.engine.memory import with_memory_model

    r = check(with_memory_model(example_program("peterson-broken"), "tso"), strategy="random", seed=3, bounds=Bounds(max_executions=3000), trace_dir=tmp_path)
    assert r.verdict == "violation" and Path(r.trace).name.startswith("example-peterson-broken.tso.")  # type: ignore[arg-type]


# ----------------------------------------------------------------- formats
def test_usage_errors_are_one_line_with_a_short_excerpt(run: Cli) -> None:
    one_line(run("check", "--strategy", "bogus"), "--strategy: 'bogus' is not one of")
    one_line(run("check", "--seed"), "--seed: requires an argument")
    one_line(run("frobnicate"), "command 'frobnicate': no such command")
    line = one_line(run("check", "--kernel", "k" * 5000, "stray-ipi"), "--kernel: unknown preset")
    assert "k" * 60 not in line
    line = one_line(run("check", "a\u2028b"), "scenario: unknown scenario")
    assert "\\u2028" in line


# -------------------------------------------------------------------- memory
def test_streamed_metrics_equal_the_metrics_of_the_event_log() -> None:
    from vcoresim.simulate.metrics import MetricsStream, compute
    from vcoresim.simulate.timed import TimedDriver

    for name in ("smt-vcore", "p8-idle-lockup@fixed", "signal-entry-race@fixed", "hmi-tb-resync@split4-fixed"):
        stream = MetricsStream()
        d = TimedDriver(get_scenario(name).make({}), seed=5, sink=stream.feed, keep_events=True)
        r = d.run(8_000_000)
        assert d.late_events == 0
        assert stream.finish(r).as_dict() == compute(r).as_dict(), name


def test_a_streamed_run_keeps_no_event_log() -> None:
    from vcoresim.simulate.metrics import run

    result, metrics = run(get_scenario("smt-vcore").make({}), duration_ns=3_000_000, seed=1)
    assert result.events == [] and result.counts["events"] > 0 and metrics.totals["entries"] > 0
    assert math.isfinite(metrics.totals["guest_cpus"])


def test_scenario_error_has_no_newline_for_a_u2028_name() -> None:
    with pytest.raises(ScenarioError) as e:
        loads('name = "a\u2028b"\n', "s.toml")
    assert "\u2028" not in str(e.value)


@pytest.mark.slow
def test_ray_address_that_never_answers_honours_sigterm(tmp_path: Path) -> None:
    """Something listens at the address but no Ray cluster answers: SIGTERM while Ray
    retries ends the run (exit 3) at once, with no retry warnings on stderr."""
    pytest.importorskip("ray")
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    try:
        p = _spawn(["check", "example/peterson", "--ray", f"127.0.0.1:{port}"], tmp_path)
        time.sleep(12.0)
        p.send_signal(signal.SIGTERM)
        start = time.perf_counter()
        out, err = p.communicate(timeout=30)
        assert p.returncode == 3 and time.perf_counter() - start < 10, err
        assert "rpc_client" not in err and "Traceback" not in err
    finally:
        srv.close()


@pytest.mark.parametrize("command", ["check", "simulate"])
def test_a_scenario_name_too_long_for_a_file_name_is_one_line(cli: Cli, command: str) -> None:
    # The built-in lookup reads the file named after the scenario: a 300-character
    # name once reached the file system as ENAMETOOLONG (found by the argv fuzzer).
    one_line(cli(command, "x" * 300), "scenario: unknown scenario")
