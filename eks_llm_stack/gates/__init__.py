"""The checks this project runs on its own output, importable by other repositories.

- :func:`lint_template` (:mod:`.cfn_lint`) — cfn-lint over a synthesized template;
- :func:`nag_report` (:mod:`.nag`) — cdk-nag AwsSolutions findings left unacknowledged;
- :func:`validate_manifests` (:mod:`.manifests`) — Kubernetes manifests against the API schemas and CRDs.
"""

from .cfn_lint import lint_template
from .manifests import validate_manifests
from .nag import nag_report

__all__ = ["lint_template", "nag_report", "validate_manifests"]
