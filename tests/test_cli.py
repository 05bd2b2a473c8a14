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
    assert runs[0][0] in (0, 1)


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
