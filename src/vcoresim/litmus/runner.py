"""Run a litmus test under a memory model: is its condition reachable?

Each thread ``Pn`` is interpreted by a generator that yields the engine's
operations (Store, Load, Barrier, RMW, SpinLock...), so the litmus test
exercises exactly the semantics the KVM model runs under.  The interpreter
knows what model code cannot tell the engine: which register each value came
from.  So it

- issues a plain load that some later write of the thread could overtake as
  ``Load(late=True)``: under ``power`` the engine may satisfy it after the
  thread's later instructions (load->store reordering, LB);
- awaits such a load before anything that depends on it: an address, the
  value of a store (data), the condition of an ``if`` (control), a later
  access to the same location (coherence), a barrier or atomic that orders it;
- passes address dependencies to the engine (``Load(dep=...)``), which then
  does not satisfy the dependent load before the one it depends on.

The condition is checked as an invariant in the final states (every thread
done, every store buffer drained, every write propagated, every load
satisfied): exhaustive DPOR covers every final state, so "no violation,
complete" means **Never**; a second search for the negation separates
**Sometimes** from **Always**.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vcoresim.engine import ops as O
from vcoresim.engine.memory import MODELS, with_memory_model
from vcoresim.engine.runtime import Execution, ModelError
from vcoresim.engine.strategies.base import Bounds
from vcoresim.engine.strategies.dpor import exhaustive
from vcoresim.engine.world import DONE, Invariant, Program, World
from vcoresim.litmus.parser import Addr, Cond, Instr, Litmus


@dataclass
class Outcome:
    model: str
    verdict: str  # Never | Sometimes | Always | Unknown (budget ran out)
    executions: int
    states: int
    seconds: float
    witness: list[tuple[str, int]] | None  # the schedule (actor name, branch) reaching the condition


@dataclass(frozen=True)
class Late:
    """A register whose load the engine has not satisfied yet (``power``)."""

    token: int


_WRITE_CALLS = ("__atomic_op", "__cmpxchg", "__add_unless", "__spin_trylock")


def _writes(e: Any) -> bool:
    if not isinstance(e, tuple) or not e:
        return False
    if e[0] == "call":
        return e[1] in _WRITE_CALLS or any(_writes(a) for a in e[2])
    return any(_writes(a) for a in e[1:])


def _flatten(ins: list[Instr], out: list[tuple[Instr, bool]]) -> None:
    for i in ins:
        if i.op == "if":
            out.append((i, _writes(i.args[0])))
            _flatten(i.args[1], out)
            _flatten(i.args[2], out)
        else:
            w = i.op in ("store", "release", "lock", "unlock") or (i.op in ("assign", "expr") and _writes(i.args[-1]))
            out.append((i, w))


def deferrable(thread: list[Instr]) -> set[int]:
    """ids of the plain loads some later write of the thread (in source order) could overtake."""
    flat: list[tuple[Instr, bool]] = []
    _flatten(thread, flat)
    out: set[int] = set()
    later_write = False
    for ins, w in reversed(flat):
        if ins.op == "load" and later_write:
            out.add(id(ins))
        later_write = later_write or w
    return out


_LOC_CALLS = ("__load", "__atomic_op", "__cmpxchg", "__add_unless", "__spin_trylock", "__spin_is_locked")
_LOC_STMTS = ("store", "release", "load", "acquire", "lock", "unlock")


def _reg_addressed(e: Any) -> bool:
    if not isinstance(e, tuple) or not e:
        return False
    if e[0] == "call" and e[1] in _LOC_CALLS and e[2] and isinstance(e[2][0], tuple):
        return True
    return any(_reg_addressed(a) for a in e[1:])


def addresses_from_registers(thread: list[Instr]) -> bool:
    """Does some access of the thread take its address from a register (so its
    loads may be address-dependency sources, ``Load(feeds=True)``)?"""
    flat: list[tuple[Instr, bool]] = []
    _flatten(thread, flat)
    return any((i.op in _LOC_STMTS and isinstance(i.args[0], tuple)) or _reg_addressed(i.args) for i, _ in flat)


class _Interp:
    """One thread of a litmus test, as a generator of engine operations."""

    def __init__(self, lit: Litmus, tid: int, regs: dict[tuple[int, str], Any]) -> None:
        self.tid = tid
        self.regs = regs  # (tid, reg) -> value | Late: shared with the final check
        self.taint: dict[str, frozenset[int]] = {}
        self.pending: dict[int, str] = {}  # late token -> location
        self.tokens = 0
        self.late_ok = deferrable(lit.threads[tid])
        self.feeds = addresses_from_registers(lit.threads[tid])
        for (t, r), v in lit.reg_init.items():
            if t == tid:
                regs[(t, r)] = v

    # ---- values
    def _await(self, token: int) -> Generator[O.Op, Any, Any]:
        v = yield O.Await(token)
        self.pending.pop(token, None)
        for k, old in list(self.regs.items()):
            if old == Late(token) and k[0] == self.tid:
                self.regs[k] = v
        return v

    def _reg(self, r: str) -> Generator[O.Op, Any, tuple[Any, frozenset[int]]]:
        v = self.regs.get((self.tid, r), 0)
        if isinstance(v, Late):
            v = yield from self._await(v.token)
        return v, self.taint.get(r, frozenset())

    def _loc(self, loc: Any) -> Generator[O.Op, Any, tuple[str, frozenset[int]]]:
        if isinstance(loc, str):
            x, taint = loc, frozenset[int]()
        else:
            v, taint = yield from self._reg(loc[1])
            if not isinstance(v, Addr):
                raise ModelError(f"P{self.tid}: register {loc[1]} holds {v!r}, not an address")
            x = v.loc
        for t, y in list(self.pending.items()):  # coherence: earlier loads of x first
            if y == x:
                yield from self._await(t)
        return x, taint

    def _value(self, v: Any) -> Generator[O.Op, Any, tuple[Any, frozenset[int]]]:
        if isinstance(v, int):
            return v, frozenset()
        if isinstance(v, str):  # a register (the simple forms tests build)
            return (yield from self._reg(v))
        return (yield from self._expr(v))

    def _expr(self, e: tuple[Any, ...]) -> Generator[O.Op, Any, tuple[Any, frozenset[int]]]:
        k = e[0]
        if k == "int":
            return e[1], frozenset()
        if k == "addr":
            return Addr(e[1]), frozenset()
        if k == "reg":
            return (yield from self._reg(e[1]))
        if k == "un":
            v, t = yield from self._expr(e[2])
            if isinstance(v, Addr):
                return (int(False) if e[1] == "!" else _bad(e, v)), t
            return ({"!": int(not v), "-": -v, "~": ~v}[e[1]]), t
        if k == "bin":
            op = e[1]
            a, ta = yield from self._expr(e[2])
            if op in ("&&", "||"):
                if bool(a) == (op == "||"):
                    return int(op == "||"), ta
                b, tb = yield from self._expr(e[3])
                return int(bool(b)), ta | tb
            b, tb = yield from self._expr(e[3])
            return _arith(op, a, b, e), ta | tb
        if k == "call":
            return (yield from self._call(e[1], e[2]))
        raise ModelError(f"P{self.tid}: cannot evaluate {e!r}")

    def _call(self, name: str, args: tuple[Any, ...]) -> Generator[O.Op, Any, tuple[Any, frozenset[int]]]:
        if name == "__load":
            loc, kind = args
            x, taint = yield from self._loc(loc)
            token = self._token()
            v = yield O.Load(x, token, False, tuple(taint), self.feeds)
            if kind == "acquire":
                yield O.Barrier("acquire")
            return v, frozenset({token})
        if name == "__atomic_op":
            loc, op, operand, order, ret = args
            d, _ = yield from self._value(operand)
            x, _ = yield from self._loc(loc)
            if op == "xchg":
                fn: Any = _Const(d)
            else:
                fn = _Arith(op, d)
            old = yield from self._rmw(x, fn, f"{op} {d!r}", order)
            return (old if ret == "old" else fn(old)), frozenset()
        if name == "__cmpxchg":
            loc, want, new, order = args
            w, _ = yield from self._value(want)
            n, _ = yield from self._value(new)
            x, _ = yield from self._loc(loc)
            old = yield from self._rmw(x, _Cmpxchg(w, n), f"cmpxchg {w!r}->{n!r}", order)
            return old, frozenset()
        if name == "__add_unless":
            loc, a, u = args
            av, _ = yield from self._value(a)
            uv, _ = yield from self._value(u)
            x, _ = yield from self._loc(loc)
            old = yield from self._rmw(x, _AddUnless(av, uv), f"add_unless {av!r} {uv!r}", "mb")
            return int(old != uv), frozenset()
        if name == "__spin_trylock":
            x, _ = yield from self._loc(args[0])
            got = yield O.SpinTryLock(x)
            return int(bool(got)), frozenset()
        if name == "__spin_is_locked":
            x, _ = yield from self._loc(args[0])
            token = self._token()
            v = yield O.Load(x, token, False, (), self.feeds)
            return int(v != 0), frozenset({token})
        raise ModelError(f"P{self.tid}: unknown call {name}")

    def _rmw(self, x: str, fn: Any, what: str, order: str) -> Generator[O.Op, Any, Any]:
        # powerpc: fully ordered = sync; ll/sc; sync; _acquire = ll/sc; lwsync;
        # _release = lwsync; ll/sc.  Only power tells the relaxed core apart.
        if order == "release":
            yield O.Barrier("release")
        old = yield O.RMW(x, fn, what, "mb" if order == "mb" else "relaxed")
        if order == "acquire":
            yield O.Barrier("acquire")
        return old

    def _token(self) -> int:
        self.tokens += 1
        return self.tokens

    # ---- statements
    def run(self, ins: list[Instr]) -> Generator[O.Op, Any, None]:
        for i in ins:
            yield from self._stmt(i)

    def _stmt(self, i: Instr) -> Generator[O.Op, Any, None]:
        op = i.op
        if op in ("store", "release"):
            v, _ = yield from self._value(i.args[1])
            x, _ = yield from self._loc(i.args[0])
            if op == "release":
                yield O.Barrier("release")
            yield O.Store(x, v)
        elif op in ("load", "acquire"):
            x, taint = yield from self._loc(i.args[0])
            reg = i.args[1]
            token = self._token()
            late = op == "load" and id(i) in self.late_ok
            v = yield O.Load(x, token, late, tuple(taint), self.feeds)
            if v is O.PENDING:
                self.pending[token] = x
                v = Late(token)
            elif op == "acquire":
                yield O.Barrier("acquire")
            self.regs[(self.tid, reg)] = v
            self.taint[reg] = frozenset({token})
        elif op == "barrier":
            yield O.Barrier(i.args[0])
        elif op == "lock":
            x, _ = yield from self._loc(i.args[0])
            yield O.SpinLock(x)
        elif op == "unlock":
            x, _ = yield from self._loc(i.args[0])
            yield O.SpinUnlock(x)
        elif op == "assign":
            v, t = yield from self._expr(i.args[1])
            self.regs[(self.tid, i.args[0])] = v
            self.taint[i.args[0]] = t
        elif op == "expr":
            yield from self._expr(i.args[0])
        elif op == "if":
            c, _ = yield from self._expr(i.args[0])
            yield from self.run(i.args[1] if _truthy(c) else i.args[2])
        else:
            raise ModelError(f"P{self.tid}: unknown statement {op!r}")


class _Const:
    def __init__(self, v: Any) -> None:
        self.v = v

    def __call__(self, old: Any) -> Any:
        return self.v


class _Arith:
    def __init__(self, op: str, d: Any) -> None:
        self.op, self.d = op, d

    def __call__(self, old: Any) -> Any:
        if self.op == "&~":
            return old & ~self.d
        return _arith(self.op, old, self.d, ("rmw",))


class _Cmpxchg:
    def __init__(self, want: Any, new: Any) -> None:
        self.want, self.new = want, new

    def __call__(self, old: Any) -> Any:
        return self.new if old == self.want else old


class _AddUnless:
    def __init__(self, a: Any, u: Any) -> None:
        self.a, self.u = a, u

    def __call__(self, old: Any) -> Any:
        return old + self.a if old != self.u else old


def _truthy(v: Any) -> bool:
    return True if isinstance(v, Addr) else bool(v)


def _bad(e: Any, v: Any) -> Any:
    raise ModelError(f"arithmetic on the address {v!r} in {e!r}")


def _arith(op: str, a: Any, b: Any, e: Any) -> Any:
    if op == "==":
        return int(a == b)
    if op == "!=":
        return int(a != b)
    if isinstance(a, Addr) or isinstance(b, Addr):
        _bad(e, a if isinstance(a, Addr) else b)
    return {
        "+": lambda: a + b, "-": lambda: a - b, "*": lambda: a * b, "/": lambda: int(a / b) if b else _bad(e, "division by 0"),
        "%": lambda: a % b if b else _bad(e, "division by 0"), "&": lambda: a & b, "|": lambda: a | b, "^": lambda: a ^ b,
        "<<": lambda: a << b, ">>": lambda: a >> b, "<": lambda: int(a < b), ">": lambda: int(a > b),
        "<=": lambda: int(a <= b), ">=": lambda: int(a >= b),
    }[op]()  # fmt: skip


def _settled(ex: Execution, n: int) -> bool:
    if any(a.status != DONE for a in ex.actors[:n]):
        return False
    settled = getattr(ex, "settled", None)  # weak memory: buffers, propagation, late loads
    return settled is None or bool(settled())


def final_registers(ex: Execution, regs: dict[tuple[int, str], Any]) -> dict[tuple[int, str], Any]:
    """The registers at the end: a late load's register gets the value it was satisfied with."""
    lval = getattr(ex, "lval", None)
    out = {}
    for (t, r), v in regs.items():
        if isinstance(v, Late):
            v = lval[t][v.token] if lval is not None else 0
        out[(t, r)] = v
    return out


