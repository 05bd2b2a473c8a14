"""State fingerprints for state caching: a state's identity, forgetting what is dead.

Two states with equal fingerprints must behave the same for every future
step.  A state is shared memory, every actor's mode (status, MSR) and stack
of frames, the stacks of tasks switched out (``ContextSwitch``), the saved
frames (``SaveFrame``) that can still be returned into, and the liveness
monitors' clocks.  What no saved frame, stack or memory location can reach
any more (a stack parked by a nap that no saved frame resumes, a frame that
returned, a saved frame whose id was overwritten) is dead and left out, so
a thread that wakes, finds nothing to do and naps again meets its earlier
state.

**A frame** is a chain of generators (``yield from``).  Its future depends
on each generator's code position, local variables and value stack.  The
fingerprint reads the first two (``f_lasti``, ``f_locals``); the value stack
is not readable, so a bytecode analysis (``_clean``) proves it holds nothing
but the delegated generator at that position (it holds a loop iterator
inside a ``for``, or the context manager inside a ``with``).  Locals must be
values it can encode (numbers, strings, None, containers of them, saved
frame ids, functions with such closures, objects naming themselves with
``__fp__``).  Where either fails, the frame is identified instead by its
**history**: what created it (a wake-up at the reset vector, an interrupt
vector of a given kind under a given MSR, a task's entry) and every value
sent into it since (``Frame.hist``).  That is sound because model code is
deterministic given those values, the assumption the whole engine rests
on (``audit`` checks it on a search's states).

**Saved-frame ids** are counters; memory and frames hold them.  The
fingerprint renames them canonically (in the order it meets them) and
describes each reachable one by what resuming it does: its owner, MSR, and
whether it is parked (then the stack it resumes, described the same way),
still running (which live stack), or used up (resuming it runs the stale
frame code).

The result is a 64-bit int that is the same in every process for the same
state on the same Python version (``engine/stable.py``), so a search split
over processes can share one visited set.
"""

from __future__ import annotations

import dis
import gc
import os
import sys
from types import CodeType, FunctionType
from typing import Any

from vcoresim.engine.ops import TIMEOUT
from vcoresim.engine.stable import NONE, stable, stable_str
from vcoresim.engine.world import DONE, Actor, Frame, FrameRef

Execution = Any  # an engine.runtime.Execution (runtime imports this module)

_PLAIN = (int, str, float, bool, type(None))
_MASK = (1 << 64) - 1


def canon(v: Any, depth: int = 0) -> Any:
    """A hashable stand-in for a memory value (engine/memory.py's buffers use it)."""
    if isinstance(v, _PLAIN):
        return v
    fp = getattr(v, "__fp__", None)
    if fp is not None:
        return fp()
    if depth > 4:
        return type(v).__name__
    if isinstance(v, (tuple, list)):
        return tuple(canon(x, depth + 1) for x in v)
    if isinstance(v, dict):
        return tuple(sorted((repr(k), canon(x, depth + 1)) for k, x in v.items()))
    if isinstance(v, (set, frozenset)):
        return tuple(sorted(repr(canon(x, depth + 1)) for x in v))
    if hasattr(v, "gi_code"):  # a generator: it is on a stack, fingerprinted there
        return "<gen>"
    return type(v).__name__


# ------------------------------------------------------------ value stacks
_YIELD = dis.opmap.get("YIELD_VALUE")
_SEND = dis.opmap.get("SEND")
_RETURN_GENERATOR = dis.opmap.get("RETURN_GENERATOR")
_NO_FALLTHROUGH = {dis.opmap[n] for n in ("RETURN_VALUE", "RAISE_VARARGS", "RERAISE", "JUMP_FORWARD", "JUMP_BACKWARD", "JUMP_BACKWARD_NO_INTERRUPT", "JUMP_ABSOLUTE", "JUMP", "JUMP_NO_INTERRUPT", "RETURN_CONST") if n in dis.opmap}
_JUMPS = set(dis.hasjrel) | set(dis.hasjabs)
_FOR_ITER = dis.opmap.get("FOR_ITER")
_CLEAN: dict[CodeType, dict[int, tuple[int, tuple[str, ...]]]] = {}
_NAMES: dict[CodeType, tuple[str, ...]] = {}
_SLOTS: dict[type, tuple[str, ...]] = {}


