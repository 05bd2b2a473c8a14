"""Litmus tests: the parser's subset and errors, every shipped file's expected result, the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from vcoresim.engine.memory import MODELS
from vcoresim.litmus.parser import Addr, LitmusError, parse, parse_file
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
        (SB.replace("WRITE_ONCE(*x, 1);", "while (r0) { WRITE_ONCE(*x, 1); }"), "unsupported construct 'while'"),
        (SB.replace("WRITE_ONCE(*x, 1);", "synchronize_rcu();"), "unsupported construct synchronize_rcu()"),
        (SB.replace("WRITE_ONCE(*x, 1);", "srcu_read_lock(x);"), "unsupported construct srcu_read_lock()"),
        (SB.replace("WRITE_ONCE(*x, 1);", "r0 = *x;"), "plain C access"),
        (SB.replace("exists", "exits"), "expected 'exists (...)'"),
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


@pytest.mark.slow  # 13 s; each shipped file is checked per model by test_shipped_file_gives_its_expected_result_per_model
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
    assert r.code == 2 and r.stderr_lines == [f"vcoresim: error: {bad}:3: unsupported construct frob()"]
    r = cli("litmus", str(tmp_path / "missing.litmus"))
    assert r.code == 2 and r.stderr_lines[0].startswith("vcoresim: error: ") and len(r.stderr_lines) == 1


def test_ocaml_comment_syntax_in_code_is_code() -> None:
    """'(*x' in a thread body is C (a parenthesised dereference), not the start of a comment."""
    text = SB.replace("WRITE_ONCE(*x, 1);", "WRITE_ONCE((*x), 1);").replace("r0 = READ_ONCE(*x);", "r0 = READ_ONCE((*x));")
    with pytest.raises(LitmusError, match="plain C access|expected"):
        parse(text, "bad.litmus")  # herd7 rejects this too: READ_ONCE wants '*p' as its argument
    ok = parse(SB.replace("WRITE_ONCE(*x, 1);", "WRITE_ONCE(*x, (1));"), "ok.litmus")
    assert [i.op for i in ok.threads[0]] == ["store", "load"]


KERNEL_STYLE = """C kernel-style
(* Result: Never *)
{
	int *p = y;
	atomic_t v = ATOMIC_INIT(1);
}
P0(int *x, int **p, atomic_t *v, spinlock_t *s) // Producer
{
	int r0;
	WRITE_ONCE(*x, 1);
	rcu_assign_pointer(*p, x);
	r0 = atomic_fetch_add_relaxed(2, v);
	spin_lock(s);
	spin_unlock(s);
}
P1(int *x, int **p, atomic_t *v)
{
	int *r0;
	int r1;
	int r2;
	rcu_read_lock();
	r0 = rcu_dereference(*p);
	r1 = READ_ONCE(*r0);
	rcu_read_unlock();
	if (r1 == 0) {
		r2 = xchg_acquire(v, 5);
	} else
		r2 = cmpxchg(v, 3, 4);
}
locations [x; 1:r2;]
filter (1:r0=x)
exists (1:r0=x /\\ 1:r1=0)
"""


def test_kernel_language_pointers_if_atomics_filter() -> None:
    lit = parse(KERNEL_STYLE, "k.litmus")
    assert lit.init == {"p": Addr("y"), "v": 1}
    assert [i.op for i in lit.threads[1]] == ["load", "load", "if"]
    assert lit.filter is not None and lit.quantifier == "exists"
    for model in MODELS:
        assert run(lit, model).verdict == "Never", model  # release/dependency: MP+onceassign+derefonce
    lit2 = parse(KERNEL_STYLE.replace("rcu_assign_pointer(*p, x)", "WRITE_ONCE(*p, x)"), "k2.litmus")
    assert run(lit2, "sc").verdict == "Never" and run(lit2, "pso").verdict == "Sometimes"


def test_forall_and_always() -> None:
    lit = parse(SB.replace("exists (0:r0=0 /\\ 1:r0=0)", "forall (x=1 /\\ y=1)"))
    assert lit.quantifier == "forall" and run(lit, "power").verdict == "Always"
    lit = parse(SB.replace("exists (0:r0=0 /\\ 1:r0=0)", "~exists (0:r0=0 /\\ 1:r0=0)"))
    assert run(lit, "sc").verdict == "Never" and run(lit, "tso").verdict == "Sometimes"


def test_power_reorders_loads_after_stores_and_honours_dependencies() -> None:
    """Issue 18: what POWER allows (herd7's ppc.cat agrees on each shipped file)."""
    exp = {p.stem: parse_file(p).expected for p in SHIPPED}
    for name in ("LB", "3.LB", "LB+acquire", "S+release", "Z6.1+mb+release+acquire"):
        assert exp[name]["power"] == "Sometimes", name  # a load satisfied after a later store
    assert exp["LB+ctrl+data"]["power"] == "Never"  # control and data dependencies order load->store
    assert exp["MP+wmb+addr"]["power"] == "Never"  # an address dependency orders load->load
    assert exp["MP+wmb+ctrl"]["power"] == "Sometimes"  # a control dependency alone does not


def test_cli_a_load_through_a_non_pointer_is_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "null.litmus"
    bad.write_text("C null\n{}\nP0(int **p) { int *r0; int r1; r0 = READ_ONCE(*p); r1 = READ_ONCE(*r0); }\nexists (0:r1=0)\n")
    r = cli("litmus", str(bad), "--memory-model", "sc")
    assert r.code == 2 and r.stderr_lines == [f"vcoresim: error: {bad}: P0: register r0 holds 0, not an address"]