def program(lit: Litmus, cond: Cond | None = None, negate: bool = False) -> Program:
    """The litmus test as a program under SC (wrap with ``with_memory_model``);
    its invariant fails in a final state where ``cond`` (default: the test's
    condition; ``negate``: its negation) holds and the filter passes."""
    n = len(lit.threads)
    cond = cond or lit.cond

    def build(w: World) -> None:
        for loc in lit.locations:
            w.loc(loc, lit.init.get(loc, 0))
        regs: dict[tuple[int, str], Any] = {}
        w.litmus_regs = regs  # type: ignore[attr-defined]  # read by tests that collect final states
        w.observed = lambda: tuple(sorted(regs.items()))  # read by the final check: part of the state
        for tid, ins in enumerate(lit.threads):
            w.spawn(f"P{tid}", _Interp(lit, tid, regs).run(ins))

        def check(ex: Execution) -> str | None:
            if not _settled(ex, n):
                return None
            final = final_registers(ex, regs)
            if lit.filter is not None and not lit.filter.holds(final, ex.mem):
                return None
            if cond.holds(final, ex.mem) != negate:
                shown = ", ".join(f"{t}:{r}={v!r}" for (t, r), v in sorted(final.items()))
                what = f"~({cond.text})" if negate else f"({cond.text})"
                return f"{what} holds: {shown}; " + ", ".join(f"{x}={ex.mem[x]!r}" for x in lit.locations)
            return None

        w.add_invariant(Invariant("exists", "the litmus test's condition", (), check))
        w.check_deadlock = False

    return Program(f"litmus/{lit.name}", build, {"litmus": lit.path})


