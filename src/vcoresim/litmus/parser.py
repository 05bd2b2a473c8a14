"""A parser for C litmus tests (herd7's C dialect, as the Linux kernel's
``tools/memory-model/litmus-tests`` and ``Documentation/litmus-tests`` use it).

Accepted::

    C NAME
    (* comments; "Result: Never|Sometimes|Always" and the vcoresim extension
       "Expected: sc=Never tso=Sometimes pso=... power=..." are read from them *)
    { x=1; int y=2; p=y; atomic_t v = ATOMIC_INIT(1); 0:r1=0; }
    P0(int *x, int **p, spinlock_t *s, atomic_t *v) {   threads, numbered from 0
        int r0; int *r1;                       declarations (optionally "= E")
        WRITE_ONCE(*x, E);  r0 = READ_ONCE(*x);  r1 = READ_ONCE(*p);  r2 = READ_ONCE(*r1);
        smp_store_release(x, E); smp_load_acquire(x); rcu_assign_pointer(*p, x);
        rcu_dereference(*p); smp_store_mb(*x, E);
        smp_mb(); smp_wmb(); smp_rmb(); smp_mb__before_atomic(); smp_mb__after_atomic();
        smp_mb__after_spinlock(); smp_mb__after_unlock_lock(); barrier();
        rcu_read_lock(); rcu_read_unlock();        (no-ops: the test has no grace period)
        xchg*(x, E); cmpxchg*(x, E, E); atomic_xchg*, atomic_cmpxchg*, atomic_read*,
        atomic_set*, atomic_{add,sub,inc,dec}[_return][_relaxed|_acquire|_release],
        atomic_fetch_*, atomic_*_and_test, atomic_add_negative, atomic_add_unless;
        spin_lock(s); spin_unlock(s); spin_trylock(s); spin_is_locked(s);
        if (E) S else S;   { ... }   r = E;   (void)E;
    }
    locations [x; 0:r0;]  filter (...)  exists (...) | ~exists (...) | forall (...)

E is C arithmetic over integers, registers and addresses (``x`` is the address
of location ``x``).  Anything else (``synchronize_rcu``, SRCU, loops, arrays,
``atomic_long_*``...) is refused with one line naming the construct, the file
and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vcoresim.errors import InputError
from vcoresim.files import MAX_LITMUS_BYTES, read_text, show_path

VERDICTS = ("Never", "Sometimes", "Always")
BARRIERS = ("smp_mb", "smp_wmb", "smp_rmb")

# Fences the language accepts, as the engine's barrier kinds (None: no effect on memory order).
FENCES: dict[str, str | None] = {
    "smp_mb": "smp_mb",
    "smp_wmb": "smp_wmb",
    "smp_rmb": "smp_rmb",
    "smp_mb__before_atomic": "smp_mb",
    "smp_mb__after_atomic": "smp_mb",
    "smp_mb__after_spinlock": "smp_mb",
    "smp_mb__after_unlock_lock": "smp_mb",
    "barrier": None,
    "rcu_read_lock": None,
    "rcu_read_unlock": None,
}
ORDERS = ("mb", "relaxed", "acquire", "release")


class LitmusError(InputError):
    """A litmus file vcoresim cannot run; the message names the file and line."""


#: Limits of what vcoresim runs (the kernel's litmus tests are far smaller).
MAX_THREADS = 8
MAX_STATEMENTS = 64  # per thread, top level
MAX_DIGITS = 18  # integer literals fit in 64 bits


@dataclass(frozen=True)
class Instr:
    """One statement.

    Simple forms (also built directly by tests): ("store", loc, value), ("load", loc, reg),
    ("release", loc, value), ("acquire", loc, reg), ("barrier", kind), ("lock", loc),
    ("unlock", loc).  A ``loc`` is a location name or an expression (a pointer held in a
    register); a ``value`` an int, a register name or an expression.
    General forms: ("assign", reg, expr), ("expr", expr), ("if", expr, [Instr], [Instr]),
    ("fence", name).  Expressions are tuples: ("int", n), ("reg", r), ("addr", x),
    ("bin", op, a, b), ("un", op, a), ("call", name, (args...), line).
    """

    op: str
    args: tuple[Any, ...]
    line: int


@dataclass
class Cond:
    """A final-state condition: ("and"|"or", a, b), ("not", a), ("true",),
    ("reg", tid, r, v), ("mem", loc, v); ``v`` an int or an address ("addr", x)."""

    tree: tuple[Any, ...]
    text: str

    def holds(self, regs: dict[tuple[int, str], Any], mem: dict[str, Any]) -> bool:
        return _eval(self.tree, regs, mem)


def _norm(v: Any) -> Any:
    return v if not isinstance(v, tuple) else v[1]


def _eval(t: tuple[Any, ...], regs: dict[tuple[int, str], Any], mem: dict[str, Any]) -> bool:
    k = t[0]
    if k == "and":
        return _eval(t[1], regs, mem) and _eval(t[2], regs, mem)
    if k == "or":
        return _eval(t[1], regs, mem) or _eval(t[2], regs, mem)
    if k == "not":
        return not _eval(t[1], regs, mem)
    if k == "true":
        return True
    if k == "reg":
        return _same(regs.get((t[1], t[2]), 0), t[3])
    return _same(mem.get(t[1], 0), t[2])


def _same(actual: Any, want: Any) -> bool:
    if isinstance(want, tuple):  # an address
        return isinstance(actual, Addr) and actual.loc == want[1]
    return not isinstance(actual, Addr) and actual == want


@dataclass(frozen=True)
class Addr:
    """The address of a location, as a value (pointers in registers and memory)."""

    loc: str

    def __repr__(self) -> str:
        return self.loc


@dataclass
class Litmus:
    name: str
    path: str
    init: dict[str, Any]
    threads: list[list[Instr]]
    cond: Cond
    result: str | None = None  # the file's "Result:" line
    expected: dict[str, str] = field(default_factory=dict)  # "Expected: model=verdict ..."
    quantifier: str = "exists"  # exists | ~exists | forall
    filter: Cond | None = None
    params: list[list[str]] = field(default_factory=list)  # each thread's pointer parameters
    reg_init: dict[tuple[int, str], Any] = field(default_factory=dict)

    @property
    def locations(self) -> list[str]:
        locs: dict[str, None] = dict.fromkeys(self.init)
        for ps in self.params:
            locs.update(dict.fromkeys(ps))
        for th in self.threads:
            _static_locs(th, locs)
        for v in (*self.init.values(), *self.reg_init.values()):
            if isinstance(v, Addr):
                locs.setdefault(v.loc)
        _addrs((self.cond.tree, self.filter.tree if self.filter else ()), locs)
        return list(locs)


def _static_locs(instrs: list[Instr], locs: dict[str, None]) -> None:
    for ins in instrs:
        if ins.op in ("store", "load", "release", "acquire", "lock", "unlock") and isinstance(ins.args[0], str):
            locs.setdefault(ins.args[0])
        if ins.op == "if":
            _addrs(ins.args[0], locs)
            _static_locs(ins.args[1], locs)
            _static_locs(ins.args[2], locs)
        else:
            _addrs(ins.args, locs)


def _addrs(t: Any, locs: dict[str, None]) -> None:
    """Locations named as address values (("addr", x)) anywhere in ``t``."""
    if isinstance(t, tuple):
        if len(t) == 2 and t[0] == "addr" and isinstance(t[1], str):
            locs.setdefault(t[1])
            return
        for e in t:
            _addrs(e, locs)
    elif isinstance(t, list):
        for e in t:
            _addrs(e, locs)


_ID = r"[A-Za-z_][A-Za-z0-9_]*"
_OCAML_COMMENT = re.compile(r"\(\*.*?\*\)", re.DOTALL)


def parse_file(path: str | Path) -> Litmus:
    try:
        text = read_text(path, "litmus", MAX_LITMUS_BYTES)
    except InputError as e:
        raise LitmusError(str(e)) from None
    return parse(text, show_path(path))


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _blank(m: re.Match[str]) -> str:
    return re.sub(r"[^\n]", " ", m.group(0))


def _blank_c_comments(s: str) -> str:
    s = re.sub(r"/\*.*?\*/", _blank, s, flags=re.DOTALL)
    return re.sub(r"//[^\n]*", _blank, s)


def parse(text: str, path: str = "<litmus>") -> Litmus:
    """Entry guards (the grammar in :func:`_parse` assumes them): size, integer
    literals, nesting depth, threads and statements; then the grammar."""
    if len(text) > MAX_LITMUS_BYTES:
        raise LitmusError(f"{path}: larger than {MAX_LITMUS_BYTES >> 20} MiB")
    long = re.search(r"\d{%d,}" % (MAX_DIGITS + 1), text)
    if long is not None:
        raise LitmusError(f"{path}:{_line_of(text, long.start())}: an integer of more than {MAX_DIGITS} digits")
    try:
        lit = _parse(text, path)
    except RecursionError:
        raise LitmusError(f"{path}: nested too deeply (conditions, expressions or blocks)") from None
    if len(lit.threads) > MAX_THREADS:
        raise LitmusError(f"{path}: {len(lit.threads)} threads; vcoresim runs at most {MAX_THREADS}")
    for tid, th in enumerate(lit.threads):
        if len(th) > MAX_STATEMENTS:
            raise LitmusError(f"{path}:{th[MAX_STATEMENTS].line}: P{tid} has {len(th)} statements; vcoresim runs at most {MAX_STATEMENTS}")
    return lit


def _parse(text: str, path: str = "<litmus>") -> Litmus:
    def err(pos: int, msg: str) -> LitmusError:
        return LitmusError(f"{path}:{_line_of(text, pos)}: {msg}")

    m = re.match(r"\s*(\S+)[ \t]+(\S+)", text)
    if not m:
        raise err(0, "expected a header line 'C NAME'")
    if m.group(1) != "C":
        raise err(m.start(1), f"only C litmus tests are supported, not {m.group(1)!r}")
    name = m.group(2)
    # OCaml comments (* ... *) belong to herd's header, initial state and
    # condition; C code has C comments only, so "(*x" in code is code.
    head_end = _first_thread(text, m.end())
    result, expected = _annotations(text, m.end(), head_end, err)
    head = _OCAML_COMMENT.sub(_blank, text[:head_end])
    head = _blank_c_comments(head)
    # herd's header may carry a doc string and Key=Value lines (diy7's output).
    brace = head.find("{", m.end())
    if brace > 0:
        meta = re.sub(r'(?m)^[ \t]*("[^"\n]*"|[A-Za-z][A-Za-z0-9_]*=[^\n]*)[ \t]*$', lambda x: " " * len(x.group(0)), head[m.end() : brace])
        head = head[: m.end()] + meta + head[brace:]
    im = re.compile(r"\s*\{(.*?)\}", re.DOTALL).match(head, m.end())
    if not im:
        raise err(m.end(), "expected the initial state '{ ... }'")
    init, reg_init = _parse_init(head, im.start(1), im.group(1), err)
    rest = head[im.end() :].strip()
    if rest:
        raise err(im.end() + head[im.end() :].index(rest[0]), f"expected a thread 'P0(...) {{', got {rest.split()[0]!r}")
    threads: list[list[Instr]] = []
    params: list[list[str]] = []
    pos = head_end
    code = _blank_c_comments(text)
    thread_re = re.compile(r"\s*P(\d+)\s*\(([^)]*)\)\s*\{", re.DOTALL)
    while True:
        tm = thread_re.match(code, pos)
        if not tm:
            break
        if int(tm.group(1)) != len(threads):
            raise err(tm.start(1), f"thread P{tm.group(1)}: expected P{len(threads)} (threads are numbered in order from 0)")
        close = _matching_brace(code, tm.end() - 1)
        if close < 0:
            raise err(tm.start(), f"thread P{tm.group(1)}: no closing '}}'")
        ps = _params(code, tm.start(2), tm.group(2), err)
        params.append(ps)
        toks = _tokens(code, tm.end(), close, err)
        body = _BodyParser(toks, code, err, set(ps), set(init), reg_init, len(threads)).parse()
        threads.append(body)
        pos = close + 1
    if not threads:
        raise err(pos, "expected at least one thread 'P0(...) { ... }'")
    tail = _OCAML_COMMENT.sub(_blank, text[pos:])
    tail = _blank_c_comments(tail)
    quant, tree, cond_text, filt = _parse_tail(tail, pos, err, len(threads))
    lit = Litmus(name, path, init, threads, Cond(tree, cond_text), result, expected, quant, filt, params, reg_init)
    for th_id, reg in _cond_regs(tree) + (_cond_regs(filt.tree) if filt else []):
        if th_id >= len(threads):
            raise err(pos, f"exists: register {th_id}:{reg} names a thread that does not exist")
    return lit


def _first_thread(text: str, start: int) -> int:
    """Where the first thread starts (the header and initial state end)."""
    clean = _OCAML_COMMENT.sub(_blank, text)
    clean = _blank_c_comments(clean)
    m = re.compile(r"\bP0\s*\(").search(clean, start)
    return m.start() if m else len(text)


def _annotations(text: str, start: int, end: int, err: Any) -> tuple[str | None, dict[str, str]]:
    result = None
    expected: dict[str, str] = {}
    for m in _OCAML_COMMENT.finditer(text, start, end):
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
    return result, expected


def _matching_brace(s: str, open_pos: int) -> int:
    depth = 0
    for i in range(open_pos, len(s)):
        c = s[i]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


_TYPES = ("int", "long", "unsigned", "spinlock_t", "atomic_t", "intptr_t", "u32", "u64")


def _parse_init(text: str, base: int, body: str, err: Any) -> tuple[dict[str, Any], dict[tuple[int, str], Any]]:
    init: dict[str, Any] = {}
    regs: dict[tuple[int, str], Any] = {}
    pos = base
    for stmt in body.split(";"):
        s = stmt.strip()
        at = pos + (len(stmt) - len(stmt.lstrip()))
        pos += len(stmt) + 1
        if not s:
            continue
        im = re.fullmatch(rf"((?:(?:{'|'.join(_TYPES)}|const|volatile)\s*\**\s*)*)(\**\s*)((?:\d+:)?{_ID})\s*(?:=\s*(.+))?", s, re.DOTALL)
        if not im:
            raise err(at, f"initial state: cannot read {s!r} (expected '[type] x = value;')")
        name, v = im.group(3), (im.group(4) or "0").strip()
        if re.fullmatch(r"-?\d+", v):
            val: Any = int(v)
        elif am := re.fullmatch(r"ATOMIC_INIT\(\s*(-?\d+)\s*\)", v):
            val = int(am.group(1))
        elif am := re.fullmatch(rf"&?\s*({_ID})", v):
            val = Addr(am.group(1))
        else:
            raise err(at, f"initial state: unsupported value {v!r} for {name}")
        if ":" in name:
            tid, reg = name.split(":")
            regs[(int(tid), reg)] = val
        else:
            init[name] = val
    return init, regs


def _params(text: str, base: int, body: str, err: Any) -> list[str]:
    out = []
    for part in body.split(","):
        p = part.strip()
        if not p:
            continue
        m = re.fullmatch(rf"(?:(?:{'|'.join(_TYPES)}|const|volatile|struct\s+{_ID})\s*)+(\*+)\s*({_ID})", p)
        if not m:
            raise err(base + body.find(p), f"thread parameter {p!r}: expected a pointer 'int *x'")
        out.append(m.group(2))
    return out


_TOKEN = re.compile(r"\s*(?:(?P<num>0x[0-9a-fA-F]+|\d+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>==|!=|<=|>=|&&|\|\||<<|>>|->|[-+*/%&|^!~<>=(){},;?:\[\].]))")


def _tokens(text: str, start: int, end: int, err: Any) -> list[tuple[str, str, int]]:
    toks = []
    pos = start
    while pos < end:
        m = _TOKEN.match(text, pos, end)
        if not m:
            if text[pos:end].strip() == "":
                break
            bad = pos + len(text[pos:end]) - len(text[pos:end].lstrip())
            raise err(bad, f"unexpected character {text[bad]!r}")
        kind = m.lastgroup or "op"
        toks.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return toks


# Calls returning a value, by name: (kind, details).
def _call_kind(name: str) -> tuple[str, Any] | None:
    if name in ("READ_ONCE", "rcu_dereference", "atomic_read"):
        return ("load", None)
    if name in ("smp_load_acquire", "atomic_read_acquire"):
        return ("acquire", None)
    if name in ("spin_trylock", "spin_is_locked"):
        return (name, None)
    m = re.fullmatch(r"(atomic_)?(xchg|cmpxchg)(?:_(relaxed|acquire|release))?", name)
    if m:
        return (m.group(2), m.group(3) or "mb")
    m = re.fullmatch(r"atomic_(add|sub|inc|dec)_return(?:_(relaxed|acquire|release))?", name)
    if m:
        return ("op_return", (m.group(1), m.group(2) or "mb"))
    m = re.fullmatch(r"atomic_fetch_(add|sub|inc|dec|or|and|xor|andnot)(?:_(relaxed|acquire|release))?", name)
    if m:
        return ("fetch_op", (m.group(1), m.group(2) or "mb"))
    m = re.fullmatch(r"atomic_(add|sub|inc|dec)_and_test", name)
    if m:
        return ("and_test", m.group(1))
    if name == "atomic_add_negative":
        return ("add_negative", None)
    if name == "atomic_add_unless":
        return ("add_unless", None)
    return None


# Statements that return nothing: name -> (kind, detail).
def _void_kind(name: str) -> tuple[str, Any] | None:
    if name in ("WRITE_ONCE", "atomic_set"):
        return ("store", None)
    if name in ("smp_store_release", "atomic_set_release", "rcu_assign_pointer"):
        return ("release", None)
    if name == "smp_store_mb":
        return ("store_mb", None)
    if name in FENCES:
        return ("fence", FENCES[name])
    if name in ("spin_lock", "spin_unlock"):
        return (name, None)
    m = re.fullmatch(r"atomic_(add|sub|inc|dec|or|and|xor|andnot)", name)
    if m:
        return ("op", m.group(1))
    return None


_ARITY = {
    "load": 1, "acquire": 1, "spin_trylock": 1, "spin_is_locked": 1, "xchg": 2, "cmpxchg": 3,
    "store": 2, "release": 2, "store_mb": 2, "fence": 0, "spin_lock": 1, "spin_unlock": 1,
    "and_test": None, "add_negative": 2, "add_unless": 3,
}  # fmt: skip


class _BodyParser:
    """Recursive descent over one thread's tokens (C statements and expressions)."""

    def __init__(self, toks: list[tuple[str, str, int]], text: str, err: Any, params: set[str], globs: set[str], reg_init: dict[tuple[int, str], Any], tid: int) -> None:
        self.t = toks
        self.i = 0
        self.text = text
        self.err = err
        self.params = params
        self.globs = globs
        self.regs: set[str] = {r for (t, r) in reg_init if t == tid}

    # -- tokens
    def _peek(self, k: int = 0) -> tuple[str, str, int]:
        j = self.i + k
        if j < len(self.t):
            return self.t[j]
        end = self.t[-1][2] + len(self.t[-1][1]) if self.t else 0
        return ("eof", "end of thread", end)

    def _next(self) -> tuple[str, str, int]:
        tok = self._peek()
        self.i += 1
        return tok

    def _is(self, val: str) -> bool:
        k, v, _ = self._peek()
        return k != "eof" and v == val

    def _expect(self, val: str) -> None:
        k, v, p = self._next()
        if v != val or k == "eof":
            raise self.err(p, f"expected {val!r}, got {v!r}")

    def _line(self, pos: int) -> int:
        return _line_of(self.text, pos)

    # -- statements
    def parse(self) -> list[Instr]:
        out: list[Instr] = []
        while self._peek()[0] != "eof":
            out.extend(self._stmt())
        return out

    def _block_or_stmt(self) -> list[Instr]:
        if self._is("{"):
            self._next()
            out: list[Instr] = []
            while not self._is("}"):
                if self._peek()[0] == "eof":
                    raise self.err(self._peek()[2], "no closing '}'")
                out.extend(self._stmt())
            self._next()
            return out
        return self._stmt()

    def _stmt(self) -> list[Instr]:
        k, v, p = self._peek()
        line = self._line(p)
        if v == ";":
            self._next()
            return []
        if v == "{":
            return self._block_or_stmt()
        if v == "if":
            self._next()
            self._expect("(")
            cond = self._expr()
            self._expect(")")
            then = self._block_or_stmt()
            other: list[Instr] = []
            if self._is("else"):
                self._next()
                other = self._block_or_stmt()
            return [Instr("if", (cond, then, other), line)]
        if v in ("while", "for", "do", "switch", "goto", "return", "break", "continue"):
            raise self.err(p, f"unsupported construct {v!r}")
        if v in _TYPES or v in ("const", "volatile"):
            return self._decl()
        if v == "(" and self._peek(1)[1] == "void" and self._peek(2)[1] == ")":
            self.i += 3
            e = self._expr()
            self._expect(";")
            return [Instr("expr", (e,), line)]
        if k == "id" and self._peek(1)[1] == "=" and self._peek(2)[1] != "=":
            reg = v
            self._check_reg(reg, p)
            self.i += 2
            e = self._expr()
            self._expect(";")
            return [self._assign(reg, e, line)]
        if k == "id" and self._peek(1)[1] == "(":
            vk = _void_kind(v)
            if vk is not None:
                return self._void_call(v, vk, line)
        e = self._expr()
        self._expect(";")
        return [Instr("expr", (e,), line)]

    def _check_reg(self, reg: str, pos: int) -> None:
        if reg in self.params:
            raise self.err(pos, f"assignment to the pointer parameter {reg!r} (only registers can be assigned)")
        self.regs.add(reg)

    def _decl(self) -> list[Instr]:
        out: list[Instr] = []
        while self._peek()[1] in (*_TYPES, "const", "volatile"):
            self._next()
        while True:
            while self._is("*"):
                self._next()
            k, v, p = self._next()
            if k != "id":
                raise self.err(p, f"declaration: expected a register name, got {v!r}")
            if self._is("["):
                raise self.err(p, "unsupported construct: arrays")
            self.regs.add(v)
            if self._is("="):
                self._next()
                e = self._expr()
                out.append(self._assign(v, e, self._line(p)))
            if self._is(","):
                self._next()
                continue
            self._expect(";")
            return out

    def _assign(self, reg: str, e: tuple[Any, ...], line: int) -> Instr:
        if e[0] == "call" and e[1] == "__load":
            return Instr(e[2][1], (e[2][0], reg), line)  # "load" | "acquire"
        return Instr("assign", (reg, e), line)

    def _void_call(self, name: str, vk: tuple[str, Any], line: int) -> list[Instr]:
        _, _, p = self._next()
        args = self._args(name, p)
        self._expect(";")
        kind, detail = vk
        if kind == "fence":
            if args:
                raise self.err(p, f"{name}() takes no arguments")
            return [Instr("barrier", (detail,), line)] if detail else []
        if kind in ("store", "release", "store_mb"):
            if len(args) != 2:
                raise self.err(p, f"{name} takes 2 arguments")
            loc = self._loc(args[0], deref=name in ("WRITE_ONCE", "rcu_assign_pointer", "smp_store_mb"), pos=p)
            val = args[1]
            if kind == "store_mb":
                return [Instr("store", (loc, val), line), Instr("barrier", ("smp_mb",), line)]
            return [Instr(kind, (loc, val), line)]
        if kind in ("spin_lock", "spin_unlock"):
            if len(args) != 1:
                raise self.err(p, f"{name} takes 1 argument")
            return [Instr("lock" if kind == "spin_lock" else "unlock", (self._loc(args[0], False, p),), line)]
        # atomic_add(V, X), atomic_inc(X) ...: a value-less RMW (relaxed, as the LKMM)
        op = detail
        if op in ("inc", "dec"):
            if len(args) != 1:
                raise self.err(p, f"{name} takes 1 argument")
            loc, operand = args[0], ("int", 1)
        else:
            if len(args) != 2:
                raise self.err(p, f"{name} takes 2 arguments")
            operand, loc = args
        e = ("call", "__atomic_op", (self._loc(loc, False, p), _ARITH[op], operand, "relaxed", "old"), line)
        return [Instr("expr", (e,), line)]

    def _loc(self, e: tuple[Any, ...], deref: bool, pos: int) -> Any:
        """A location argument: ``*x`` (deref) or ``x`` (a pointer): a static name or a register expression."""
        if deref:
            if e[0] != "deref":
                raise self.err(pos, "expected '*pointer' as the first argument")
            e = e[1]
        elif e[0] == "deref":
            raise self.err(pos, "expected a pointer, not '*pointer'")
        if e[0] == "addr":
            return e[1]
        if e[0] == "reg":
            return e
        raise self.err(pos, "a location must be a pointer parameter or a register holding an address")

    def _args(self, name: str, pos: int) -> list[tuple[Any, ...]]:
        self._expect("(")
        args: list[tuple[Any, ...]] = []
        if self._is(")"):
            self._next()
            return args
        while True:
            if self._is("*"):  # '*p' names the location p points to (READ_ONCE(*p))
                self._next()
                args.append(("deref", self._unary()))
            else:
                args.append(self._expr())
            if self._is(","):
                self._next()
                continue
            self._expect(")")
            return args

    # -- expressions (C precedence, the usual subset)
    _BIN: tuple[tuple[str, ...], ...] = (("||",), ("&&",), ("|",), ("^",), ("&",), ("==", "!="), ("<", ">", "<=", ">="), ("<<", ">>"), ("+", "-"), ("*", "/", "%"))

    def _expr(self, level: int = 0) -> tuple[Any, ...]:
        if level == len(self._BIN):
            return self._unary()
        left = self._expr(level + 1)
        while self._peek()[0] == "op" and self._peek()[1] in self._BIN[level]:
            _, op, _ = self._next()
            right = self._expr(level + 1)
            left = ("bin", op, left, right)
        if level == 0 and self._is("?"):
            raise self.err(self._peek()[2], "unsupported construct '?:'")
        return left

    def _unary(self) -> tuple[Any, ...]:
        k, v, p = self._peek()
        if k == "op" and v in ("!", "-", "~"):
            self._next()
            return ("un", v, self._unary())
        if k == "op" and v == "*":
            raise self.err(p, "plain C access '*...' is not supported (use READ_ONCE/WRITE_ONCE)")
        if k == "op" and v == "&":
            self._next()
            k2, v2, p2 = self._next()
            if k2 != "id" or v2 not in self.globs | self.params:
                raise self.err(p2, f"'&' of {v2!r}: only '&location' is supported")
            return ("addr", v2)
        return self._primary()

    def _primary(self) -> tuple[Any, ...]:
        k, v, p = self._next()
        if k == "num":
            return ("int", int(v, 0))
        if v == "(":
            e = self._expr()
            self._expect(")")
            return e
        if k == "id":
            if self._is("("):
                return self._call(v, p)
            if v in self.params:
                return ("addr", v)
            if v in self.regs:
                return ("reg", v)
            if v in ("true", "false"):
                return ("int", int(v == "true"))
            raise self.err(p, f"unknown name {v!r} (not a register or pointer parameter)")
        raise self.err(p, f"unexpected {v!r}")

    def _call(self, name: str, pos: int) -> tuple[Any, ...]:
        line = self._line(pos)
        ck = _call_kind(name)
        if ck is None:
            if _void_kind(name) is not None:
                raise self.err(pos, f"{name}() returns no value")
            raise self.err(pos, f"unsupported construct {name}()")
        args = self._args(name, pos)
        kind, detail = ck
        if kind in ("load", "acquire"):
            if len(args) != 1:
                raise self.err(pos, f"{name} takes 1 argument")
            loc = self._loc(args[0], deref=name in ("READ_ONCE", "rcu_dereference"), pos=pos)
            return ("call", "__load", (loc, kind), line)
        if kind in ("spin_trylock", "spin_is_locked"):
            if len(args) != 1:
                raise self.err(pos, f"{name} takes 1 argument")
            return ("call", "__" + kind, (self._loc(args[0], False, pos),), line)
        if kind == "xchg":
            if len(args) != 2:
                raise self.err(pos, f"{name} takes 2 arguments")
            return ("call", "__atomic_op", (self._loc(args[0], False, pos), "xchg", args[1], detail, "old"), line)
        if kind == "cmpxchg":
            if len(args) != 3:
                raise self.err(pos, f"{name} takes 3 arguments")
            return ("call", "__cmpxchg", (self._loc(args[0], False, pos), args[1], args[2], detail), line)
        if kind in ("op_return", "fetch_op"):
            op, order = detail
            if op in ("inc", "dec"):
                if len(args) != 1:
                    raise self.err(pos, f"{name} takes 1 argument")
                loc, operand = args[0], ("int", 1)
            else:
                if len(args) != 2:
                    raise self.err(pos, f"{name} takes 2 arguments")
                operand, loc = args
            ret = "new" if kind == "op_return" else "old"
            return ("call", "__atomic_op", (self._loc(loc, False, pos), _ARITH[op], operand, order, ret), line)
        if kind == "and_test":
            if detail in ("inc", "dec"):
                if len(args) != 1:
                    raise self.err(pos, f"{name} takes 1 argument")
                loc, operand = args[0], ("int", 1)
            else:
                if len(args) != 2:
                    raise self.err(pos, f"{name} takes 2 arguments")
                operand, loc = args
            e = ("call", "__atomic_op", (self._loc(loc, False, pos), _ARITH[detail], operand, "mb", "new"), line)
            return ("bin", "==", e, ("int", 0))
        if kind == "add_negative":
            operand, loc = args
            e = ("call", "__atomic_op", (self._loc(loc, False, pos), "+", operand, "mb", "new"), line)
            return ("bin", "<", e, ("int", 0))
        if kind == "add_unless":
            if len(args) != 3:
                raise self.err(pos, f"{name} takes 3 arguments")
            return ("call", "__add_unless", (self._loc(args[0], False, pos), args[1], args[2]), line)
        raise self.err(pos, f"unsupported construct {name}()")  # pragma: no cover


