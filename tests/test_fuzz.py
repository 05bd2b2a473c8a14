"""The fuzz suite (issue 16): seeded generators of scenario TOML, traces,
checkpoints, litmus files and argument vectors (``tests/fuzzing.py``), judged
for exit codes in {0, 1, 2, 3}, no traceback, one-line exit-2 messages that
name the field, position or option, replays that never claim REPRODUCED for
a schedule that cannot reproduce, and a time bound.

The default run takes a fast slice (in-process, plus a few real processes);
``pytest -m slow tests/test_fuzz.py`` runs the large one, and
``python benchmarks/fuzz.py`` the >= 10,000-case run with its figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import fuzzing

#: Cases per kind in the default run (seeds 0..FAST-1), and in the slow run.
FAST = 30
SLOW = 400


def _report(tallies: dict[str, fuzzing.Tally]) -> str:
    lines = []
    for kind, t in tallies.items():
        lines.append(f"{kind}: {t.cases} cases, exit codes {dict(sorted(t.codes.items()))}, {t.known} known ({fuzzing.KNOWN_REFERENCE}), {t.hangs} hangs")
        for case, detail in t.problems[:10]:
            lines.append(f"  seed {case.seed} [{case.what}] {' '.join(case.argv)[:200]}: {detail}")
    return "\n".join(lines)


@pytest.mark.parametrize("kind", fuzzing.KINDS)
def test_fuzz_fast_slice(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp(f"fuzz-{kind}")
    tallies = fuzzing.fuzz([kind], range(FAST), work)
    t = tallies[kind]
    assert t.cases == FAST
    assert not t.problems and not t.hangs, _report(tallies)
    assert len(t.codes) > 1  # the generator reaches more than one outcome (not only rejections)


def test_fuzz_cases_in_real_processes(tmp_path: Path) -> None:
    """One case of each kind through ``python -m vcoresim.cli``: real exit codes and stderr."""
    for kind in fuzzing.KINDS:
        for seed in (3,):
            case = fuzzing.make_case(kind, seed, str(tmp_path))
            o = fuzzing.run_subprocess(case, tmp_path / "cases" / f"{kind}-{seed}")
            verdict, detail = fuzzing.judge(case, o)
            assert verdict == "ok", (kind, seed, case.what, case.argv, detail, o.stderr[-1000:])


def test_generators_are_seeded(tmp_path: Path) -> None:
    for kind in fuzzing.KINDS:
        a = fuzzing.make_case(kind, 5, str(tmp_path))
        b = fuzzing.make_case(kind, 5, str(tmp_path))
        assert (a.argv, a.files, a.what) == (b.argv, b.files, b.what)


def test_the_judge_catches_what_it_must() -> None:
    """The judge itself can fail a case: a traceback, a bad exit code, a multi-line or
    anonymous error, a lying replay, a hang."""
    case = fuzzing.Case("trace", 0, "x", ["replay"], must_not_reproduce=True)
    bad = [
        fuzzing.Outcome(1, "", "Traceback (most recent call last):\n  ...\nKeyError: 'x'\n", 0.1),
        fuzzing.Outcome(4, "", "vcoresim: internal error\n", 0.1),
        fuzzing.Outcome(5, "", "", 0.1),
        fuzzing.Outcome(2, "", "Usage: vcoresim\nError: no\n", 0.1),
        fuzzing.Outcome(2, "", "vcoresim: error: something went wrong\n", 0.1),
        fuzzing.Outcome(2, "", "vcoresim: error: f: " + "x" * 500 + "\n", 0.1),
        fuzzing.Outcome(0, "REPRODUCED: x violated at step 3\n", "", 0.1),
        fuzzing.Outcome(-1, "", "", 90.0, hung=True),
    ]
    for o in bad:
        assert fuzzing.judge(case, o)[0] == "problem", o
    assert fuzzing.judge(case, fuzzing.Outcome(2, "", "vcoresim: error: t.json: field 'schedule[0]': bad\n", 0.1))[0] == "ok"
    assert fuzzing.judge(case, fuzzing.Outcome(1, "NOT REPRODUCED: ...\n", "", 0.1))[0] == "ok"


@pytest.mark.slow
@pytest.mark.parametrize("kind", fuzzing.KINDS)
def test_fuzz_large(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    work = tmp_path_factory.mktemp(f"fuzz-large-{kind}")
    tallies = fuzzing.fuzz([kind], range(FAST, FAST + SLOW), work, subprocess_every=50)
    t = tallies[kind]
    assert not t.problems and not t.hangs, _report(tallies)
