"""Running external commands (the CDK CLI, kubectl), faked in tests; the timeouts of every wait."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .names import EphemeralError

_REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""


class Runner(Protocol):
    """Runs an external command (the CDK CLI, kubectl); faked in tests."""

    def run(self, argv: Sequence[str], *, capture: bool = False, timeout: float | None = None) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands for real; streamed output unless ``capture``."""

    def run(self, argv: Sequence[str], *, capture: bool = False, timeout: float | None = None) -> CommandResult:
        try:
            done = subprocess.run(list(argv), capture_output=capture, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise EphemeralError(f"'{argv[0]}' is not installed or not on PATH") from None
        except subprocess.TimeoutExpired:
            raise EphemeralError(f"'{' '.join(argv[:3])} ...' did not finish within {timeout:.0f}s") from None
        return CommandResult(done.returncode, done.stdout or "")


def cdk_command() -> str:
    """The pinned CDK CLI of this checkout, else one on PATH."""
    local = _REPO_ROOT / "node_modules" / ".bin" / "cdk"
    return str(local) if local.exists() else "cdk"


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long each wait may take, in seconds."""

    deploy: float = 3 * 3600
    """The whole ``cdk deploy``. Default: 3 hours."""
    cluster: float = 30 * 60
    """The cluster reaching ACTIVE after the deploy. Default: 30 minutes."""
    model: float = 45 * 60
    """The first model's Deployment having a ready replica (image pull and weight load). Default: 45 minutes."""
    stack_delete: float = 60 * 60
    """One stack's deletion. Default: 1 hour."""
    interval: float = 15.0
    """Seconds between polls. Default: 15."""


#: The timeouts every verb uses unless told otherwise.
DEFAULT_TIMEOUTS = Timeouts()