_ARITH = {"add": "+", "sub": "-", "inc": "+", "dec": "-", "or": "|", "and": "&", "xor": "^", "andnot": "&~"}


def _cond_regs(t: tuple[Any, ...]) -> list[tuple[int, str]]:
    if t[0] in ("and", "or"):
        return _cond_regs(t[1]) + _cond_regs(t[2])
    if t[0] == "not":
        return _cond_regs(t[1])
    return [(t[1], t[2])] if t[0] == "reg" else []


def _parse_tail(tail: str, base: int, err: Any, n_threads: int) -> tuple[str, tuple[Any, ...], str, Cond | None]:
    """``[locations [...]] [filter (...)] exists|~exists|forall (...)``."""
    pos = 0
    filt: Cond | None = None

    def skip() -> None:
        nonlocal pos
        while pos < len(tail) and tail[pos].isspace():
            pos += 1

    skip()
    if tail.startswith("locations", pos):
        close = tail.find("]", pos)
        if close < 0:
            raise err(base + pos, "locations: no closing ']'")
        pos = close + 1
        skip()
    if tail.startswith("filter", pos):
        pos += len("filter")
        cp = _CondParser(tail, lambda off, msg: err(base + off, msg), pos)
        filt_tree = cp.parse_one()
        filt = Cond(filt_tree, " ".join(tail[pos : cp.i].split()))
        pos = cp.i
        skip()
    m = re.compile(r"(~\s*exists|exists|forall)\b").match(tail, pos)
    if not m:
        word = tail[pos:].split()[0] if tail[pos:].split() else "end of file"
        raise err(base + pos, f"expected 'exists (...)', '~exists (...)' or 'forall (...)', got {word!r}")
    quant = re.sub(r"\s", "", m.group(1))
    pos = m.end()
    cp = _CondParser(tail, lambda off, msg: err(base + off, msg), pos)
    tree = cp.parse_one()
    text = " ".join(tail[pos : cp.i].split())
    rest = tail[cp.i :].strip()
    if rest:
        raise err(base + cp.i + tail[cp.i :].index(rest[0]), f"unexpected {rest.split()[0]!r} after the condition")
    return quant, tree, text, filt


