"""Unreached model code and vacuous properties, after a check (the SPIN habit).

From a :class:`~vcoresim.engine.coverage.Coverage` (the yield points the
check's executions reached) and the model's source, list:

- **functions** of model code never executed: generator functions (kernel
  functions, interrupt handlers) in a model file the check used, none of
  whose operations ran;
- **branches** never taken: an arm of an ``if``/``elif``/``else``, a loop
  body, an ``except`` handler, whose operations all stayed unexecuted while
  the function around it ran;
- **operations** never reached otherwise (after an early ``return``, behind
  a wait that never ended);

and, for the monitors:

- invariants that **never read a changed value**: none of the locations they
  read ever held anything but its initial value, so they could not have
  failed (vacuous in this run).  An invariant that reads only a ghost flag
  the model sets at the moment of failure is always reported so when it
  holds: the report names the locations, so that case is easy to tell;
- liveness properties **never armed**: their trigger never held.

Granularity: model code is observed where it yields an operation, so an arm
with no operation of its own (pure local computation) is not reported;
every arm that touches shared state is.  A plain (non-generator) helper is
not tracked.
"""

from __future__ import annotations

import ast
import dis
import inspect
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from types import CodeType
from typing import Any

from vcoresim.engine.coverage import Coverage

_PACKAGE = Path(__file__).resolve().parent.parent
#: Driver and engine code is not model code.
_NOT_MODEL = tuple(str(_PACKAGE / d) for d in ("engine", "check", "simulate", "litmus", "report", "cli", "scenarios"))


@dataclass(frozen=True)
class Unreached:
    file: str  # relative to the vcoresim package when inside it
    function: str  # qualified name: the kernel function the model mirrors
    line: int
    end: int
    kind: str  # function | branch | operations
    text: str  # the function's def, the branch's test, or "operations"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}" if self.end == self.line else f"{self.file}:{self.line}-{self.end}"


@dataclass(frozen=True)
class Vacuous:
    name: str
    kind: str  # invariant | liveness
    why: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class UnreachedReport:
    executions: int
    points_reached: int
    points_total: int
    files: list[str]
    unreached: list[Unreached]
    vacuous: list[Vacuous]

    def as_dict(self) -> dict[str, Any]:
        return {
            "executions": self.executions,
            "yield_points": {"reached": self.points_reached, "total": self.points_total},
            "files": self.files,
            "unreached": [u.as_dict() for u in self.unreached],
            "vacuous": [v.as_dict() for v in self.vacuous],
        }


def _short(path: str) -> str:
    p = Path(path).resolve()
    try:
        return str(p.relative_to(_PACKAGE))
    except ValueError:
        return str(p)


@cache
def _yield_lines(code: CodeType) -> dict[int, int]:
    """Offset of every YIELD_VALUE of ``code`` -> its source line."""
    return {ins.offset: ins.positions.lineno for ins in dis.get_instructions(code) if ins.opname == "YIELD_VALUE" and ins.positions and ins.positions.lineno}  # type: ignore[misc]


def _generators(code: CodeType) -> list[CodeType]:
    out = []
    if code.co_flags & inspect.CO_GENERATOR:
        out.append(code)
    for c in code.co_consts:
        if isinstance(c, CodeType):
            out.extend(_generators(c))
    return out