def run(lit: Litmus, model: str, *, max_seconds: float | None = None, stop: Any = None) -> Outcome:
    """Never / Sometimes / Always of the test's condition (herd7's Observation).
    ``stop`` (Ctrl-C) ends the search early, as a budget does: ``Unknown``."""
    prog = with_memory_model(program(lit), model)
    bounds = Bounds(max_steps=10_000, max_seconds=max_seconds)
    # power: sleep sets and the state cache, which merge the many orders of
    # propagation steps that end in the same state; stateless DPOR is sound
    # there too but re-explores them (IRIW+mbs: 6,756 executions cached,
    # 200,913 with DPOR; docs/memory-models.md)
    cache = model == "power"
    res = exhaustive(prog, bounds, dpor=True, cache=cache, stop=stop)
    execs, states, secs = res.stats.executions, res.stats.states, res.stats.seconds
    names = [a.name for a in Execution(prog).actors]
    witness = [(names[i], alt) for i, alt in res.schedule] if res.schedule else None
    if res.violation is None:
        return Outcome(model, "Never" if res.complete else "Unknown", execs, states, secs, None)
    neg = exhaustive(with_memory_model(program(lit, negate=True), model), bounds, dpor=True, cache=cache, stop=stop)
    execs, states, secs = execs + neg.stats.executions, states + neg.stats.states, secs + neg.stats.seconds
    if neg.violation is not None:
        verdict = "Sometimes"
    else:
        verdict = "Always" if neg.complete else "Unknown"
    return Outcome(model, verdict, execs, states, secs, witness)


def expected_for(lit: Litmus, model: str) -> str | None:
    """What the file expects of ``model``: its "Expected:" entry, else "Result:" for power
    (the kernel's Result lines are the LKMM's; power is vcoresim's closest model)."""
    if model in lit.expected:
        return lit.expected[model]
    if model == "power" and lit.result is not None:
        return lit.result
    return None


def shipped() -> list[Path]:
    """The litmus files shipped with vcoresim (package data)."""
    root = resources.files("vcoresim.litmus") / "tests"
    return sorted((Path(str(e)) for e in root.iterdir() if e.name.endswith(".litmus")), key=lambda p: p.name)


__all__ = ["MODELS", "Outcome", "expected_for", "final_registers", "program", "run", "shipped"]