def _clean_offsets(code: CodeType) -> dict[int, int]:
    """The ``YIELD_VALUE`` offsets at which the value stack holds nothing but
    the iterators of the ``for`` loops around it (and, in a ``yield from``,
    the delegate), each with the number of those iterators."""
    instrs = list(dis.get_instructions(code))
    index = {ins.offset: i for i, ins in enumerate(instrs)}
    depth: dict[int, int] = {}
    bad: set[int] = set()
    work = [(instrs[0].offset, 0)]
    for e in dis.Bytecode(code).exception_entries:
        work.append((e.target, e.depth + 1 + (1 if e.lasti else 0)))
    while work:
        off, d = work.pop()
        if off in depth:
            if depth[off] != d:
                bad.add(off)
            continue
        depth[off] = d
        i = index[off]
        ins = instrs[i]
        op, arg = ins.opcode, ins.arg if ins.opcode >= dis.HAVE_ARGUMENT else None
        if op in _JUMPS:
            work.append((ins.argval, d + dis.stack_effect(op, arg, jump=True)))
            if op not in _NO_FALLTHROUGH and i + 1 < len(instrs):
                work.append((instrs[i + 1].offset, d + dis.stack_effect(op, arg, jump=False)))
        elif op not in _NO_FALLTHROUGH and i + 1 < len(instrs):
            # RETURN_GENERATOR, POP_TOP: the POP_TOP drops the value of the
            # first send, which the stack-effect table leaves out.
            effect = 1 if op == _RETURN_GENERATOR else dis.stack_effect(op, arg)
            work.append((instrs[i + 1].offset, d + effect))
    # A for loop's iterator sits on the stack from its FOR_ITER to the loop's exit.
    loops = [(ins.offset, ins.argval, depth[ins.offset]) for ins in instrs if ins.opcode == _FOR_ITER and ins.offset in depth]
    live = _live_locals(code, instrs, index)
    names = _names(code)
    out = {}
    for i, ins in enumerate(instrs):
        if ins.opcode != _YIELD or ins.offset in bad or ins.offset not in depth:
            continue
        delegating = i > 0 and instrs[i - 1].opcode == _SEND
        hidden = depth[ins.offset] - (2 if delegating else 1)
        around = sorted(d for start, end, d in loops if start < ins.offset < end)
        if around == list(range(1, hidden + 1)):
            after = live[i]
            out[ins.offset] = (hidden, tuple(n for n in names if n in after))
    return out


def _names(code: CodeType) -> tuple[str, ...]:
    """A code's local names in its own order (f_locals keeps the order of
    first use, which depends on the path)."""
    names = _NAMES.get(code)
    if names is None:
        names = _NAMES[code] = tuple(dict.fromkeys((*code.co_varnames, *code.co_cellvars, *code.co_freevars)))
    return names


