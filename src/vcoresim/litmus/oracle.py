"""herd7 as the reference: run a C litmus test through herd7 under a model and
compare with vcoresim.

References per vcoresim model:

- ``sc``, ``tso``, ``pso``: herd7 on the C test with the kernel's macros and
  bell (``linux-kernel.def``, ``linux-kernel.bell``, ``lock.cat``) and the cat
  files in ``litmus/cats/`` (which state vcoresim's sc/tso/pso in herd's
  language);
- ``power``: herdtools7's ``ppc.cat`` on the test translated to POWER
  assembly with the kernel's powerpc mapping (:func:`to_ppc`);
- ``lkmm``: herd7 with the kernel's ``linux-kernel.cfg`` (reported beside,
  not a vcoresim model).

herd7 is found as ``$VCORESIM_HERD7`` or ``herd7`` on ``PATH``; the kernel's
memory-model directory (``tools/memory-model``) as ``$VCORESIM_LKMM_DIR``, or
extracted from Debian's ``linux-source-*`` tarball (:func:`kernel_tree`).
Nothing here is needed by vcoresim itself: tests that need herd7 skip when it
is absent.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from vcoresim.litmus.parser import Addr, Instr, Litmus

HERD_MODELS = ("sc", "tso", "pso", "power", "lkmm")


def find_herd() -> str | None:
    exe = os.environ.get("VCORESIM_HERD7") or shutil.which("herd7")
    return exe if exe and Path(exe).exists() else None


def kernel_tree(cache: Path | None = None) -> Path | None:
    """A directory holding the kernel's ``tools/memory-model`` (and, when the
    source has it, ``Documentation/litmus-tests``): ``$VCORESIM_LKMM_DIR``'s
    parent layout, else extracted once from ``/usr/src/linux-source-*.tar.xz``
    (Debian's ``linux-source`` package) into ``cache``."""
    env = os.environ.get("VCORESIM_LKMM_DIR")
    if env:
        p = Path(env)
        return p if (p / "linux-kernel.cat").exists() else None
    tarballs = sorted(Path("/usr/src").glob("linux-source-*.tar.xz"))
    if not tarballs:
        return None
    tb = tarballs[-1]
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vcoresim" / tb.stem.replace(".tar", "")
    mm = cache / "tools" / "memory-model"
    if not (mm / "linux-kernel.cat").exists():
        cache.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tb) as tf:
            members = [m for m in tf.getmembers() if "/tools/memory-model/" in m.name or "/Documentation/litmus-tests/" in m.name]
            for m in members:
                m.name = m.name.split("/", 1)[1]
            tf.extractall(cache, members=members, filter="data")
    return mm


def kernel_tests(mm: Path) -> list[Path]:
    """The kernel's litmus tests: tools/memory-model/litmus-tests, Documentation/litmus-tests."""
    out = sorted((mm / "litmus-tests").glob("*.litmus"))
    doc = mm.parent.parent / "Documentation" / "litmus-tests"
    out += sorted(doc.rglob("*.litmus"))
    return out


class Untranslatable(Exception):
    """The test uses something the POWER translation does not cover."""


@dataclass
class HerdResult:
    verdict: str | None  # Never | Sometimes | Always, None when herd7 failed
    detail: str = ""


def _observation(out: str) -> str | None:
    m = re.search(r"^Observation \S+ (Never|Sometimes|Always)\b", out, re.MULTILINE)
    return m.group(1) if m else None


def run_herd(herd: str, args: list[str], text: str | None, path: Path | None, timeout: float = 60.0) -> HerdResult:
    cmd = [herd, *args]
    tmp = None
    try:
        if text is not None:
            import tempfile

            fd, tmp = tempfile.mkstemp(suffix=".litmus")
            with os.fdopen(fd, "w") as f:
                f.write(text)
            cmd.append(tmp)
        else:
            assert path is not None
            cmd.append(str(path))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return HerdResult(None, "herd7 timed out")
    finally:
        if tmp:
            os.unlink(tmp)
    v = _observation(r.stdout)
    if v is None:
        msg = (r.stderr.strip() or r.stdout.strip()).splitlines()
        return HerdResult(None, msg[0] if msg else f"herd7 exit {r.returncode}")
    return HerdResult(v)


def herd_verdict(herd: str, mm: Path, lit: Litmus, model: str) -> HerdResult:
    """herd7's Observation for ``lit`` (read from its file) under ``model``."""
    path = Path(lit.path)
    if model == "lkmm":
        return run_herd(herd, ["-I", str(mm), "-conf", "linux-kernel.cfg"], None, path)
    if model in ("sc", "tso", "pso"):
        cat = resources.files("vcoresim.litmus") / "cats" / f"{model}.cat"
        return run_herd(herd, ["-I", str(mm), "-macros", "linux-kernel.def", "-bell", "linux-kernel.bell", "-model", str(cat)], None, path)
    if model == "power":
        try:
            text = to_ppc(lit)
        except Untranslatable as e:
            return HerdResult(None, f"not translated: {e}")
        return run_herd(herd, ["-model", "ppc.cat"], text, None)
    raise ValueError(model)


