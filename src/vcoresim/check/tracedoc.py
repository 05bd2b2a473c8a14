"""The trace file's schema (pydantic), imported only to read a trace back:
checking writes a trace without it."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError

from vcoresim.files import MAX_SCHEDULE

__all__ = ["TraceDoc", "ValidationError"]

_Str = Annotated[str, Strict()]
_Nat = Annotated[int, Strict(), Field(ge=0)]


class _ViolationDoc(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["invariant", "liveness", "deadlock"]
    invariant: Annotated[_Str, Field(min_length=1, max_length=200)]
    message: Annotated[_Str, Field(max_length=100_000)]
    step: _Nat
    #: A timed run's trace: the simulated time of the violation, in ns.
    t_ns: _Nat | None = None


class TraceDoc(BaseModel):
    """The v1 trace file (``format`` and ``version`` are checked before, with their own messages)."""

    model_config = ConfigDict(extra="forbid")
    format: _Str
    version: Annotated[int, Strict()]
    scenario: Annotated[_Str, Field(min_length=1, max_length=200)]
    config: dict[_Str, Any]
    strategy: dict[_Str, Any] = Field(default_factory=dict)
    bounds: dict[_Str, Any] = Field(default_factory=dict)
    violation: _ViolationDoc | None = None
    shrink: dict[_Str, Any] = Field(default_factory=dict)
    schedule: Annotated[list[tuple[Annotated[_Str, Field(min_length=1, max_length=200)], _Nat]], Field(max_length=MAX_SCHEDULE)]
    steps: list[dict[_Str, Any]] = Field(default_factory=list)
    #: The counterexample's timing window (simulate/window.py), when it has one.
    window: dict[_Str, Any] | None = None
