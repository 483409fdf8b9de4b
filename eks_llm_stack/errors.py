"""Errors that reach a user: every problem at once, each with its field, the bad value and the fix.

A profile, a construct's props or a sizing request can be wrong in several places; a user
should fix them all in one pass rather than meet them one per run. Every check therefore
records a :class:`Problem` on a :class:`Problems` collector and raises once, at the end,
a :class:`ConfigError` whose message lists them all.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_MISSING = object()
#: The ``value`` of a :class:`Problem` about an absent field.
MISSING = _MISSING


class EksLlmStackError(Exception):
    """Base class of every error this library raises on purpose (bad input, not bugs)."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input.

    ``field`` is a dotted path (``compute.pools[1].families``), ``value`` the offending
    value (``_MISSING`` when the field is absent), ``message`` says what is wrong and
    ``fix`` what to do about it.
    """

    field: str
    message: str
    fix: str
    value: Any = _MISSING

    def render(self) -> str:
        shown = "" if self.value is _MISSING else f" (got {_short(self.value)})"
        return f"  - {self.field}: {self.message}{shown}\n      fix: {self.fix}"


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class ProblemsError(ValueError):
    """Problems raised from inside a pydantic validator: they reach :class:`ConfigError` as objects.

    Each problem's ``field`` is relative to the validated location ("" for the location itself);
    the profile loader prefixes the location's path.
    """

    def __init__(self, problems: tuple[Problem, ...] | list[Problem]):
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.field + ': ' if p.field else ''}{p.message}" for p in self.problems))


class ConfigError(EksLlmStackError, ValueError):
    """Bad input, with every problem found. ``str(err)`` is the message to show a user."""

    def __init__(self, subject: str, problems: tuple[Problem, ...] | list[Problem]):
        self.subject = subject
        self.problems = tuple(problems)
        super().__init__(self._render())

    def _render(self) -> str:
        n = len(self.problems)
        head = f"{self.subject}: {n} problem{'s' if n != 1 else ''}"
        return "\n".join([head, *(p.render() for p in self.problems)])


@dataclass
class Problems:
    """Collects problems and raises them together.

    >>> p = Problems("GpuNodePoolProps")
    >>> p.check(False, "families", (), "is empty", "name at least one family, e.g. ('g6',)")
    >>> p.raise_if_any()
    Traceback (most recent call last):
    ...
    errors.ConfigError: GpuNodePoolProps: 1 problem ...
    """

    subject: str
    problems: list[Problem] = field(default_factory=list)

    def add(self, field_path: str, message: str, fix: str, value: Any = _MISSING) -> None:
        self.problems.append(Problem(field_path, message, fix, value))

    def check(self, ok: bool, field_path: str, value: Any, message: str, fix: str) -> bool:
        """Record a problem unless ``ok``; return ``ok`` so callers can skip dependent checks."""
        if not ok:
            self.add(field_path, message, fix, value)
        return ok

    def extend(self, other: ConfigError, prefix: str = "") -> None:
        for p in other.problems:
            path = f"{prefix}.{p.field}" if prefix and p.field else (prefix or p.field)
            self.problems.append(Problem(path, p.message, p.fix, p.value))

    def raise_if_any(self) -> None:
        if self.problems:
            raise ConfigError(self.subject, self.problems)


@contextmanager
def collecting(subject: str) -> Iterator[Problems]:
    """``with collecting("X") as p: p.check(...)`` raises every recorded problem on exit."""
    problems = Problems(subject)
    yield problems
    problems.raise_if_any()