def _live_locals(code: CodeType, instrs: list[Any], index: dict[int, int]) -> list[frozenset[str]]:
    """For each instruction, the locals that may be read after it before being
    written (backward liveness over the control flow, exception edges
    included).  A dead local cannot change the future, so the fingerprint
    leaves it out.  Cells and free variables (closures may read them) and any
    local of a code that uses an instruction this analysis does not know are live."""
    everything = frozenset(_names(code))
    always = frozenset((*code.co_cellvars, *code.co_freevars))
    n = len(instrs)
    succ: list[list[int]] = [[] for _ in range(n)]
    uses: list[frozenset[str]] = []
    defs: list[frozenset[str]] = []
    handlers = [(e.start, e.end, index[e.target]) for e in dis.Bytecode(code).exception_entries]
    for i, ins in enumerate(instrs):
        op, name = ins.opcode, ins.opname
        if op in _JUMPS:
            succ[i].append(index[ins.argval])
        if op not in _NO_FALLTHROUGH and i + 1 < n:
            succ[i].append(i + 1)
        for start, end, target in handlers:
            if start <= ins.offset < end:
                succ[i].append(target)
        args = ins.argval if isinstance(ins.argval, tuple) else (ins.argval,)
        if name in ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_FAST_LOAD_FAST", "LOAD_CLOSURE"):
            uses.append(frozenset(args))
            defs.append(frozenset())
        elif name in ("STORE_FAST", "DELETE_FAST", "STORE_FAST_STORE_FAST"):
            uses.append(frozenset())
            defs.append(frozenset(args))
        elif name == "STORE_FAST_LOAD_FAST":
            uses.append(frozenset(args[1:]))
            defs.append(frozenset(args[:1]))
        elif name == "LOAD_FAST_AND_CLEAR":
            uses.append(frozenset(args))
            defs.append(frozenset(args))
        elif "FAST" in name or name in ("LOAD_NAME", "STORE_NAME", "DELETE_NAME", "IMPORT_STAR"):
            return [everything] * n  # an instruction this analysis does not know
        else:
            uses.append(frozenset())
            defs.append(frozenset())
    live_in = [always] * n
    changed = True
    while changed:
        changed = False
        for i in range(n - 1, -1, -1):
            out: frozenset[str] = always
            for j in succ[i]:
                out = out | live_in[j]
            new = uses[i] | (out - defs[i])
            if new != live_in[i]:
                live_in[i] = new
                changed = True
    live_out = []
    for i in range(n):
        out = always
        for j in succ[i]:
            out = out | live_in[j]
        live_out.append(out)
    return live_out


def _clean(code: CodeType, lasti: int) -> tuple[int, tuple[str, ...]] | None:
    """Suspended at ``lasti``: how many loop iterators the stack holds and
    which locals are live (None: the stack holds something else too)."""
    offs = _CLEAN.get(code)
    if offs is None:
        try:
            offs = _clean_offsets(code)
        except (ValueError, KeyError, IndexError, TypeError):  # an opcode this analysis does not know
            offs = {}
        _CLEAN[code] = offs
    return offs.get(lasti)


def _probe_snapshots() -> bool:
    """Does the value-stack analysis classify known shapes right on this Python,
    and does the collector list a suspended generator's stack last?"""

    def sub():  # type: ignore[no-untyped-def]
        yield 1

    def plain():  # type: ignore[no-untyped-def]
        x = yield 1
        yield x

    def delegating():  # type: ignore[no-untyped-def]
        yield from sub()

    def looping():  # type: ignore[no-untyped-def]
        for _ in (1, 2):
            yield 1

    def looping_delegate():  # type: ignore[no-untyped-def]
        for _ in (1, 2):
            for _ in range(3):
                yield from sub()

    def guarded():  # type: ignore[no-untyped-def]
        with open(__file__):
            yield 1

    def handling():  # type: ignore[no-untyped-def]
        try:
            raise KeyError
        except KeyError:
            yield 1

    def hidden(gen: Any) -> int | None:
        next(gen)
        at = _clean(gen.gi_code, gen.gi_frame.f_lasti)
        return None if at is None else at[0]

    try:
        g = looping_delegate()
        ok = hidden(plain()) == 0 and hidden(delegating()) == 0 and hidden(looping()) == 1 and hidden(g) == 2
        ok = ok and hidden(guarded()) is None and hidden(handling()) is None
        tail = gc.get_referents(g)[-3:]
        return ok and type(tail[0]).__name__ == "tuple_iterator" and type(tail[1]).__name__ == "range_iterator" and tail[2] is g.gi_yieldfrom
    except Exception:  # noqa: BLE001 - any surprise means: do not trust snapshots here
        return False


#: Generator snapshots are used only where the analysis passes its own probe.
SNAPSHOTS = sys.implementation.name == "cpython" and _YIELD is not None and _probe_snapshots()


# ---------------------------------------------------------------- encoding
class _Opaque(Exception):
    """A local the encoder cannot describe: identify the frame by its history."""


