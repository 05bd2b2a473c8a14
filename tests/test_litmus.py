"""Litmus tests: the parser's subset and errors, every shipped file's expected result, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcoresim.engine.memory import MODELS
from vcoresim.litmus.parser import LitmusError, parse, parse_file
from vcoresim.litmus.runner import expected_for, run, shipped

SHIPPED = shipped()
FAMILIES = ("SB", "MP", "LB", "R", "S", "2+2W", "WRC", "IRIW")


def test_every_family_ships_with_and_without_barriers() -> None:
    names = {p.stem for p in SHIPPED}
    for fam in FAMILIES:
        assert fam in names
        assert any(n.startswith(fam + "+") for n in names), f"{fam} has no variant with barriers"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_file_gives_its_expected_result_per_model(path: Path) -> None:
    lit = parse_file(path)
    assert set(lit.expected) == set(MODELS), "every shipped file states its expectation for every model"
    for model in MODELS:
        got = run(lit, model)
        assert got.verdict == expected_for(lit, model), f"{lit.name} under {model}"
        if got.verdict == "Sometimes":
            assert got.witness, "a Sometimes comes with the schedule that reaches the clause"


def test_weak_models_are_ordered_by_strength() -> None:
    """Anything sc allows tso allows, anything tso allows pso allows, and so on (on the shipped tests)."""
    for path in SHIPPED:
        lit = parse_file(path)
        seen = [lit.expected[m] == "Sometimes" for m in MODELS]
        assert seen == sorted(seen), f"{lit.name}: {lit.expected}"


def test_barriers_matter_where_the_architecture_says() -> None:
    exp = {p.stem: parse_file(p).expected for p in SHIPPED}
    assert exp["SB"]["tso"] == "Sometimes" and exp["SB+mbs"]["tso"] == "Never"
    assert exp["MP"]["pso"] == "Sometimes" and exp["MP+wmb+rmb"]["power"] == "Never"
    assert exp["MP+wmb"]["power"] == "Sometimes"  # loads satisfied out of order without smp_rmb
    assert exp["IRIW"]["tso"] == "Never" and exp["IRIW"]["power"] == "Sometimes"  # not multi-copy atomic
    assert exp["IRIW+rmbs"]["power"] == "Sometimes" and exp["IRIW+mbs"]["power"] == "Never"  # only sync is cumulative enough
    assert exp["WRC"]["pso"] == "Never" and exp["WRC"]["power"] == "Sometimes"


SB = """C SB
(* Result: Sometimes *)
{ x=0; y=0; }
P0(int *x, int *y) { int r0; WRITE_ONCE(*x, 1); r0 = READ_ONCE(*y); }
P1(int *x, int *y) { int r0; WRITE_ONCE(*y, 1); r0 = READ_ONCE(*x); }
exists (0:r0=0 /\\ 1:r0=0)
"""


def test_parse_subset() -> None:
    lit = parse(SB, "sb.litmus")
    assert lit.name == "SB" and lit.result == "Sometimes" and len(lit.threads) == 2
    assert [i.op for i in lit.threads[0]] == ["store", "load"]
    assert lit.cond.holds({(0, "r0"): 0, (1, "r0"): 0}, {}) and not lit.cond.holds({(0, "r0"): 1}, {})
    assert expected_for(lit, "power") == "Sometimes" and expected_for(lit, "tso") is None


def test_exists_grammar_and_initial_values() -> None:
    text = SB.replace("{ x=0; y=0; }", "{ x=5; }").replace("exists (0:r0=0 /\\ 1:r0=0)", "exists (~(x=1) \\/ (0:r0=7 /\\ y=1))")
    lit = parse(text)
    assert lit.init == {"x": 5}
    assert run(lit, "sc").verdict == "Never"  # x ends 1, r0 is never 7
    lit2 = parse(SB.replace("WRITE_ONCE(*x, 1)", "WRITE_ONCE(*x, 2)").replace("exists (0:r0=0 /\\ 1:r0=0)", "exists (x=2 /\\ 1:r0=2)"))
    assert run(lit2, "sc").verdict == "Sometimes"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("PPC SB\n{}\nP0:\n", "only C litmus tests"),
        (SB.replace("WRITE_ONCE(*x, 1);", "if (r0) { WRITE_ONCE(*x, 1); }"), "nested blocks"),
        (SB.replace("WRITE_ONCE(*x, 1);", "atomic_inc(x);"), "unsupported statement 'atomic_inc(x)'"),
        (SB.replace("exists", "forall"), "only 'exists'"),
        (SB.replace("0:r0=0 /\\", "0:r0=0 /\\ 5:r0=0 /\\"), "thread that does not exist"),
        (SB.replace("(0:r0=0", "(0:r0"), "exists: expected"),
        (SB.replace("Result: Sometimes", "Result: Maybe"), "Result: expected one of"),
        (SB.replace("P1(", "P2("), "expected P1"),
    ],
)
def test_bad_files_give_one_line_errors(text: str, needle: str) -> None:
    with pytest.raises(LitmusError) as e:
        parse(text, "bad.litmus")
    msg = str(e.value)
    assert needle in msg and msg.startswith("bad.litmus:") and "\n" not in msg


def test_cli_shipped_all_expected(cli) -> None:  # type: ignore[no-untyped-def]
    r = cli("litmus", "--reproducible", "--memory-model", "tso", "--memory-model", "power")
    assert r.code == 0, r.stdout + r.stderr
    assert "every result as expected" in r.stdout and "IRIW" in r.stdout


def test_cli_mismatch_exits_1_and_bad_file_exits_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    wrong = tmp_path / "wrong.litmus"
    wrong.write_text(SB.replace("Result: Sometimes", "Result: Never"))
    r = cli("litmus", str(wrong), "--memory-model", "power", "--json", "--reproducible")
    assert r.code == 1
    assert '"verdict": "Sometimes"' in r.stdout and '"expected": "Never"' in r.stdout
    bad = tmp_path / "bad.litmus"
    bad.write_text("C X\n{}\nP0(int *x) { frob(x); }\nexists (x=1)\n")
    r = cli("litmus", str(bad))
    assert r.code == 2 and r.stderr_lines == [f"vcoresim: error: {bad}:3: unsupported statement 'frob(x)' (see 'vcoresim litmus --help' for the subset)"]
    r = cli("litmus", str(tmp_path / "missing.litmus"))
    assert r.code == 2 and r.stderr_lines[0].startswith("vcoresim: error: ") and len(r.stderr_lines) == 1
