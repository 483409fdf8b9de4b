"""The checks this project runs on its own output, importable by other repositories.

- :func:`lint_template` (:mod:`.cfn_lint`) — cfn-lint over a synthesized template;
- :func:`nag_report` (:mod:`.nag`) — cdk-nag AwsSolutions findings left unacknowledged;
- :func:`validate_manifests` (:mod:`.manifests`) — Kubernetes manifests against the API schemas and CRDs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .cfn_lint import lint_template
    from .manifests import validate_manifests
    from .nag import nag_report

__all__ = ["lint_template", "nag_report", "validate_manifests"]

# Loaded on first use: constructs import gates.nag (cdk-nag) while they are built, and must not pull in cfn-lint or
# jsonschema, which only the ``gates`` extra installs.
_HOMES = {"lint_template": ".cfn_lint", "validate_manifests": ".manifests", "nag_report": ".nag"}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(import_module(_HOMES[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
