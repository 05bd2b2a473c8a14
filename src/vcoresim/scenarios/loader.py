"""Load a scenario TOML file into a validated ``ScenarioConfig``.

Every problem becomes one ``ScenarioError`` line that names the file and the
field, e.g. ``smt-vcore.toml: machine.threads_per_core: POWER7 has 4 threads
per core, not 9``.
"""

from __future__ import annotations

import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

from vcoresim.errors import InputError, ScenarioError, did_you_mean
from vcoresim.files import MAX_INT_DIGITS, MAX_SCENARIO_BYTES, MAX_TOML_DEPTH, check_depth, excerpt, read_text
from vcoresim.kvm.config import ScenarioConfig, build

if TYPE_CHECKING:  # pydantic is imported only to validate a document from outside the package
    from pydantic import BaseModel, ValidationError


def _loc_str(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, int) and (len(str(part)) > 40 or not str(part).isprintable()):
            part = excerpt(str(part))  # a user's key (a variant or patch name) may be anything
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (for listing known fields)."""
    from pydantic import BaseModel

    from vcoresim.scenarios.schema import model_for

    cls: Any = model_for(ScenarioConfig)
    for part in loc:
        if isinstance(part, int) or not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            continue  # list index / dict key: the element type was already taken
        info = cls.model_fields.get(part)
        if info is None:
            return None
        ann: Any = info.annotation
        # Unwrap Optional / list / dict down to a model class, if there is one.
        while True:
            args = [a for a in typing.get_args(ann) if a is not type(None)]
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                break
            if typing.get_origin(ann) in (list, dict, typing.Union, types.UnionType) and args:
                ann = args[-1]
                continue
            break
        cls = ann
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


#: Parts of a pydantic error location that name a type of a union, not a field.
_TYPE_TAGS = frozenset({"float", "int", "str", "bool", "dict", "list", "none", "tuple"})


def format_validation_error(e: ValidationError, skip: frozenset[str] = frozenset()) -> str:
    """The first error as ``field.path: message`` (a bad value quoted in a short excerpt);
    ``skip``: names of union members pydantic puts in the location."""
    err = e.errors()[0]
    loc = tuple(p for p in err.get("loc", ()) if isinstance(p, int) or (p not in _TYPE_TAGS and p not in skip and "[" not in str(p)))
    msg = str(err.get("msg", "invalid value"))
    kind = err.get("type", "")
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        owner = _model_at(loc[:-1])
        known = f" (known: {', '.join(owner.model_fields)})" if owner is not None else ""
        return f"{_loc_str(loc)}: unknown field{known}"
    if kind == "missing":
        return f"{_loc_str(loc)}: required field is missing"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
        # Our model validators say "field: message" (nested: "run: sigma: ..."); fold the fields into the path.
        while True:
            head, sep, rest = msg.partition(": ")
            if not (sep and head.isidentifier()):
                break
            loc, msg = (*loc, head), rest
    elif "input" in err and isinstance(err["input"], (str, int, float, bool)):
        msg = f"{msg}, got {excerpt(err['input'])}"
    path = _loc_str(loc)
    return f"{path}: {msg}" if path else msg


def validate_kernels(cfg: ScenarioConfig) -> None:
    """Check the kernel tables (presets and patch names) of a scenario and its variants."""
    from vcoresim.kvm.patches import PATCHES, resolve_kernel

    resolve_kernel(cfg.kernel.preset, cfg.kernel.patches, "kernel")
    cp = cfg.simulate.compare_patch
    if cp is not None and cp != "none" and cp not in PATCHES:
        raise ScenarioError(f"simulate.compare_patch: unknown patch {excerpt(cp)} (known: none, {', '.join(PATCHES)})")
    for vname, v in cfg.variants.items():
        if v.kernel.preset is not None or v.kernel.patches:
            resolve_kernel(v.kernel.preset, v.kernel.patches, f"variants.{vname}.kernel")


def validate_invariant_names(cfg: ScenarioConfig) -> None:
    """Every ``expect.invariant`` names an invariant the scenario's model checks
    (and, when ``invariants`` selects some, one of those)."""
    from vcoresim.kvm.catalog import MODEL_INVARIANTS

    known = MODEL_INVARIANTS[cfg.model]
    # (``invariants`` itself is checked by the model, which knows what applies.)
    checked_top = cfg.invariants if cfg.invariants is not None else known
    # A variant may ask its own question (``variants.NAME.invariants``).
    tables = [("expect", cfg.expect, checked_top)] + [
        (f"variants.{v}.expect", var.expect, var.invariants if var.invariants is not None else checked_top) for v, var in cfg.variants.items()
    ]
    for where, expect, checked in tables:
        name = expect.invariant
        if name is None:
            continue
        if name not in known:
            raise ScenarioError(f"{where}.invariant: unknown invariant {name!r} for the {cfg.model} model{did_you_mean(name, known)} (known: {', '.join(known)})")
        if name not in checked:
            raise ScenarioError(f"{where}.invariant: {name!r} is not among the invariants this scenario checks ({', '.join(checked)})")
        if expect.verdict is None:
            raise ScenarioError(f"{where}.verdict: missing (give verdict = \"violation\" with an invariant)")
        if expect.verdict == "holds":
            raise ScenarioError(f"{where}.invariant: names an invariant, but the expected verdict is 'holds'")


def parse_config(doc: dict[str, Any], source: str = "", *, trusted: bool = False) -> ScenarioConfig:
    """Validate a scenario given as a dict (as TOML gives it); errors are one line.
    ``trusted``: a file shipped in the package, whose types and limits its test
    checks with pydantic (``tests/test_scenarios.py``): built without pydantic."""
    prefix = f"{source}: " if source else ""
    if trusted:
        try:
            cfg = build(ScenarioConfig, doc)
        except (ValueError, TypeError) as e:
            raise ScenarioError(prefix + str(e)) from None
    else:
        from vcoresim.scenarios.schema import ValidationError, validate

        try:
            cfg = validate(ScenarioConfig, doc)
        except ValidationError as e:
            raise ScenarioError(prefix + format_validation_error(e)) from None
    try:
        validate_kernels(cfg)
        validate_invariant_names(cfg)
    except ScenarioError as e:
        raise ScenarioError(prefix + str(e)) from None
    return cfg


def loads(text: str, source: str = "<string>", *, trusted: bool = False) -> ScenarioConfig:
    if len(text) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{source}: larger than {MAX_SCENARIO_BYTES >> 20} MiB; not a scenario file")
    try:
        check_depth(text, MAX_TOML_DEPTH, source, toml=True)
    except InputError as e:
        raise ScenarioError(str(e)) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{source}: TOML syntax error: {e}") from None
    except (ValueError, RecursionError) as e:  # e.g. an integer of thousands of digits
        long = re.search(r"[0-9_]{%d,}" % (MAX_INT_DIGITS + 1), text)
        if long is not None:
            raise ScenarioError(f"{source}:{text.count(chr(10), 0, long.start()) + 1}: a number of more than {MAX_INT_DIGITS} digits") from None
        raise ScenarioError(f"{source}: TOML value error: {excerpt(str(e), 100)}") from None
    return parse_config(doc, source, trusted=trusted)


def load(path: str | Path) -> ScenarioConfig:
    """Load a scenario file; the error prefix is the file's name."""
    p = Path(path)
    try:
        text = read_text(p, "scenario", MAX_SCENARIO_BYTES)
    except InputError as e:
        raise ScenarioError(f"scenario: {e}") from None
    return loads(text, p.name)
