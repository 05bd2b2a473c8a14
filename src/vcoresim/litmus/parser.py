"""A parser for the subset of C litmus tests (herd7 / Linux kernel memory model) vcoresim runs.

Supported::

    C NAME
    (* comments; "Result: Never|Sometimes|Always" and the vcoresim extension
       "Expected: sc=Never tso=Sometimes pso=... power=..." are read from them *)
    { x=1; int y=2; }                      initial values (default 0); registers ignored
    P0(int *x, int *y, spinlock_t *s) {    one per thread, numbered from 0
        int r0;                            declarations (optionally "= N")
        WRITE_ONCE(*x, 1);                 value: integer or register
        r0 = READ_ONCE(*y);
        smp_store_release(x, 1);   r1 = smp_load_acquire(y);
        smp_mb();  smp_wmb();  smp_rmb();
        spin_lock(s);  spin_unlock(s);
    }
    exists (0:r0=0 /\\ 1:r0=0 \\/ ~(x=1))   registers N:rK, locations; /\\ \\/ ~ ( )

Anything else (if/else, atomics, filter, locations, forall) is refused with a
one-line error naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.errors import InputError
from vcoresim.files import MAX_LITMUS_BYTES, excerpt, read_text, show_path

VERDICTS = ("Never", "Sometimes", "Always")
BARRIERS = ("smp_mb", "smp_wmb", "smp_rmb")


class LitmusError(InputError):
    """A litmus file vcoresim cannot run; the message names the file and line."""


#: Limits of what vcoresim runs (the kernel's litmus tests are far smaller).
MAX_THREADS = 8
MAX_STATEMENTS = 64  # per thread
MAX_DIGITS = 18  # integer literals fit in 64 bits


@dataclass(frozen=True)
class Instr:
    """One statement: ("store", loc, value|reg), ("load", loc, reg), ("release", loc, v),
    ("acquire", loc, reg), ("barrier", kind), ("lock", loc), ("unlock", loc)."""

    op: str
    args: tuple[Any, ...]
    line: int


@dataclass
class Cond:
    """The ``exists`` clause as a tree: ("and"|"or", a, b), ("not", a), ("reg", tid, r, v), ("mem", loc, v)."""

    tree: tuple[Any, ...]
    text: str

    def holds(self, regs: dict[tuple[int, str], int], mem: dict[str, Any]) -> bool:
        return _eval(self.tree, regs, mem)


def _eval(t: tuple[Any, ...], regs: dict[tuple[int, str], int], mem: dict[str, Any]) -> bool:
    k = t[0]
    if k == "and":
        return _eval(t[1], regs, mem) and _eval(t[2], regs, mem)
    if k == "or":
        return _eval(t[1], regs, mem) or _eval(t[2], regs, mem)
    if k == "not":
        return not _eval(t[1], regs, mem)
    if k == "reg":
        return regs.get((t[1], t[2]), 0) == t[3]
    return mem.get(t[1], 0) == t[2]


@dataclass
class Litmus:
    name: str
    path: str
    init: dict[str, int]
    threads: list[list[Instr]]
    cond: Cond
    result: str | None = None  # the file's "Result:" line
    expected: dict[str, str] = field(default_factory=dict)  # "Expected: model=verdict ..."

    @property
    def locations(self) -> list[str]:
        locs = dict.fromkeys(self.init)
        for th in self.threads:
            for ins in th:
                if ins.op != "barrier":
                    locs.setdefault(ins.args[0])
        return list(locs)


_COMMENT = re.compile(r"\(\*.*?\*\)", re.S)
_ID = r"[A-Za-z_][A-Za-z0-9_]*"


def parse_file(path: str | Path) -> Litmus:
    try:
        text = read_text(path, "litmus", MAX_LITMUS_BYTES)
    except InputError as e:
        raise LitmusError(str(e)) from None
    return parse(text, show_path(path))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def parse(text: str, path: str = "<litmus>") -> Litmus:
    def err(pos: int, msg: str) -> LitmusError:
        return LitmusError(f"{path}:{_line_of(text, pos)}: {msg}")

    # Entry guards (the grammar below assumes them): size, integer literals, nesting.
    if len(text) > MAX_LITMUS_BYTES:
        raise LitmusError(f"{path}: larger than {MAX_LITMUS_BYTES >> 20} MiB")
    long = re.search(r"\d{%d,}" % (MAX_DIGITS + 1), text)
    if long is not None:
        raise err(long.start(), f"an integer of more than {MAX_DIGITS} digits")
    try:
        lit = _parse(text, path, err)
    except RecursionError:
        raise LitmusError(f"{path}: exists: nested too deeply") from None
    _check_limits_and_locks(lit, err, text)
    return lit


def _check_limits_and_locks(lit: Litmus, err: Any, text: str) -> None:
    """At most ``MAX_THREADS`` threads of ``MAX_STATEMENTS`` statements; locks used only
    as locks (never read or written as data, initially free), each unlocked only by the
    thread holding it, and never taken again by the thread that holds it."""
    if len(lit.threads) > MAX_THREADS:
        raise LitmusError(f"{lit.path}: {len(lit.threads)} threads; vcoresim runs at most {MAX_THREADS}")
    locks = {i.args[0] for th in lit.threads for i in th if i.op in ("lock", "unlock")}
    for tid, th in enumerate(lit.threads):
        if len(th) > MAX_STATEMENTS:
            raise LitmusError(f"{lit.path}:{th[MAX_STATEMENTS].line}: P{tid} has {len(th)} statements; vcoresim runs at most {MAX_STATEMENTS}")
        held: set[str] = set()
        for i in th:
            if i.op in ("lock", "unlock"):
                loc = i.args[0]
                if i.op == "lock" and loc in held:
                    raise LitmusError(f"{lit.path}:{i.line}: P{tid}: spin_lock({loc}) while it holds {loc} (a self-deadlock)")
                if i.op == "unlock" and loc not in held:
                    raise LitmusError(f"{lit.path}:{i.line}: P{tid}: spin_unlock({loc}) without a spin_lock({loc}) before it in P{tid}")
                (held.add if i.op == "lock" else held.discard)(loc)
            elif i.op != "barrier" and i.args[0] in locks:
                raise LitmusError(f"{lit.path}:{i.line}: P{tid}: {i.args[0]} is a lock; it is read and written only by spin_lock/spin_unlock")
    for loc in locks:
        if lit.init.get(loc, 0) != 0:
            raise LitmusError(f"{lit.path}: initial state: lock {loc} must start free (0)")


def _parse(text: str, path: str, err: Any) -> Litmus:
    result = None
    expected: dict[str, str] = {}
    for m in _COMMENT.finditer(text):
        body = m.group(0)
        r = re.search(r"Result:\s*(\w+)", body)
        if r:
            if r.group(1) not in VERDICTS:
                raise err(m.start() + r.start(1), f"Result: expected one of {', '.join(VERDICTS)}, got {r.group(1)!r}")
            result = r.group(1)
        e = re.search(r"Expected:([^\n]*)", body)
        if e:
            for item in e.group(1).split():
                model, sep, verdict = item.partition("=")
                if not sep or verdict not in VERDICTS:
                    raise err(m.start() + e.start(1), f"Expected: expected MODEL=Never|Sometimes, got {item!r}")
                expected[model] = verdict
    # Blank comments out (keeping line numbers) so positions stay true.
    clean = _COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    clean = re.sub(r"//[^\n]*", lambda m: " " * len(m.group(0)), clean)
    clean = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), clean, flags=re.S)

    m = re.match(r"\s*(\S+)[ \t]+(\S+)", clean)
    if not m:
        raise err(0, "expected a header line 'C NAME'")
    if m.group(1) != "C":
        raise err(m.start(1), f"only C litmus tests are supported, not {m.group(1)!r}")
    name = m.group(2)
    pos = m.end()
    # Initial state.
    m = re.compile(r"\s*\{(.*?)\}", re.S).match(clean, pos)
    if not m:
        raise err(pos, "expected the initial state '{ ... }'")
    init: dict[str, int] = {}
    for stmt in m.group(1).split(";"):
        s = stmt.strip()
        if not s:
            continue
        im = re.fullmatch(rf"(?:(?:int|long|unsigned|spinlock_t|atomic_t)\s+)*\*?({_ID}|\d+:{_ID})\s*=\s*(-?\d+)", s)
        if not im:
            raise err(m.start(1), f"initial state: cannot read {excerpt(s)} (expected 'x=N;')")
        if ":" not in im.group(1):
            init[im.group(1)] = int(im.group(2))
    pos = m.end()
    threads: list[list[Instr]] = []
    thread_re = re.compile(r"\s*P(\d+)\s*\(([^)]*)\)\s*\{", re.S)
    while True:
        m = thread_re.match(clean, pos)
        if not m:
            break
        if int(m.group(1)) != len(threads):
            raise err(m.start(1), f"thread P{m.group(1)}: expected P{len(threads)} (threads are numbered in order from 0)")
        close = clean.find("}", m.end())
        if close < 0:
            raise err(m.start(), f"thread P{m.group(1)}: no closing '}}'")
        if "{" in clean[m.end() : close]:
            raise err(m.end() + clean[m.end() : close].index("{"), f"P{m.group(1)}: nested blocks (if/else, loops) are not supported")
        threads.append(_parse_body(clean, m.end(), close, err))
        pos = close + 1
    if not threads:
        raise err(pos, "expected at least one thread 'P0(...) { ... }'")
    rest = clean[pos:].strip()
    cm = re.match(r"exists\b", rest)
    if not cm:
        word = rest.split()[0] if rest.split() else "end of file"
        raise err(pos + clean[pos:].find(rest[:1]) if rest else len(clean), f"expected 'exists (...)', got {word!r} (only 'exists' clauses are supported)")
    cond_text = rest[cm.end() :].strip()
    cond_pos = clean.index(cond_text, pos) if cond_text else len(clean)
    tree = _CondParser(cond_text, lambda off, msg: err(cond_pos + off, msg)).parse()
    lit = Litmus(name, path, init, threads, Cond(tree, " ".join(cond_text.split())), result, expected)
    for th_id, reg in _cond_regs(tree):
        if th_id >= len(threads):
            raise err(cond_pos, f"exists: register {th_id}:{reg} names a thread that does not exist")
    return lit


def _cond_regs(t: tuple[Any, ...]) -> list[tuple[int, str]]:
    if t[0] in ("and", "or"):
        return _cond_regs(t[1]) + _cond_regs(t[2])
    if t[0] == "not":
        return _cond_regs(t[1])
    return [(t[1], t[2])] if t[0] == "reg" else []


_STMTS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(rf"(?:int|long|unsigned)\s+{_ID}(?:\s*=\s*-?\d+)?(?:\s*,\s*{_ID}(?:\s*=\s*-?\d+)?)*"), "decl"),
    (re.compile(rf"WRITE_ONCE\(\s*\*\s*({_ID})\s*,\s*(-?\d+|{_ID})\s*\)"), "store"),
    (re.compile(rf"({_ID})\s*=\s*READ_ONCE\(\s*\*\s*({_ID})\s*\)"), "load"),
    (re.compile(rf"smp_store_release\(\s*&?\s*({_ID})\s*,\s*(-?\d+|{_ID})\s*\)"), "release"),
    (re.compile(rf"({_ID})\s*=\s*smp_load_acquire\(\s*&?\s*({_ID})\s*\)"), "acquire"),
    (re.compile(rf"({'|'.join(BARRIERS)})\(\s*\)"), "barrier"),
    (re.compile(rf"spin_lock\(\s*&?\s*({_ID})\s*\)"), "lock"),
    (re.compile(rf"spin_unlock\(\s*&?\s*({_ID})\s*\)"), "unlock"),
]


def _parse_body(text: str, start: int, end: int, err: Any) -> list[Instr]:
    out: list[Instr] = []
    regs: set[str] = set()
    pos = start
    for stmt in text[start:end].split(";"):
        s = stmt.strip()
        at = pos + (len(stmt) - len(stmt.lstrip()))
        pos += len(stmt) + 1
        if not s:
            continue
        line = _line_of(text, at)
        for rx, kind in _STMTS:
            m = rx.fullmatch(s)
            if m is None:
                continue
            if kind == "decl":
                for part in s.split(None, 1)[1].split(","):
                    regs.add(part.split("=")[0].strip())
            elif kind in ("store", "release"):
                v = m.group(2)
                out.append(Instr(kind, (m.group(1), int(v) if re.fullmatch(r"-?\d+", v) else v), line))
            elif kind in ("load", "acquire"):
                regs.add(m.group(1))
                out.append(Instr(kind, (m.group(2), m.group(1)), line))
            elif kind == "barrier":
                out.append(Instr(kind, (m.group(1),), line))
            else:
                out.append(Instr(kind, (m.group(1),), line))
            break
        else:
            raise err(at, f"unsupported statement {excerpt(s)} (see 'vcoresim litmus --help' for the subset)")
    return out


class _CondParser:
    """exists-clause grammar: or := and ('\\/' and)*; and := not ('/\\' not)*; not := '~' not | atom."""

    def __init__(self, text: str, err: Any) -> None:
        self.s = text
        self.i = 0
        self.err = err

    def _ws(self) -> None:
        while self.i < len(self.s) and self.s[self.i].isspace():
            self.i += 1

    def _eat(self, tok: str) -> bool:
        self._ws()
        if self.s.startswith(tok, self.i):
            self.i += len(tok)
            return True
        return False

    def parse(self) -> tuple[Any, ...]:
        if not self.s:
            raise self.err(0, "exists: empty condition")
        t = self._or()
        self._ws()
        if self.i != len(self.s):
            raise self.err(self.i, f"exists: unexpected {self.s[self.i:self.i + 10]!r}")
        return t

    def _or(self) -> tuple[Any, ...]:
        t = self._and()
        while self._eat("\\/"):
            t = ("or", t, self._and())
        return t

    def _and(self) -> tuple[Any, ...]:
        t = self._not()
        while self._eat("/\\"):
            t = ("and", t, self._not())
        return t

    def _not(self) -> tuple[Any, ...]:
        if self._eat("~"):
            return ("not", self._not())
        if self._eat("("):
            t = self._or()
            if not self._eat(")"):
                raise self.err(self.i, "exists: expected ')'")
            return t
        self._ws()
        m = re.compile(rf"(?:(\d+):({_ID})|\*?({_ID}))\s*=\s*(-?\d+)").match(self.s, self.i)
        if not m:
            raise self.err(self.i, f"exists: expected 'N:reg=V' or 'loc=V' at {self.s[self.i:self.i + 12]!r}")
        self.i = m.end()
        if m.group(1) is not None:
            return ("reg", int(m.group(1)), m.group(2), int(m.group(4)))
        return ("mem", m.group(3), int(m.group(4)))