# ------------------------------------------------------------ C -> POWER
class _Ppc:
    """Translate one thread to POWER assembly (the kernel's powerpc mapping)."""

    def __init__(self, tid: int, locs: list[str]) -> None:
        self.tid = tid
        self.code: list[str] = []
        self.regs: dict[str, str] = {}  # C register -> GPR
        self.addr: dict[str, str] = {}  # location -> GPR holding its address
        self.labels = 0
        self.locs = locs

    def reg(self, r: str) -> str:
        if r not in self.regs:
            if len(self.regs) >= 9:
                raise Untranslatable("more than 9 registers in a thread")
            self.regs[r] = f"r{len(self.regs) + 1}"
        return self.regs[r]

    def base(self, loc: Any) -> str:
        if isinstance(loc, str):
            if loc not in self.addr:
                self.addr[loc] = f"r{20 + len(self.addr)}"
            return self.addr[loc]
        if isinstance(loc, tuple) and loc[0] == "reg":
            return self.reg(loc[1])  # a register holding an address: an address dependency
        raise Untranslatable(f"location {loc!r}")

    def value(self, v: Any) -> str:
        """A GPR holding ``v`` (loading a constant into r30/r31 first)."""
        if isinstance(v, str):
            return self.reg(v)
        if isinstance(v, tuple):
            if v[0] == "reg":
                return self.reg(v[1])
            if v[0] == "int":
                v = v[1]
            elif v[0] == "addr":
                self.code.append(f"mr r31,{self.base(v[1])}")
                return "r31"
            else:
                raise Untranslatable(f"expression {v[0]}")
        if not isinstance(v, int):
            raise Untranslatable(f"value {v!r}")
        self.code.append(f"li r30,{v}")
        return "r30"

    def stmts(self, ins: list[Instr]) -> None:
        for i in ins:
            self.stmt(i)

    def stmt(self, i: Instr) -> None:
        op = i.op
        if op in ("store", "release"):
            src = self.value(i.args[1])
            b = self.base(i.args[0])
            if op == "release":
                self.code.append("lwsync")
            self.code.append(f"stw {src},0({b})")
        elif op in ("load", "acquire"):
            b = self.base(i.args[0])
            self.code.append(f"lwz {self.reg(i.args[1])},0({b})")
            if op == "acquire":
                self.code.append("lwsync")
        elif op == "barrier":
            kind = i.args[0]
            self.code.append({"smp_mb": "sync", "smp_wmb": "lwsync", "smp_rmb": "lwsync"}.get(kind) or _fail(f"barrier {kind}"))
        elif op == "assign" and i.args[1][0] == "int":
            self.code.append(f"li {self.reg(i.args[0])},{i.args[1][1]}")
        elif op == "if":
            self.branch(i)
        else:
            what = op if op not in ("assign", "expr") else _describe(i.args[-1])
            raise Untranslatable(what)

    def branch(self, i: Instr) -> None:
        cond, then, other = i.args
        neg = False
        if cond[0] == "un" and cond[1] == "!":
            cond, neg = cond[2], True
        if cond[0] == "reg":
            r, k, eq = cond[1], 0, False  # if (r): branch to else when r == 0
        elif cond[0] == "bin" and cond[1] in ("==", "!=") and cond[2][0] == "reg" and cond[3][0] == "int":
            r, k, eq = cond[2][1], cond[3][1], cond[1] == "=="
        else:
            raise Untranslatable(f"if condition {_describe(cond)}")
        if neg:
            eq = not eq
        self.labels += 1
        lelse, lend = f"LC{self.tid}{self.labels}a", f"LC{self.tid}{self.labels}b"
        self.code.append(f"cmpwi {self.reg(r)},{k}")
        # eq: then-branch runs when r == k, so skip it when not equal
        self.code.append(f"{'bne' if eq else 'beq'} {lelse}")
        self.stmts(then)
        self.code.append(f"b {lend}")
        self.code.append(f"{lelse}:")
        self.stmts(other)
        self.code.append(f"{lend}:")


def _fail(msg: str) -> str:
    raise Untranslatable(msg)


def _describe(e: Any) -> str:
    if isinstance(e, tuple) and e and e[0] == "call":
        return str(e[1]).lstrip("_")
    return str(e[0]) if isinstance(e, tuple) and e else repr(e)


def _ppc_val(v: Any) -> str:
    return v.loc if isinstance(v, Addr) else str(v)


