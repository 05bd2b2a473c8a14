"""Checkpoints: the state of an interrupted search, as JSON, to continue it.

A checkpoint is written when a budget (``--max-executions``,
``--max-seconds``) or Ctrl-C ends a search before it covered its bounds.  It
holds the scenario and its effective config (like a trace), the strategy,
seed and bounds, the statistics so far and the DPOR search state: the
current path's schedule and, per node, the enabled actors, their footprints,
the backtrack set, what was explored and the sleep set.  ``vcoresim check
--resume FILE`` replays the path and continues; the result is the one an
uninterrupted run gives (same verdict, same executions, states and steps).
The state cache is saved with the search (its fingerprints are the same in
every process), so a resumed cached search prunes what the uninterrupted
one prunes.  For ``--workers`` and ``--ray`` (the
frontier search, kind ``parallel``): the pending items (each a schedule and
what is left to explore at its end) and the visited set, which a resuming
process uses only if it computes the same fingerprints (the same verdict
and coverage either way; more work without it).

A checkpoint is bound to what wrote it.  It carries ``tool`` (the vcoresim
version and a digest of its code: the search state is only meaningful for the
model that produced it) and ``digest`` (SHA-256 of the rest of the document),
and resuming checks, before anything runs, that the file parses against the
schema below, that the digest matches (it was not edited), that the tool is
this one, that its config rebuilds the scenario as written, and that the saved
path replays on the model with the enabled actors, branches and footprints it
records.  Any mismatch is one ``CheckpointError`` line naming the field.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Strict, Tag, ValidationError, model_validator

from vcoresim.engine.runtime import Execution
from vcoresim.engine.world import Program
from vcoresim.errors import InputError
from vcoresim.files import MAX_CHECKPOINT_BYTES, excerpt, load_json, read_text, show_path, write_atomic
from vcoresim.scenarios.loader import format_validation_error

FORMAT = "vcoresim-checkpoint"
VERSION = 2  # 2: bound to the tool and digested; 1 was neither


class CheckpointError(InputError):
    """A checkpoint file that cannot be used; the message names the field."""


# --------------------------------------------------------------- identity
@functools.cache
def tool() -> dict[str, str]:
    """This vcoresim: its version and a digest of its code (``*.py`` and the built-in scenarios)."""
    from importlib import metadata

    try:
        version = metadata.version("vcoresim")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare source tree
        version = "unknown"
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for p in sorted([*root.rglob("*.py"), *root.rglob("*.toml")]):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    return {"version": version, "code": h.hexdigest()[:16]}


def _digest(doc: dict[str, Any]) -> str:
    body = {k: v for k, v in doc.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ----------------------------------------------------------------- schema
# Lax models (JSON arrays become tuples) with strict scalars (no bool for an int, no "1" for 1).
Int = Annotated[int, Strict()]
Nat = Annotated[int, Strict(), Field(ge=0)]
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Str = Annotated[str, Strict()]
Bool = Annotated[bool, Strict()]
Fp = tuple[list[Str], list[Str]]
Hex = Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{1,64}$")]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StatsDoc(_Closed):
    executions: Nat
    states: Nat
    steps: Nat
    seconds: Annotated[Float, Field(ge=0)]
    truncated: Nat = 0
    pruned: Nat = 0
    cycles: Nat = 0


class NodeDoc(_Open):
    enabled: list[Nat]
    alts: list[tuple[Nat, Annotated[int, Strict(), Field(ge=1)]]]
    fps: list[tuple[Nat, Fp]]
    backtrack: list[Nat]
    done: list[tuple[Nat, Nat, Fp]]
    sleep: list[tuple[Nat, Nat, Fp]]
    preempt: Nat
    prev: Annotated[int, Strict(), Field(ge=-1)]
    key: Hex | None = None
    summary: Hex | None = None


class CacheDoc(_Closed):
    """The state cache's visited table (fingerprint:entry), interned sleep sets
    and summaries, and the numbering of accesses the summaries use."""

    table: list[Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{1,16}:[0-9a-f]{1,64}$")]]
    sleeps: list[list[tuple[Nat, Nat]]]
    summaries: list[Hex] = Field(min_length=1)
    accesses: list[tuple[Nat, Str, Bool]]

    @model_validator(mode="after")
    def _ids_in_range(self) -> CacheDoc:
        """Every entry names a saved sleep set and summary; summaries name saved accesses."""
        from vcoresim.engine.strategies.statecache import VisitedStates

        for item in self.table:
            _, sleep, _, summary, _ = VisitedStates._unpack(int(item.split(":")[1], 16))
            if sleep >= len(self.sleeps) or summary >= len(self.summaries):
                raise ValueError(f"entry {item} names a sleep set or summary the checkpoint does not hold")
        if any(int(m, 16) >> len(self.accesses) for m in self.summaries):
            raise ValueError("a summary names an access the checkpoint does not hold")
        return self


class SearchDoc(_Open):
    schedule: list[tuple[Nat, Nat]]
    nodes: list[NodeDoc] = Field(min_length=1)
    base: Nat = 0
    prefix_fps: list[Fp] = Field(default_factory=list)
    stats: StatsDoc
    preemption_bound_cut: Bool = False
    bounded_por: Bool = False
    cache: CacheDoc | None = None


class ItemDoc(_Closed):
    """A frontier search's pending work item (``--workers``/``--ray``): a state, as
    the schedule that reaches it, and what is left to explore there (``todo``
    None: all of it)."""

    prefix: list[tuple[Nat, Nat]]
    sleep: list[tuple[Nat, Nat, Fp]] = Field(default_factory=list)
    done: list[tuple[Nat, Nat, Fp]] = Field(default_factory=list)
    todo: list[tuple[Nat, Nat]] | None = None
    preempt: Nat = 0
    prev: Annotated[int, Strict(), Field(ge=-1)] = -1


#: More branches than any transition has (a frontier item's sleep and done sets name branches as bits of a mask).
MAX_BRANCH = 255
U64 = Annotated[int, Strict(), Field(ge=0, le=2**64 - 1)]


class ParallelDoc(_Closed):
    """A frontier search cut short: its pending items and visited set (entries
    in hex: a sleep-set mask may be longer than a checkpoint's integers)."""

    kind: Literal["parallel"]
    items: list[ItemDoc]
    visited: list[tuple[U64, Annotated[str, Strict(), Field(pattern=r"^[0-9a-f]{1,256}$")]]] = Field(default_factory=list)
    probe: U64 | None = None
    depth_aware: Bool = False
    stats: StatsDoc


def _search_kind(v: Any) -> str:
    return "parallel" if isinstance(v, dict) and v.get("kind") == "parallel" else "serial"


#: A search state: the serial DPOR's or (kind ``parallel``) the frontier search's;
#: told apart by ``kind``, so an error names the field of the one it is.
AnySearch = Annotated[Annotated[SearchDoc, Tag("serial")] | Annotated[ParallelDoc, Tag("parallel")], Discriminator(_search_kind)]


class SearchStateDoc(_Closed):
    kind: Literal["exhaustive", "dfs"]
    search: AnySearch


Rng = tuple[Literal[3], list[Annotated[int, Strict(), Field(ge=0, le=2**32 - 1)]], Float | None]


class SampleStateDoc(_Closed):
    """A sampling phase cut short: its statistics and random streams (``rng``:
    PCT's; ``uniform``: the uniform walks' of the first phase)."""

    stats: StatsDoc
    rng: Rng
    uniform: Rng | None = None
    longest: Annotated[int, Strict(), Field(ge=1)] | None = None


class SampleDoc(_Closed):
    phase: Literal["sampling", "pct"]
    state: SampleStateDoc | None


class AutoStateDoc(_Closed):
    kind: Literal["auto"]
    phase: Nat
    phases: list[dict[str, Any]]
    total: StatsDoc
    search: AnySearch | None
    sample: SampleDoc | None = None


class StrategyDoc(_Closed):
    name: Literal["auto", "exhaustive", "dfs"]
    seed: Int
    cache: Bool | None = None
    pct_depth: Annotated[int, Strict(), Field(ge=1)] = 3
    workers: Annotated[int, Strict(), Field(ge=1, le=256)] = 1


class BoundsDoc(_Closed):
    max_steps: Annotated[int, Strict(), Field(ge=1)]
    max_preemptions: Nat | None
    max_executions: Annotated[int, Strict(), Field(ge=1)] | None = None
    max_seconds: Annotated[Float, Field(gt=0)] | None = None


class ToolDoc(_Closed):
    version: Str
    code: Str


class CheckpointDoc(_Closed):
    format: Str
    version: Int
    tool: ToolDoc
    scenario: Annotated[Str, Field(min_length=1, max_length=200)]
    config: dict[Str, Any]
    strategy: StrategyDoc
    bounds: BoundsDoc
    state: SearchStateDoc | AutoStateDoc = Field(discriminator="kind")
    digest: Str


#: Names pydantic puts in an error's location for a union member (not fields).
_TAGS = frozenset({"auto", "exhaustive", "dfs", "serial", "parallel", "SearchDoc", "ParallelDoc", "SearchStateDoc", "AutoStateDoc"})


# ---------------------------------------------------------------- writing
def _document(doc: dict[str, Any]) -> dict[str, Any]:
    full = {"format": FORMAT, "version": VERSION, "tool": tool(), **doc}
    full["digest"] = _digest(full)
    return full


def write_checkpoint(path: Path, doc: dict[str, Any], option: str = "--checkpoint") -> Path:
    """Write atomically (unique temporary file, then rename), bound to this tool and digested."""
    return write_atomic(path, json.dumps(_document(doc), separators=(",", ":")), option)


def default_checkpoint_path(doc: dict[str, Any], folder: Path = Path("checkpoints")) -> Path:
    """``checkpoints/<scenario>.<memory model>.<digest>.checkpoint.json``: named by its
    content, so concurrent runs never write each other's file."""
    from vcoresim.check.trace import safe_name

    model = doc["config"].get("memory_model", "sc") if isinstance(doc.get("config"), dict) else "sc"
    return folder / f"{safe_name(doc['scenario'])}.{safe_name(str(model))}.{_document(doc)['digest'][:12]}.checkpoint.json"


# ---------------------------------------------------------------- loading
def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint and check its schema, digest and tool (not yet the model: :func:`check_against`)."""
    src = show_path(path)
    try:
        doc = load_json(read_text(path, "checkpoint", MAX_CHECKPOINT_BYTES), src)
    except InputError as e:
        raise CheckpointError(str(e)) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{src}: format: not a vcoresim checkpoint")
    version = doc.get("version")
    if type(version) is not int or version != VERSION:
        raise CheckpointError(f"{src}: version: {excerpt(version)} is not supported (expected {VERSION})")
    try:
        CheckpointDoc.model_validate(doc)
    except ValidationError as e:
        raise CheckpointError(f"{src}: {format_validation_error(e, skip=_TAGS)}") from None
    if doc["digest"] != _digest(doc):
        raise CheckpointError(f"{src}: digest: the file was changed after vcoresim wrote it; a checkpoint resumes only as written")
    here = tool()
    if doc["tool"] != here:
        t = doc["tool"]
        raise CheckpointError(
            f"{src}: tool: written by vcoresim {excerpt(t['version'])} (code {excerpt(t['code'])}), this is {here['version']} (code {here['code']}); "
            "a search state is only valid for the model that wrote it"
        )
    state = doc["state"]
    if state["kind"] != doc["strategy"]["name"]:
        raise CheckpointError(f"{src}: state.kind: {state['kind']!r} is not the strategy's ({doc['strategy']['name']!r})")
    return doc


def check_against(doc: dict[str, Any], program: Program, path: Path) -> None:
    """The checkpoint matches ``program``: its config rebuilds as written and every
    saved path replays with the enabled actors, branches and footprints it records."""
    from vcoresim.check.trace import config_difference, jsonable

    src = show_path(path)
    if program.name != doc["scenario"]:
        raise CheckpointError(f"{src}: scenario: {excerpt(doc['scenario'])}, but its config builds {excerpt(program.name)}")
    diff = config_difference(doc["config"], jsonable(program.config))
    if diff is not None:
        raise CheckpointError(f"{src}: {diff.replace(chr(39), '', 2)}")
    state = doc["state"]
    b = doc["bounds"]
    if state["kind"] == "auto":
        phases = (b["max_preemptions"] + 1) if b["max_preemptions"] is not None else 3
        if state["phase"] >= phases:
            raise CheckpointError(f"{src}: state.phase: {state['phase']} is past the last phase ({phases - 1})")
    sample = state.get("sample") if state["kind"] == "auto" else None
    if sample is not None and sample["phase"] == "pct" and program.memory_model == "sc":
        raise CheckpointError(f"{src}: state.sample.phase: 'pct' runs only under a weak memory model, and this config is sc")
    if sample is not None and sample["state"] is not None:
        import random

        streams = ["rng", "uniform"] if sample["phase"] == "sampling" else ["rng"]
        for name in streams:
            if sample["state"].get(name) is None:
                raise CheckpointError(f"{src}: state.sample.state.{name}: required for the {sample['phase']} phase")
            try:
                version, internal, gauss = sample["state"][name]
                random.Random().setstate((version, tuple(internal), gauss))
            except (TypeError, ValueError) as e:
                raise CheckpointError(f"{src}: state.sample.state.{name}: not a random stream's state ({excerpt(str(e), 60)})") from None
        if sample["state"]["longest"] is None:
            raise CheckpointError(f"{src}: state.sample.state.longest: required for the {sample['phase']} phase")
    search = state["search"]
    if search is None:
        return
    where = "state.search"
    if search.get("kind") == "parallel":
        for i, item in enumerate(search["items"]):
            _check_item(program, item, f"{src}: {where}.items[{i}]", b["max_steps"])
        return
    _check_search(program, search, f"{src}: {where}", b["max_steps"])


def _fp(fp: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (tuple(fp[0]), tuple(fp[1]))


def _check_search(program: Program, s: dict[str, Any], where: str, max_steps: int) -> None:
    schedule, nodes, base = s["schedule"], s["nodes"], s["base"]
    if len(nodes) != len(schedule) + 1:
        raise CheckpointError(f"{where}.nodes: {len(nodes)} nodes for a path of {len(schedule)} steps (expected {len(schedule) + 1})")
    if len(schedule) > max_steps:
        raise CheckpointError(f"{where}.schedule: {len(schedule)} steps, more than bounds.max_steps ({max_steps})")
    if base > len(schedule) or len(s["prefix_fps"]) < base:
        raise CheckpointError(f"{where}.base: {base} does not fit a path of {len(schedule)} steps with {len(s['prefix_fps'])} prefix footprints")
    ex = Execution(program)
    n = len(ex.actors)
    cache = s.get("cache")
    if cache is not None:
        if any(q >= n for q, _loc, _w in cache["accesses"]) or any(q >= n for sl in cache["sleeps"] for q, _alt in sl):
            raise CheckpointError(f"{where}.cache: names actors the model does not have (it has {n})")
        bits = len(cache["accesses"])
        for k, node in enumerate(nodes):
            if node.get("summary") is not None and int(node["summary"], 16) >> bits:
                raise CheckpointError(f"{where}.nodes[{k}].summary: names an access the cache does not hold")
    for k, node in enumerate(nodes):
        at = f"{where}.nodes[{k}]"
        en = ex.enabled()
        if node["enabled"] != en:
            raise CheckpointError(f"{at}.enabled: {excerpt(node['enabled'])} is not what the model enables there ({excerpt(en)})")
        alts = {q: a for q, a in node["alts"]}
        if any(alts.get(q, 1) != ex.alternatives(q) for q in en):
            raise CheckpointError(f"{at}.alts: not the branches the model has there")
        fps = {q: _fp(fp) for q, fp in node["fps"]}
        if k >= base and set(fps) != set(en):
            raise CheckpointError(f"{at}.fps: footprints for {excerpt(sorted(fps))}, not for the enabled actors {excerpt(en)}")
        for q, fp in fps.items():
            if q not in en or fp != ex.footprint(q):
                raise CheckpointError(f"{at}.fps: the footprint of actor {q} is not the model's")
        if k >= base and not set(node["backtrack"]) <= set(en):
            raise CheckpointError(f"{at}.backtrack: names actors that are not enabled there")
        for field in ("done", "sleep"):
            for q, alt, _fp_ in node[field]:
                if q >= n:
                    raise CheckpointError(f"{at}.{field}: actor {q} does not exist (the model has {n})")
        if not -1 <= node["prev"] < n:
            raise CheckpointError(f"{at}.prev: actor {node['prev']} does not exist")
        if k == len(schedule):
            break
        q, alt = schedule[k]
        if q not in en or alt >= ex.alternatives(q):
            raise CheckpointError(f"{where}.schedule[{k}]: actor {q} branch {alt} is not enabled there")
        ex.step(q, alt)
        if ex.violation is not None:
            raise CheckpointError(f"{where}.schedule[{k}]: the model violates {ex.violation.name} there; a search never continues past a violation")


def _check_item(program: Program, item: dict[str, Any], where: str, max_steps: int) -> None:
    """A frontier item: its prefix replays on the model without a violation,
    and what it has left to explore is enabled at the state it reaches."""
    prefix = item["prefix"]
    if len(prefix) > max_steps:
        raise CheckpointError(f"{where}.prefix: {len(prefix)} steps, more than bounds.max_steps ({max_steps})")
    ex = Execution(program)
    for k, (q, alt) in enumerate(prefix):
        en = ex.enabled()
        if q not in en or alt >= ex.alternatives(q):
            raise CheckpointError(f"{where}.prefix[{k}]: actor {q} branch {alt} is not enabled there")
        ex.step(q, alt)
        if ex.violation is not None:
            raise CheckpointError(f"{where}.prefix[{k}]: the model violates {ex.violation.name} there; a search never continues past a violation")
    en = ex.enabled()
    for k, (q, alt) in enumerate(item.get("todo") or []):
        if q not in en or alt >= ex.alternatives(q):
            raise CheckpointError(f"{where}.todo[{k}]: actor {q} branch {alt} is not enabled there")
    n = len(ex.actors)
    if not -1 <= item["prev"] < n:
        raise CheckpointError(f"{where}.prev: actor {item['prev']} does not exist (the model has {n})")
    for field in ("sleep", "done"):
        for q, alt, _fp_ in item[field]:
            if q >= n:
                raise CheckpointError(f"{where}.{field}: actor {q} does not exist (the model has {n})")
            if alt > MAX_BRANCH:
                raise CheckpointError(f"{where}.{field}: branch {alt} of actor {q}: no transition has that many")