class _CondParser:
    """Condition grammar: or := and ('\\/' and)*; and := not ('/\\' not)*;
    not := '~' not | 'not' not | '(' or ')' | 'true' | 'false' | atom."""

    def __init__(self, text: str, err: Any, start: int = 0) -> None:
        self.s = text
        self.i = start
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

    def parse_one(self) -> tuple[Any, ...]:
        self._ws()
        if self.i >= len(self.s):
            raise self.err(self.i, "exists: empty condition")
        return self._or()

    def parse(self) -> tuple[Any, ...]:
        t = self.parse_one()
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
        self._ws()
        if re.match(r"not\b", self.s[self.i :]):
            self.i += 3
            return ("not", self._not())
        if self._eat("("):
            t = self._or()
            if not self._eat(")"):
                raise self.err(self.i, "exists: expected ')'")
            return t
        self._ws()
        for word, tree in (("true", ("true",)), ("false", ("not", ("true",)))):
            if re.match(rf"{word}\b", self.s[self.i :]):
                self.i += len(word)
                return tree
        m = re.compile(rf"(?:(\d+):({_ID})|\*?({_ID}))\s*(!=|=)\s*(-?\d+|{_ID})").match(self.s, self.i)
        if not m:
            raise self.err(self.i, f"exists: expected 'N:reg=V' or 'loc=V' at {self.s[self.i:self.i + 12]!r}")
        self.i = m.end()
        v = m.group(5)
        val: Any = int(v) if re.fullmatch(r"-?\d+", v) else ("addr", v)
        atom = ("reg", int(m.group(1)), m.group(2), val) if m.group(1) is not None else ("mem", m.group(3), val)
        return ("not", atom) if m.group(4) == "!=" else atom