_CODE_ID: dict[CodeType, int] = {}
_REF, _MUT, _SEEN, _FN, _OBJ, _FROZEN, _HIST, _SNAP, _STACK, _STACK_SEEN, _CELL_EMPTY, _TIMEOUT, _SLOW, _ITER, _RANGE, _UNBOUND = range(0x5F3759DF_0000_0010, 0x5F3759DF_0000_0020)
#: Iterators a loop may hold, encoded by ``__reduce__`` (their pickled state).
_ITERATORS = frozenset(
    type(x)
    for x in (iter(()), iter([]), iter(range(0)), iter(range(1 << 70)), iter({}), iter({}.values()), iter({}.items()), enumerate(()), zip(), reversed(()), reversed([]), iter(""))
)


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep


def _code_id(code: CodeType) -> int:
    h = _CODE_ID.get(code)
    if h is None:
        # The package's own code by its path inside the package, so that two
        # checkouts (or Ray nodes) give a state the same fingerprint.
        where = os.path.realpath(code.co_filename)
        if where.startswith(_PACKAGE_DIR):
            where = "vcoresim/" + where[len(_PACKAGE_DIR):].replace(os.sep, "/")
        h = _CODE_ID[code] = stable_str(f"{where}:{code.co_firstlineno}:{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}")
    return h


