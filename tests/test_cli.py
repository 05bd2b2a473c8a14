"""The command line as a user meets it: verdicts and exit codes, replay, bad input,
byte-identical reruns."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import KNOWN_ANSWERS, Cli, CliRun

from vcoresim.check.driver import check
from vcoresim.examples import example_program
from vcoresim.scenarios.registry import builtin_scenarios

EXAMPLES = [f"example/{n}" for n in sorted(KNOWN_ANSWERS)]
EXIT = {"holds": 0, "violation": 1}


def _one_error_line(r: CliRun) -> None:
    """Bad input (usage mistakes included): exit 2, no traceback, exactly one line
    ``vcoresim: error: <where>: <what>`` on stderr."""
    assert r.code == 2, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    lines = r.stderr_lines
    assert len(lines) == 1 and lines[0].startswith("vcoresim: error: "), lines
    assert ": " in lines[0][len("vcoresim: error: ") :], lines


# ------------------------------------------------------------------ check
@pytest.mark.parametrize("scenario", EXAMPLES)
def test_check_known_answers_through_the_cli(cli: Cli, scenario: str, tmp_path: Path) -> None:
    # (every strategy's answers are checked in-process in test_strategies; here the CLI path)
    r = cli("check", scenario, "--json", "--reproducible")
    doc = json.loads(r.stdout)
    want = KNOWN_ANSWERS[scenario.split("/", 1)[1]]
    assert r.code == EXIT[want] and doc["verdict"] == want
    assert {"verdict", "invariant", "bounds", "stats", "trace"} <= set(doc)
    assert {"executions", "states", "steps", "seconds"} <= set(doc["stats"]) and doc["stats"]["seconds"] is None
    assert doc["bounds"]["max_steps"] > 0  # every verdict states its bounds
    if want == "violation":
        assert doc["invariant"] and (tmp_path / doc["trace"]).exists()
    else:
        assert doc["trace"] is None and doc["coverage"] == "complete"


@pytest.mark.parametrize("scenario", ["example/lost-update", "example/peterson-broken", "example/lock-order"])
def test_every_found_trace_replays(cli: Cli, scenario: str, tmp_path: Path) -> None:
    trace = tmp_path / "found.json"
    r = cli("check", scenario, "--strategy", "random", "--seed", "7", "--max-executions", "2000", "--trace-out", str(trace))
    assert r.code == 1, r.stdout + r.stderr
    rep = cli("replay", str(trace))
    assert rep.code == 0, rep.stdout + rep.stderr
    assert "REPRODUCED" in rep.stdout and "NOT REPRODUCED" not in rep.stdout
    steps = json.loads(trace.read_text())["schedule"]
    assert sum(1 for ln in rep.stdout.splitlines() if ln[:5].strip().isdigit()) == len(steps)  # one line per step


def test_budget_exhausted_exits_3(cli: Cli) -> None:
    r = cli("check", "example/store-buffering", "--strategy", "dfs", "--max-executions", "2", "--json")
    assert r.code == 3 and json.loads(r.stdout)["verdict"] == "incomplete"


def test_check_examples_prints_table(cli: Cli) -> None:
    r = cli("check", *EXAMPLES, "--quiet")
    assert r.code == 0, r.stdout + r.stderr
    for name in EXAMPLES:
        assert name in r.stdout
    assert "every verdict as expected" in r.stdout


@pytest.mark.slow
def test_check_every_builtin_scenario(cli: Cli) -> None:
    r = cli("check", "--quiet", timeout=1800)
    assert r.code == 0, r.stdout + r.stderr
    for name in builtin_scenarios():
        assert name in r.stdout, f"{name} missing from the verdict table"


def test_list_json_names_every_scenario(cli: Cli) -> None:
    r = cli("list", "--json")
    assert r.code == 0
    names = {s["name"] for s in json.loads(r.stdout)["scenarios"]}
    assert names == set(builtin_scenarios()) and set(EXAMPLES) <= names


# ----------------------------------------------------------- determinism
@pytest.mark.parametrize(
    ("scenario", "args"),
    [
        ("example/lost-update", ["--strategy", "random", "--seed", "7"]),
        ("example/peterson-broken", ["--strategy", "exhaustive"]),
        ("example/peterson", ["--strategy", "random", "--seed", "7", "--max-executions", "200"]),
    ],
)
def test_same_command_twice_is_byte_identical(cli: Cli, tmp_path: Path, scenario: str, args: list[str]) -> None:
    runs = []
    for k in (1, 2):
        d = tmp_path / f"run{k}"
        d.mkdir()
        r = cli("check", scenario, *args, "--json", "--reproducible", "--trace-out", "t.json", cwd=d)
        trace = d / "t.json"
        runs.append((r.code, r.stdout, trace.read_bytes() if trace.exists() else None))
    assert runs[0] == runs[1]
    assert runs[0][0] in (0, 1, 3)  # 3: a sample found nothing (not a proof)


# ------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "args",
    [
        ["check", "--no-such-option"],
        ["check", "--strategy", "bogus"],
        ["check", "--max-steps", "zero"],
        ["check", "no-such-scenario"],
        ["frobnicate"],
    ],
)
def test_bad_command_line(cli: Cli, args: list[str]) -> None:
    _one_error_line(cli(*args))


@pytest.fixture(scope="module")
def good_trace(tmp_path_factory: pytest.TempPathFactory) -> dict:
    path = tmp_path_factory.mktemp("trace") / "good.json"
    assert check(example_program("lost-update"), trace_out=path).verdict == "violation"
    return json.loads(path.read_text())


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("malformed", lambda d: "{ this is not json"),
        ("truncated", lambda d: json.dumps(d)[: len(json.dumps(d)) // 2]),
        ("foreign-version", lambda d: json.dumps({**d, "version": 99})),
        ("wrong-format", lambda d: json.dumps({**d, "format": "perfetto"})),
        ("unknown-actor", lambda d: json.dumps({**d, "schedule": [["nobody", 0]]})),
        ("unknown-scenario", lambda d: json.dumps({**d, "scenario": "example/nope"})),
        ("step-not-enabled", lambda d: json.dumps({**d, "schedule": [["P0", 5]]})),
    ],
)
def test_bad_trace_file(cli: Cli, tmp_path: Path, good_trace: dict, name: str, content) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.json"
    path.write_text(content(good_trace))
    r = cli("replay", str(path))
    _one_error_line(r)
    assert r.stderr_lines[0].startswith("vcoresim: error:")


def test_missing_trace_file(cli: Cli, tmp_path: Path) -> None:
    r = cli("replay", str(tmp_path / "absent.json"))
    _one_error_line(r)


# ------------------------------------------------- honest verdicts (issue 15)
def test_executions_cut_at_max_steps_are_not_holds(cli: Cli) -> None:
    r = cli("check", "stray-ipi@fixed", "--max-steps", "50", "--json", "--no-unreached")
    doc = json.loads(r.stdout)
    assert r.code == 3 and doc["verdict"] == "bounded" and doc["coverage"] == "bounded"
    assert doc["cut_at_max_steps"] > 0 and doc["summary"].startswith(f"bounded: no violation, but {doc['cut_at_max_steps']} of ")
    assert doc["as_expected"] is False and doc["expected"] == "holds"  # not met, not contradicted: exit 3, not 1
    text = cli("check", "stray-ipi@fixed", "--max-steps", "50", "--no-unreached", columns=80)
    assert text.code == 3 and "stray-ipi@fixed: bounded" in text.stdout and "holds" not in text.stdout.split("expected:")[0]
    assert "not decided" in text.stdout


def test_sampling_never_says_holds(cli: Cli) -> None:
    r = cli("check", "stray-ipi", "--strategy", "pct", "--pct-depth", "1", "--max-executions", "60", "--json", "--no-unreached")
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "sampled" and doc["summary"].startswith("no violation found in 60 samples")
    assert r.code == 3  # the expected violation was not found, and a sample cannot say it is absent
    t = cli("check", "peterson", "--strategy", "random", "--max-executions", "50", "--no-unreached")
    assert t.code == 3 and "no violation found in 50 samples" in t.stdout
    assert t.stdout.splitlines()[0] == "example/peterson: sampled" and "verdict: holds" not in t.stdout


def test_expect_of_a_single_file_scenario_decides_the_exit_code(cli: Cli, tmp_path: Path) -> None:
    body = 'name = "mine"\n[machine]\ncpu = "POWER7"\n[kernel]\npreset = "v3.19"\n[faults]\nstray_ipi = 1\n[workload]\nrounds = 1\n[check]\nmax_preemptions = 0\n'
    (tmp_path / "held.toml").write_text(body + '[expect]\nverdict = "violation"\ninvariant = "no-host-code-in-guest"\n')
    r = cli("check", "held.toml", "--no-unreached")
    assert r.code == 1 and "(unexpected)" in r.stdout and "UNEXPECTED" in r.stdout  # it held: not what the file expects
    (tmp_path / "ok.toml").write_text(body + '[expect]\nverdict = "holds"\n')
    assert cli("check", "ok.toml", "--no-unreached").code == 0
    (tmp_path / "typo.toml").write_text(body + '[expect]\nverdict = "violation"\ninvariant = "no-host-code-in-gest"\n')
    r = cli("check", "typo.toml")
    want = (
        "vcoresim: error: typo.toml: expect.invariant: unknown invariant 'no-host-code-in-gest' for the vcore model (did you mean 'no-host-code-in-guest'?) "
        "(known: no-host-code-in-guest, req-honoured, vcpu-on-one-thread, vcpu-on-its-thread, core-one-partition, vcore-counters, "
        "runnable-vcpu-dispatched, no-wait-for-nap-timeout, no-grab-timeout, hwthread-state-truthful, grab-sound, "
    )
    # (one line, the list of known names excerpted)
    assert r.code == 2 and len(r.stderr_lines) == 1 and r.stderr_lines[0].startswith(want)


def test_verdict_paragraph_is_plain_text_with_the_memory_model(cli: Cli) -> None:
    r = cli("check", "lost-update", "--memory-model", "tso", "--no-shrink", columns=80)
    assert r.code == 1
    flat = " ".join(r.stdout.split())  # the paragraph is wrapped at 80 columns
    assert "memory model: tso" in flat and "not shrunk" in flat and "shrunk from" not in flat
    assert not any(ch in r.stdout for ch in ("{'", "[{", "': ")), r.stdout  # no Python reprs
    assert all(len(ln) <= 80 for ln in r.stdout.splitlines())
    shrunk = cli("check", "lost-update", "--strategy", "random", "--seed", "3", "--max-executions", "500")
    assert "shrunk from" in shrunk.stdout or "already minimal" in shrunk.stdout


def test_did_you_mean_for_scenario_and_patch_names(cli: Cli) -> None:
    r = cli("check", "stray-ip")
    assert r.code == 2 and r.stderr_lines == ["vcoresim: error: scenario: unknown scenario 'stray-ip' (did you mean 'stray-ipi'?) (see 'vcoresim list')"]
    r = cli("check", "stray-ipi", "--patch", "stray-ipi-gaurd=on")
    assert r.code == 2 and "(did you mean 'stray-ipi-guard'?)" in r.stderr_lines[0]


# ---------------------------------------------------------- 80 columns
def test_list_at_80_columns_never_cuts_a_name(cli: Cli) -> None:
    r = cli("list", columns=80)
    assert r.code == 0
    lines = r.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    doc = json.loads(cli("list", "--json").stdout)
    firsts = {ln.split()[0] for ln in lines if ln.strip()}
    for section in ("scenarios", "patches", "presets", "invariants"):
        for row in doc[section]:
            assert row["name"] in firsts, f"{section}: {row['name']} is not whole on a line"
    assert "..." not in r.stdout and "…" not in r.stdout
    assert "(introduced seed 003's bug)" not in r.stdout and ".txt" not in r.stdout  # roles, not file names
    assert "fixes R2 (seed 000)" in r.stdout and "adds seed 003's bug" in r.stdout


def test_check_table_at_80_columns_keeps_names_whole(cli: Cli) -> None:
    names = ["signal-entry-race@radix-nmi-fixed", "example/peterson", "lost-update", "hmi-tb-resync@split2"]
    r = cli("check", *names, "--quiet", columns=80)
    assert r.code == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert all(len(ln) <= 80 for ln in lines), max(lines, key=len)
    for n in ["signal-entry-race@radix-nmi-fixed", "example/peterson", "example/lost-update", "hmi-tb-resync@split2"]:
        assert any(ln.split() and ln.split()[0] == n for ln in lines), n
    header = next(ln for ln in lines if ln.startswith("scenario"))
    assert header.split()[:3] == ["scenario", "verdict", "invariant"]
    wide = cli("check", *names, "--quiet", columns=200)
    assert {"states", "steps", "coverage", "trace"} <= set(next(ln for ln in wide.stdout.splitlines() if ln.startswith("scenario")).split())