def _ppc_cond(t: tuple[Any, ...], regs: list[dict[str, str]]) -> str:
    k = t[0]
    if k in ("and", "or"):
        op = "/\\" if k == "and" else "\\/"
        return f"({_ppc_cond(t[1], regs)} {op} {_ppc_cond(t[2], regs)})"
    if k == "not":
        return f"~({_ppc_cond(t[1], regs)})"
    if k == "true":
        return "true"
    val = t[-1][1] if isinstance(t[-1], tuple) else t[-1]
    if k == "reg":
        gpr = regs[t[1]].get(t[2])
        if gpr is None:
            raise Untranslatable(f"register {t[1]}:{t[2]} in the condition is never written")
        return f"{t[1]}:{gpr}={val}"
    return f"{t[1]}={val}"


def to_ppc(lit: Litmus) -> str:
    """``lit`` as a herd7 PPC litmus test: READ_ONCE/WRITE_ONCE = lwz/stw,
    smp_mb = sync, smp_wmb = smp_rmb = lwsync, release = lwsync; stw,
    acquire = lwz; lwsync; ``if`` = cmpwi; bne/beq (a control dependency).
    Atomics, locks and arithmetic raise :class:`Untranslatable`."""
    locs = lit.locations
    threads = []
    for tid, ins in enumerate(lit.threads):
        t = _Ppc(tid, locs)
        t.stmts(ins)
        threads.append(t)
    if lit.reg_init:
        raise Untranslatable("initial register values")
    init = []
    for tid, t in enumerate(threads):
        init.extend(f"{tid}:{gpr}={loc};" for loc, gpr in t.addr.items())
    for loc in locs:
        init.append(f"{loc}={_ppc_val(lit.init.get(loc, 0))};")
    regs = [t.regs for t in threads]
    cond = _ppc_cond(lit.cond.tree, regs)
    quant = {"exists": "exists", "~exists": "~exists", "forall": "forall"}[lit.quantifier]
    filt = f"filter ({_ppc_cond(lit.filter.tree, regs)})\n" if lit.filter else ""
    height = max(len(t.code) for t in threads) or 1
    cols = [t.code + [""] * (height - len(t.code)) for t in threads]
    widths = [max([len(c) for c in col] + [4]) for col in cols]
    lines = [" " + " | ".join(f"P{i}".ljust(w) for i, w in enumerate(widths)) + " ;"]
    for row in range(height):
        lines.append(" " + " | ".join(cols[i][row].ljust(widths[i]) for i in range(len(cols))) + " ;")
    name = re.sub(r"[^A-Za-z0-9_.+-]", "_", lit.name)
    return f"PPC {name}\n{{\n" + "\n".join(init) + "\n}\n" + "\n".join(lines) + f"\n{filt}{quant} ({cond})\n"


@dataclass
class Row:
    """One test: vcoresim's and herd7's verdict per model."""

    path: str
    name: str
    accepted: bool
    reason: str  # why vcoresim refused it (empty when accepted)
    ours: dict[str, str]
    herd: dict[str, HerdResult]
    seconds: dict[str, float]

    def agrees(self, model: str) -> bool | None:
        h = self.herd.get(model)
        o = self.ours.get(model)
        if h is None or h.verdict is None or o is None or o == "Unknown":
            return None
        return h.verdict == o


def compare(paths: list[Path], models: tuple[str, ...], herd: str, mm: Path, max_seconds: float | None = None) -> list[Row]:
    """Each test through vcoresim (when it accepts it) and herd7, per model."""
    from vcoresim.litmus.parser import LitmusError, parse_file
    from vcoresim.litmus.runner import run

    rows = []
    for p in paths:
        try:
            lit = parse_file(p)
        except LitmusError as e:
            msg = str(e).split(": ", 1)[-1]
            herd_lkmm = {"lkmm": herd_verdict_path(herd, mm, p)} if "lkmm" in models else {}
            rows.append(Row(str(p), p.stem, False, msg, {}, herd_lkmm, {}))
            continue
        ours: dict[str, str] = {}
        secs: dict[str, float] = {}
        herd_res: dict[str, HerdResult] = {}
        for m in models:
            herd_res[m] = herd_verdict(herd, mm, lit, m)
            if m != "lkmm":
                o = run(lit, m, max_seconds=max_seconds)
                ours[m] = o.verdict
                secs[m] = o.seconds
        rows.append(Row(str(p), lit.name, True, "", ours, herd_res, secs))
    return rows


def herd_verdict_path(herd: str, mm: Path, path: Path) -> HerdResult:
    return run_herd(herd, ["-I", str(mm), "-conf", "linux-kernel.cfg"], None, path)


__all__ = ["HERD_MODELS", "HerdResult", "Row", "Untranslatable", "compare", "find_herd", "herd_verdict", "kernel_tests", "kernel_tree", "run_herd", "to_ppc"]