class Encoder:
    """One canonical traversal of a state (see the module docstring)."""

    __slots__ = ("ex", "refs", "ref_order", "stacks", "mutables", "pending_stacks")

    def __init__(self, ex: Execution) -> None:
        self.ex = ex
        self.refs: dict[int, int] = {}  # saved-frame id -> canonical index
        self.ref_order: list[int] = []
        self.stacks: dict[int, int] = {}  # id(stack list) -> canonical index
        self.mutables: dict[int, int] = {}  # id(list/dict/set/function) -> canonical index

    # -- values
    def ref(self, fid: int) -> int:
        i = self.refs.get(fid)
        if i is None:
            i = self.refs[fid] = len(self.ref_order)
            self.ref_order.append(fid)
        return i

    def value(self, v: Any) -> Any:
        t = type(v)
        if t is int or t is bool or t is float:
            return v
        if t is str:
            return stable_str(v)
        if v is None:
            return NONE
        if t is FrameRef:
            return (_REF, self.ref(v))
        if t is tuple:
            return tuple([self.value(x) for x in v])
        if t is frozenset:
            return (_FROZEN, tuple(sorted(hash(self.value(x)) for x in v)))
        if t is list or t is dict or t is set or t is FunctionType:
            key = id(v)
            seen = self.mutables.get(key)
            if seen is not None:
                return (_SEEN, seen)  # aliasing is part of the state
            self.mutables[key] = idx = len(self.mutables)
            if t is list:
                body: Any = tuple([self.value(x) for x in v])
            elif t is dict:
                body = tuple(sorted((hash(self.value(k)), self.value(x)) for k, x in v.items()))
            elif t is set:
                body = tuple(sorted(hash(self.value(x)) for x in v))
            else:
                body = self.function(v)
            return (_MUT, idx, body)
        fp = getattr(v, "__fp__", None)
        if fp is not None:
            return (_OBJ, stable(fp()))
        if v is TIMEOUT:
            return _TIMEOUT
        params = getattr(t, "__dataclass_params__", None)
        if params is not None and params.frozen:  # an immutable record (a duration, ...)
            return (_OBJ, stable_str(t.__qualname__), tuple([self.value(getattr(v, f)) for f in t.__dataclass_fields__]))
        if t is range:
            return (_RANGE, v.start, v.stop, v.step)
        if isinstance(v, int):  # int subclasses other than FrameRef (IntEnum ...)
            return int(v)
        raise _Opaque(t.__qualname__)

    def iterator(self, it: Any) -> Any:
        """A loop's iterator, by what pickling it would save (where it stands in what)."""
        if type(it) not in _ITERATORS:
            raise _Opaque(type(it).__qualname__)
        fn, args, *state = it.__reduce__()
        return (_ITER, stable_str(getattr(fn, "__qualname__", "?")), tuple([self.iterator(x) if type(x) in _ITERATORS else self.value(x) for x in args]), self.value(tuple(state)))

    def function(self, fn: FunctionType) -> Any:
        cells = []
        for c in fn.__closure__ or ():
            try:
                cells.append(self.value(c.cell_contents))
            except ValueError:  # an empty cell
                cells.append(_CELL_EMPTY)
        return (_FN, _code_id(fn.__code__), self.value(fn.__defaults__), tuple(cells))

    # -- frames and stacks
    def chain(self, gen: Any) -> Any:
        """The snapshot of a generator chain, or raise ``_Opaque``."""
        out = []
        g = gen
        while g is not None:
            code = getattr(g, "gi_code", None)
            frame = g.gi_frame if code is not None else None
            if frame is None:
                if code is not None and out == []:
                    return (_SNAP, 0)  # a finished handler: only its rfid is left
                raise _Opaque("not a suspended generator")
            lasti = frame.f_lasti
            at = _clean(code, lasti)
            if at is None:
                raise _Opaque("value stack")
            hidden, live = at
            loc = frame.f_locals
            iters: Any = ()
            if hidden:
                # The loops' iterators: the last objects the collector lists for
                # a suspended generator are its value stack, bottom first.
                sub = g.gi_yieldfrom
                tail = gc.get_referents(g)[-(hidden + (sub is not None)) :]
                if sub is not None and tail.pop() is not sub:
                    raise _Opaque("value stack")
                iters = tuple([self.iterator(it) for it in tail])
            value = self.value
            out.append((_code_id(code), lasti, tuple([value(loc[n]) if n in loc else _UNBOUND for n in live]), iters))
            g = g.gi_yieldfrom
        return (_SNAP, tuple(out))

    def frame(self, fr: Frame) -> Any:
        body: Any = None
        if SNAPSHOTS:
            n_mut, n_ref = len(self.mutables), len(self.ref_order)
            try:
                body = (self.chain(fr.gen), self.op(fr.op))
            except _Opaque:
                # Forget what the failed attempt named, or the canonical order
                # would depend on where the attempt stopped.
                for fid in self.ref_order[n_ref:]:
                    del self.refs[fid]
                del self.ref_order[n_ref:]
                if len(self.mutables) != n_mut:
                    keep = sorted(self.mutables.items(), key=lambda kv: kv[1])[:n_mut]
                    self.mutables = dict(keep)
                body = None
        if body is None:
            body = (_HIST, fr.hist, tuple(self.ref(r) for r in fr.refs or ()))
        return (fr.kind, fr.msr_on_return, stable_str(fr.label), body)

    def op(self, op: Any) -> Any:
        """The pending operation: it was built from locals that may be dead now."""
        if op is None:
            return NONE
        cls = type(op)
        slots = _SLOTS.get(cls)
        if slots is None:
            slots = _SLOTS[cls] = tuple(n for c in cls.__mro__ for n in getattr(c, "__slots__", ()) if n != "__weakref__")
        value = self.value
        return (stable_str(cls.__qualname__), tuple([value(getattr(op, n, None)) for n in slots]))

    def stack(self, st: list[Frame]) -> Any:
        key = id(st)
        seen = self.stacks.get(key)
        if seen is not None:
            return (_STACK_SEEN, seen)
        self.stacks[key] = idx = len(self.stacks)
        return (_STACK, idx, tuple([self.frame(fr) for fr in st]))

    def actor(self, a: Actor) -> Any:
        return (a.status, a.msr, self.stack(a.stack) if a.status != DONE else ())

    def records(self) -> tuple[Any, ...]:
        """What resuming each reachable saved frame does, in canonical order (the list grows as parked stacks name more)."""
        frames = self.ex.frames
        out = []
        k = 0
        while k < len(self.ref_order):
            rec = frames.get(self.ref_order[k])
            k += 1
            if rec is None:
                out.append(NONE)
                continue
            owner, st, msr, state = rec[0], rec[1], rec[2], rec[3]
            if state == "parked":
                out.append((owner, msr, 1, self.stack(st)))
            elif state == "live":
                idx = self.stacks.get(id(st))  # the owner's stack or a switched-out task's, else dead
                out.append((owner, msr, 2, -1 if idx is None else idx))
            else:
                out.append((owner, msr, 3))
        return tuple(out)


