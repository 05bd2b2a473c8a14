"""Validate a scenario document from outside the package (a user's file, a
trace's configuration) with pydantic, then build the configuration's tables.

The tables (``kvm/config.py``) are plain frozen dataclasses, so checking a
built-in scenario never imports pydantic (about 0.15 s of CPU at start-up).
This module derives one pydantic model per table from the dataclass: the same
fields, types, defaults and limits (``Field``'s metadata), no extra fields,
no infinite or NaN floats, the table's ``_prepare`` before and ``_check``
after; so a bad field is reported as pydantic reports it.  The models are
made once, when the first document is validated.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from vcoresim.kvm.config import _Strict, build, field_types

__all__ = ["ValidationError", "model_for", "validate"]

T = TypeVar("T", bound=_Strict)

_MODELS: dict[type, type[BaseModel]] = {}
_TABLES: dict[type[BaseModel], type] = {}


def _pydantic_type(tp: Any) -> Any:
    """``tp`` with every table replaced by its model."""
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return model_for(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is list:
        return list[_pydantic_type(args[0])]  # type: ignore[misc]
    if origin is dict:
        return dict[args[0], _pydantic_type(args[1])]  # type: ignore[misc]
    if origin in (typing.Union, types.UnionType):
        return typing.Union[tuple(_pydantic_type(a) for a in args)]
    return tp


def model_for(cls: type) -> type[BaseModel]:
    """The pydantic model of a configuration table (made once)."""
    if cls in _MODELS:
        return _MODELS[cls]
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        tp = _pydantic_type(field_types(cls)[f.name])
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (tp, Field(f.default, **f.metadata))
        elif f.default_factory is not dataclasses.MISSING:
            fields[f.name] = (tp, Field(default_factory=f.default_factory, **f.metadata))
        else:
            fields[f.name] = (tp, Field(**f.metadata))

    def before(_model: Any, data: Any) -> Any:
        return cls._prepare(data)

    def after(self: Any) -> Any:
        cls._check(self)  # the same rules, reading the model's fields
        return self

    model = create_model(  # type: ignore[call-overload]
        cls.__name__,
        __config__=ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False),
        __validators__={"_prepare": model_validator(mode="before")(classmethod(before)), "_check": model_validator(mode="after")(after)},
        __module__=cls.__module__,
        **fields,
    )
    _MODELS[cls] = model
    _TABLES[model] = cls
    return model


def _plain(v: Any) -> Any:
    """A validated model's values as the plain dicts and lists ``build`` takes."""
    if isinstance(v, BaseModel):
        return {k: _plain(getattr(v, k)) for k in type(v).model_fields}
    if isinstance(v, _Strict):
        return v
    if isinstance(v, list):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def validate(cls: type[T], doc: Any) -> T:
    """``doc`` validated as the table ``cls``; raises pydantic's ``ValidationError``."""
    return build(cls, _plain(model_for(cls).model_validate(doc)))


def table_of(model: type[BaseModel]) -> type | None:
    return _TABLES.get(model)
