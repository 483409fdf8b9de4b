"""Every version this library deploys, pinned in one place.

Bump a version here and nowhere else; tests read these constants rather than repeating
them. Helm charts are installed by the cluster's kubectl provider, images are referenced
by the cdk8s charts.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class HelmChartPin:
    """A third-party Helm chart: where it comes from and the exact version installed."""

    chart: str
    repository: str
    version: str


@dataclass(frozen=True, kw_only=True)
class ImagePin:
    """A container image, referenced by tag (digest pinning is left to the registry mirror)."""

    repository: str
    tag: str

    @property
    def uri(self) -> str:
        return f"{self.repository}:{self.tag}"


#: Kubernetes minor version of the cluster; the kubectl layer below must match it.
KUBERNETES_VERSION = "1.35"
#: PyPI package that ships the matching kubectl/helm Lambda layer (see requirements.txt).
KUBECTL_LAYER_PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"

#: Karpenter controller (CRD schemas in shared/schemas are from the same release).
KARPENTER = HelmChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    version="1.14.1",
)