def state_fingerprint(ex: Execution) -> int:
    """Memory, each actor's mode and live frames, switched-out tasks, reachable saved frames, monitors."""
    fast = _fast_fingerprint(ex)
    h = fast if fast is not None else slow_fingerprint(ex)
    observed = ex.world.observed
    if observed is not None:
        h = hash((h, stable(observed()))) & _MASK
    return h


def slow_fingerprint(ex: Execution) -> int:
    """One canonical traversal of the whole state (``state_fingerprint`` uses
    it when frames share a mutable object, which per-frame encodings cannot see)."""
    enc = Encoder(ex)
    value = enc.value
    mem = tuple([value(v) for v in ex.mem.values()])
    actors = tuple([enc.actor(a) for a in ex.actors])
    tasks = tuple([(stable_str(name), t.msr, enc.stack(t.stack)) for name, t in sorted(ex.switched.items()) if t.stack is not None])
    records = enc.records()
    live = ex.liveness_clocks()
    return hash((_SLOW, mem, actors, tasks, records, live)) & _MASK


_EMPTY: frozenset[int] = frozenset()


#: Shared frame encodings kept at most (then the table starts again).
SHARED_FRAMES = 200_000


def _frame_code(ex: Execution, fr: Frame) -> tuple[Any, ...]:
    """A frame's encoding on its own: (frame, hist, hash, saved-frame ids it
    names in order, ids of the mutable objects it holds).

    Cached per frame until it runs again (it runs only after a value is sent
    into it, which changes ``hist``).  Across executions, a search may share a
    table ``ex.fp_shared``: what created a frame (including which actor) and
    the values sent into it since determine its state (model code is
    deterministic), so ``hist`` determines its encoding, except for which
    saved-frame ids it holds, kept as positions in ``fr.refs``."""
    cache: dict[int, tuple[Any, ...]] | None = ex.__dict__.get("_fp_frames")
    if cache is None:
        cache = ex.__dict__["_fp_frames"] = {}
    e = cache.get(id(fr))
    if e is not None and e[0] is fr and e[1] == fr.hist:
        return e
    shared: dict[int, tuple[int, tuple[int, ...]]] | None = ex.__dict__.get("fp_shared")
    if shared is not None:
        hit = shared.get(fr.hist)
        if hit is not None:
            refs = fr.refs
            e = (fr, fr.hist, hit[0], tuple([refs[i] for i in hit[1]]) if hit[1] else (), _EMPTY)  # type: ignore[index]
            cache[id(fr)] = e
            return e
    enc = Encoder(ex)
    e = (fr, fr.hist, hash(enc.frame(fr)), tuple(enc.ref_order), frozenset(enc.mutables) if enc.mutables else _EMPTY)
    cache[id(fr)] = e
    if shared is not None and not e[4]:
        refs = fr.refs or []
        if all(r in refs for r in e[3]):
            if len(shared) >= SHARED_FRAMES:
                shared.clear()
            shared[fr.hist] = (e[2], tuple(refs.index(r) for r in e[3]))
    return e


_MIXED: dict[tuple[int, Any], int] = {}  # (location index, value hash) -> its mixed term


def _mix(x: int) -> int:
    """splitmix64's finaliser: a sum of mixed terms does not cancel the way a
    sum of tuple hashes does (``hash((i, a)) - hash((i, b))`` hardly depends on i)."""
    x &= _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


