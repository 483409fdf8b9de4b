"""The profile reference (``docs/profiles.md``), generated from the models so it cannot drift."""

from __future__ import annotations

import inspect
import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from .profile import Profile

HEADER = """# Profile reference

Generated from the configuration models by `eks-llm-stack profile docs > docs/profiles.md`; a test keeps it in
step with the code. Every key is optional unless marked **required**; unknown keys are errors. A profile is a YAML
file in `config/` chosen with `cdk synth -c profile=NAME` (or a path to a YAML file).
"""


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is typing.Literal:
        return ", ".join(f"`{a}`" for a in args)
    if origin in (tuple, list):
        inner = args[0] if args else Any
        return f"list of {_type_name(inner)}"
    if origin is dict:
        return f"map of {_type_name(args[0])} to {_type_name(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    if annotation is type(None):
        return "null"
    return getattr(annotation, "__name__", str(annotation))


def _models(model: type[BaseModel], seen: dict[str, type[BaseModel]]) -> None:
    if model.__name__ in seen:
        return
    seen[model.__name__] = model
    for field in model.model_fields.values():
        for inner in _nested(field.annotation):
            _models(inner, seen)


def _nested(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _nested(a)]


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    value = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return ""
    if isinstance(value, BaseModel):
        return "(section defaults)"
    return f"`{json.dumps(value, default=str)}`"


def render_reference() -> str:
    seen: dict[str, type[BaseModel]] = {}
    _models(Profile, seen)
    out = [HEADER]
    for name, model in seen.items():
        out.append(f"## {name}\n")
        doc = inspect.cleandoc(model.__doc__ or "")
        if doc:
            out.append(doc + "\n")
        if not model.model_fields:
            out.append("(no keys yet)\n")
            continue
        out.append("| key | type | default | description |\n| --- | --- | --- | --- |")
        for key, field in model.model_fields.items():
            nested = _nested(field.annotation)
            fallback = inspect.cleandoc(nested[0].__doc__ or "").split("\n")[0] if nested else ""
            desc = (field.description or fallback).replace("|", "\\|").replace("\n", " ")
            out.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {desc} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"
