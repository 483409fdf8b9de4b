"""The base of every profile model, and the translation of pydantic errors into Problems."""

from __future__ import annotations

import difflib
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import MISSING, ConfigError, Problem, ProblemsError
from ..naming import is_dns_label


class StrictModel(BaseModel):
    """A profile section: unknown keys are errors, values are immutable once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk ``loc`` through nested model fields and return the model that owns the last key."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(part)
        if field is None:
            return None
        current = _innermost_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _innermost_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _innermost_model(arg)
        if found is not None:
            return found
    return None


_TYPE_FIXES = {
    "int_type": "give a whole number",
    "int_parsing": "give a whole number",
    "float_type": "give a number",
    "float_parsing": "give a number",
    "bool_type": "use true or false",
    "bool_parsing": "use true or false",
    "string_type": "give a string (quote it in YAML if it looks like a number or boolean)",
    "list_type": "give a list (YAML '- item' lines or [a, b])",
    "tuple_type": "give a list (YAML '- item' lines or [a, b])",
    "dict_type": "give a mapping of key: value",
    "model_type": "give a mapping of key: value",
    "missing": "add this field",
    "literal_error": "use one of the allowed values",
    "enum": "use one of the allowed values",
    "greater_than": "use a larger value",
    "greater_than_equal": "use a larger value",
    "less_than": "use a smaller value",
    "less_than_equal": "use a smaller value",
}


def problems_from_validation_error(exc: ValidationError, model: type[BaseModel]) -> list[Problem]:
    """Turn every pydantic error into a :class:`Problem` with a field path and a fix."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False):
        loc = tuple(err.get("loc", ()))
        kind = err.get("type", "")
        field = _path(loc) or "(profile)"
        value = err.get("input")
        if kind == "extra_forbidden":
            owner = _model_at(model, loc)
            allowed = sorted(owner.model_fields) if owner else []
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            hint = f"did you mean '{close[0]}'? Otherwise " if close else ""
            fix = f"{hint}remove it; allowed keys here: {', '.join(allowed) or '(none)'}"
            problems.append(Problem(field, "unknown key", fix))
            continue
        raised = (err.get("ctx") or {}).get("error")
        if isinstance(raised, ProblemsError):
            # Our own validators hand their problems over as objects (field relative to here).
            for prob in raised.problems:
                sub = f"{field}.{prob.field}" if prob.field and field != "(profile)" else prob.field or field
                problems.append(Problem(sub, prob.message, prob.fix, value if prob.value is MISSING else prob.value))
            continue
        msg = str(err.get("msg", "invalid value"))
        fix = ""
        if kind == "value_error":
            msg = msg.removeprefix("Value error, ")
        if not fix:
            fix = _TYPE_FIXES.get(kind, "correct the value")
        if kind == "missing":
            problems.append(Problem(field, "is required", fix))
        else:
            problems.append(Problem(field, msg, fix, value))
    return problems


def validate_model(model: type[BaseModel], data: Any, subject: str) -> Any:
    """``model.model_validate(data)``, raising :class:`ConfigError` with every problem."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(subject, problems_from_validation_error(exc, model)) from None


def check_namespace(value: str) -> str:
    """A field validator body for Kubernetes namespace names (RFC 1123 labels)."""
    if not is_dns_label(value):
        raise fail(
            f"'{value}' is not a Kubernetes namespace name",
            "use at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        )
    return value


def fail(message: str, fix: str) -> ProblemsError:
    """A validator error: one problem at the validated location, carried as an object."""
    return ProblemsError([Problem("", message, fix)])