class _Incremental:
    """What ``_fast_fingerprint`` keeps between the fingerprints of one
    execution: memory's hash (a sum over locations, updated where the steps
    since wrote), and each actor's part (recomputed for the actors that stepped)."""

    __slots__ = ("upto", "index", "locs", "enc", "total", "ref_locs", "actors")

    def __init__(self, ex: Execution) -> None:
        self.upto = len(ex.schedule)
        self.locs = list(ex.mem)
        self.index = {loc: i for i, loc in enumerate(self.locs)}
        self.enc: list[int] = [0] * len(self.index)
        self.total = 0
        self.ref_locs: set[int] = set()  # locations holding saved-frame ids: named in the canonical pass
        self.actors: list[Any] = [None] * len(ex.actors)
        for i, v in enumerate(ex.mem.values()):
            self.set(i, v)

    def set(self, i: int, v: Any) -> None:
        t = type(v)
        if t is int or t is bool:
            h = v
        elif t is str:
            h = stable_str(v)
        elif v is None:
            h = NONE
        else:
            enc = Encoder(None)  # type: ignore[arg-type]
            h = hash(enc.value(v))
            if enc.ref_order:
                self.ref_locs.add(i)
                h = 0
            else:
                self.ref_locs.discard(i)
        if t is not FrameRef and i in self.ref_locs and (t is int or t is bool or t is str or v is None):
            self.ref_locs.discard(i)
        old = self.enc[i]
        key = (i, h)
        new = _MIXED.get(key)
        if new is None:
            if len(_MIXED) > 1 << 20:
                _MIXED.clear()
            new = _MIXED[key] = _mix(hash(key))
        self.enc[i] = new
        self.total = (self.total - old + new) & _MASK


def _actor_part(ex: Execution, a: Actor) -> tuple[Any, ...]:
    """(hash of the actor's mode and frames, saved-frame ids they name in order, mutable objects they hold)."""
    if a.status == DONE:
        return (hash((a.status, a.msr)), (), _EMPTY)
    hs = []
    refs: list[int] = []
    held: frozenset[int] = _EMPTY
    for fr in a.stack:
        e = _frame_code(ex, fr)
        hs.append(e[2])
        if e[3]:
            hs.append(len(e[3]))
            refs.extend(e[3])
        if e[4]:
            held = held | e[4]
    return (hash((a.status, a.msr, tuple(hs))), tuple(refs), held)


def _fast_fingerprint(ex: Execution) -> int | None:
    """``slow_fingerprint``'s canonical form, assembled from per-frame
    encodings and kept up to date step by step; None when two frames share a
    mutable object."""
    inc: _Incremental | None = ex.__dict__.get("_fp_inc")
    mem = ex.mem
    if inc is None:
        inc = ex.__dict__["_fp_inc"] = _Incremental(ex)
        stepped: Any = range(len(ex.actors))
    else:
        index = inc.index
        fps = ex.footprints
        stepped = set()
        for k in range(inc.upto, len(ex.schedule)):
            stepped.add(ex.schedule[k][0])
            for loc in fps[k][1]:
                i = index.get(loc)
                if i is not None:
                    inc.set(i, mem[loc])
        inc.upto = len(ex.schedule)
    actors = ex.actors
    parts = inc.actors
    for q in stepped:
        if q < len(parts):
            parts[q] = _actor_part(ex, actors[q])

    refs: dict[int, int] = {}
    order: list[int] = []

    def gref(fid: int) -> int:
        i = refs.get(fid)
        if i is None:
            i = refs[fid] = len(order)
            order.append(fid)
        return i

    mem_refs: list[Any] = []
    if inc.ref_locs:
        locs = inc.locs
        for i in sorted(inc.ref_locs):
            v = mem[locs[i]]
            if type(v) is FrameRef:  # (the usual case: a saved frame's id alone)
                mem_refs.append((i, gref(v)))
                continue
            enc = Encoder(ex)
            h = hash(enc.value(v))
            mem_refs.append((i, h, tuple([gref(r) for r in enc.ref_order])))
    held: list[frozenset[int]] = []
    actor_codes = []
    stacks: dict[int, int] = {}
    for a, part in zip(actors, parts):
        stacks[id(a.stack)] = a.idx
        if part[1]:
            actor_codes.append((part[0], tuple([gref(r) for r in part[1]])))
        else:
            actor_codes.append(part[0])
        if part[2]:
            held.append(part[2])

    codes: dict[int, tuple[Any, ...]] | None = ex.__dict__.get("_fp_frames")

    def stack(st: list[Frame]) -> Any:
        seen = stacks.get(id(st))
        if seen is not None:
            return (_STACK_SEEN, seen)
        stacks[id(st)] = idx = len(stacks)
        out = []
        for fr in st:
            # (``_frame_code``'s own first look, without the call: a parked or
            # switched-out stack's frames have not run since they were encoded)
            e = codes.get(id(fr)) if codes is not None else None
            if e is None or e[0] is not fr or e[1] != fr.hist:
                e = _frame_code(ex, fr)
            if e[4]:
                held.append(e[4])
            out.append((e[2], tuple([gref(r) for r in e[3]])) if e[3] else e[2])
        return (_STACK, idx, tuple(out))

    tasks = tuple([(stable_str(name), t.msr, stack(t.stack)) for name, t in sorted(ex.switched.items()) if t.stack is not None]) if ex.switched else ()
    frames = ex.frames
    records = []
    k = 0
    while k < len(order):
        rec = frames.get(order[k])
        k += 1
        if rec is None:
            records.append(NONE)
            continue
        owner, st, msr, state = rec[0], rec[1], rec[2], rec[3]
        if state == "parked":
            records.append((owner, msr, 1, stack(st)))
        elif state == "live":
            idx = stacks.get(id(st))
            records.append((owner, msr, 2, -1 if idx is None else idx))
        else:
            records.append((owner, msr, 3))
    if len(held) > 1 and sum(len(h) for h in held) != len(frozenset().union(*held)):
        return None  # a mutable object shared between frames
    live = ex.liveness_clocks() if ex._live_armed else ()
    return hash((inc.total, tuple(mem_refs), tuple(actor_codes), tasks, tuple(records), live)) & _MASK