class _Functions(ast.NodeVisitor):
    """Function definitions by qualified name (as ``co_qualname`` spells it)."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        self.found: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}

    def _visit_def(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        qual = ".".join([*self.stack, node.name])
        self.found[qual] = node
        self.stack += [node.name, "<locals>"]
        self.generic_visit(node)
        del self.stack[-2:]

    visit_FunctionDef = _visit_def
    visit_AsyncFunctionDef = _visit_def

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.stack.append(node.name)
        self.generic_visit(node)
        self.stack.pop()


def _clip(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _arms(stmts: list[ast.stmt]) -> list[tuple[list[ast.stmt], str]]:
    """The branches directly inside ``stmts`` (not inside nested function definitions)."""
    out: list[tuple[list[ast.stmt], str]] = []
    for s in stmts:
        if isinstance(s, ast.If):
            out.append((s.body, f"if {ast.unparse(s.test)}:"))
            if s.orelse:
                if len(s.orelse) == 1 and isinstance(s.orelse[0], ast.If):
                    inner = s.orelse[0]
                    out.append(([inner], f"elif {ast.unparse(inner.test)}: (and what follows)"))
                else:
                    out.append((s.orelse, f"else: (of if {ast.unparse(s.test)})"))
        elif isinstance(s, (ast.For, ast.AsyncFor)):
            out.append((s.body, f"for {ast.unparse(s.target)} in {ast.unparse(s.iter)}:"))
            if s.orelse:
                out.append((s.orelse, "else: (of for)"))
        elif isinstance(s, ast.While):
            out.append((s.body, f"while {ast.unparse(s.test)}:"))
            if s.orelse:
                out.append((s.orelse, "else: (of while)"))
        elif isinstance(s, ast.Try):
            out.append((s.body, "try:"))
            for h in s.handlers:
                out.append((h.body, f"except {ast.unparse(h.type)}:" if h.type is not None else "except:"))
            if s.orelse:
                out.append((s.orelse, "else: (of try)"))
            if s.finalbody:
                out.append((s.finalbody, "finally:"))
        elif isinstance(s, ast.With):
            out.append((s.body, f"with {', '.join(ast.unparse(i) for i in s.items)}:"))
        elif isinstance(s, ast.Match):
            for c in s.cases:
                out.append((c.body, f"case {ast.unparse(c.pattern)}:"))
    return out


def _span(stmts: list[ast.stmt]) -> tuple[int, int]:
    return stmts[0].lineno, max(getattr(s, "end_lineno", s.lineno) or s.lineno for s in stmts)


def _analyse_function(file: str, qual: str, node: ast.FunctionDef | ast.AsyncFunctionDef, lines: set[int], reached: set[int]) -> list[Unreached]:
    out: list[Unreached] = []
    covered: set[int] = set()

    def walk(stmts: list[ast.stmt]) -> None:
        for body, text in _arms(stmts):
            lo, hi = _span(body)
            mine = {ln for ln in lines if lo <= ln <= hi}
            if not mine:
                continue
            if not (mine & reached):
                out.append(Unreached(file, qual, lo, hi, "branch", _clip(text)))
                covered.update(mine)
            else:
                walk(body)

    walk(node.body)
    rest = sorted(ln for ln in lines - reached - covered)
    # Consecutive unreached yield lines form one run of operations.
    order = sorted(lines)
    run: list[int] = []
    for ln in rest:
        if run and order.index(ln) == order.index(run[-1]) + 1:
            run.append(ln)
            continue
        if run:
            out.append(Unreached(file, qual, run[0], run[-1], "operations", "operations never reached"))
        run = [ln]
    if run:
        out.append(Unreached(file, qual, run[0], run[-1], "operations", "operations never reached"))
    return out


def analyse(cov: Coverage) -> UnreachedReport:
    """The unreached model code and vacuous monitors of the executions ``cov`` recorded."""
    reached: dict[str, dict[str, set[int]]] = {}  # file -> qualname -> lines
    for code, offset in cov.points:
        fname = code.co_filename
        if fname.startswith(_NOT_MODEL) or fname.startswith("<"):
            continue
        line = _yield_lines(code).get(offset)
        if line is not None:
            reached.setdefault(fname, {}).setdefault(code.co_qualname, set()).add(line)
    unreached: list[Unreached] = []
    total = hit = 0
    for fname in sorted(reached):
        try:
            src = Path(fname).read_text(encoding="utf-8")
        except OSError:
            continue
        module = compile(src, fname, "exec")
        defs = _Functions()
        defs.visit(ast.parse(src))
        short = _short(fname)
        for code in sorted(_generators(module), key=lambda c: c.co_firstlineno):
            lines = set(_yield_lines(code).values())
            if not lines or code.co_name.startswith("<"):
                continue  # generator expressions yield values, not operations
            got = reached[fname].get(code.co_qualname, set()) & lines
            total += len(lines)
            hit += len(got)
            node = defs.found.get(code.co_qualname)
            if not got:
                end = getattr(node, "end_lineno", None) or code.co_firstlineno
                unreached.append(Unreached(short, code.co_qualname, code.co_firstlineno, end, "function", "never executed"))
            elif node is not None:
                unreached.extend(_analyse_function(short, code.co_qualname, node, lines, got))
    unreached.sort(key=lambda u: (u.file, u.line))
    return UnreachedReport(cov.executions, hit, total, [_short(f) for f in sorted(reached)], unreached, vacuity(cov))


def vacuity(cov: Coverage) -> list[Vacuous]:
    out: list[Vacuous] = []
    for name, (kind, reads) in cov.monitors.items():
        if kind == "liveness":
            if name not in cov.armed:
                out.append(Vacuous(name, kind, "never armed: its trigger never held"))
            continue
        if not reads:
            continue  # reads undeclared: checked after every step, nothing to say
        if not any(loc in cov.changed for loc in reads):
            shown = ", ".join(reads[:3]) + (f" and {len(reads) - 3} more" if len(reads) > 3 else "")
            what = f"the location it reads ({shown}) never changed" if len(reads) == 1 else f"none of the {len(reads)} locations it reads ({shown}) ever changed"
            out.append(Vacuous(name, kind, f"never read a changed value: {what}"))
    return out