def symmetric_fingerprint(ex: Execution) -> tuple[int, dict[int, int]]:
    """The fingerprint of the state's canonical representative under the
    world's declared symmetries, and the permutation (actor index -> index of
    the actor whose place it takes) that maps this state onto it.

    Members of a group are sorted by their block (mode, live frames, the
    values of their own locations, the saved frames they own); the canonical
    state puts the smallest block first.  Values in ``owner_locs`` are
    renamed with the permutation.  Two states that differ only by a
    permutation of the members get the same fingerprint; sleep sets must be
    renamed with the returned permutation before they are compared."""
    syms = ex.world.symmetries
    perm: dict[int, int] = {}
    member_locs: set[str] = set()
    by_name = {a.name: a for a in ex.actors}
    order: list[int] = []  # actors in canonical order
    groups: list[Any] = []
    for sym in syms:
        members = [by_name[n] for n in sym.actors]
        keyed = []
        for a, locs in zip(members, sym.locs, strict=True):
            member_locs.update(locs)
            probe = Encoder(ex)  # a block alone: saved frames named within it
            block = (probe.actor(a), tuple(probe.value(ex.mem[loc]) for loc in locs), probe.records())
            keyed.append((hash(block), a.idx, locs))
        keyed.sort(key=lambda x: x[0])
        for slot, (_b, idx, _locs) in enumerate(keyed):
            perm[idx] = members[slot].idx
        groups.append(keyed)
    owner_locs = {loc for sym in syms for loc in sym.owner_locs}
    enc = Encoder(ex)
    mem = []
    for k, v in ex.mem.items():
        if k in member_locs:
            continue
        if k in owner_locs and isinstance(v, int) and v - 1 in perm:
            v = perm[v - 1] + 1
        mem.append(enc.value(v))
    blocks = []
    for keyed in groups:
        for _b, idx, locs in keyed:
            a = ex.actors[idx]
            blocks.append((enc.actor(a), tuple(enc.value(ex.mem[loc]) for loc in locs)))
    others = tuple(enc.actor(a) for a in ex.actors if a.idx not in perm)
    tasks = tuple([(stable_str(name), t.msr, enc.stack(t.stack)) for name, t in sorted(ex.switched.items()) if t.stack is not None])
    records = tuple(r if not isinstance(r, tuple) or r[0] not in perm else (perm[r[0]], *r[1:]) for r in enc.records())
    live = ex.liveness_clocks()
    del order
    observed = NONE if ex.world.observed is None else stable(ex.world.observed())  # (not renamed: finer, sound)
    return hash((tuple(mem), tuple(blocks), others, tasks, records, live, observed)) & _MASK, perm
