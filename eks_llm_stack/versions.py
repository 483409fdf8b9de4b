"""Every version this library deploys, pinned in one place.

Bump a version here and nowhere else; tests read these constants rather than repeating
them. Helm charts are installed by the cluster's kubectl provider, images are referenced
by the cdk8s charts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class HelmChartPin:
    """A third-party Helm chart: where it comes from and the exact version installed."""

    chart: str
    repository: str
    version: str


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class ImagePin:
    """A container image, referenced by tag, or by tag and digest when ``digest`` is given."""

    repository: str
    tag: str
    digest: str | None = None
    """``sha256:<64 hex>``; when set, pods pull exactly this image (``repository:tag@digest``)
    whatever the tag points to now. Default None: the tag."""

    def __post_init__(self) -> None:
        if self.digest is not None and not _DIGEST.fullmatch(self.digest):
            from .errors import ConfigError, Problem

            raise ConfigError(
                "ImagePin",
                [
                    Problem(
                        "digest",
                        "is not an image digest",
                        "pass sha256: and 64 lower-case hex digits, as the registry or `buildah push --digestfile` reports",
                        self.digest,
                    )
                ],
            )

    @property
    def uri(self) -> str:
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


#: Kubernetes minor version of the cluster; the kubectl layer below must match it.
KUBERNETES_VERSION = "1.35"
#: PyPI package that ships the matching kubectl/helm Lambda layer (see requirements.txt).
KUBECTL_LAYER_PACKAGE = "aws-cdk.lambda-layer-kubectl-v35"

#: Karpenter controller (CRD schemas in third_party/crds are from the same release).
KARPENTER = HelmChartPin(
    chart="karpenter",
    repository="oci://public.ecr.aws/karpenter",
    version="1.14.1",
)

#: kube-prometheus-stack: Prometheus, Alertmanager, Grafana and the prometheus-operator.
#: 88.x ships prometheus-operator v0.93.0, the release whose CRD schemas are in third_party/crds.
KUBE_PROMETHEUS_STACK = HelmChartPin(
    chart="kube-prometheus-stack",
    repository="https://prometheus-community.github.io/helm-charts",
    version="88.2.0",
)
#: prometheus-operator release of that chart (its CRDs validate our ServiceMonitor/PodMonitor/PrometheusRule).
PROMETHEUS_OPERATOR_VERSION = "v0.93.0"

#: NVIDIA DCGM exporter (DCGM 4.4.2, exporter 4.7.1).
DCGM_EXPORTER = ImagePin(
    repository="nvcr.io/nvidia/k8s/dcgm-exporter",
    tag="4.4.2-4.7.1-ubuntu22.04",
)

#: NVIDIA device plugin (advertises ``nvidia.com/gpu``; time-slicing and MIG strategy).
#: NVIDIA/k8s-device-plugin release v0.19.2 (PR #1814).
NVIDIA_DEVICE_PLUGIN = HelmChartPin(
    chart="nvidia-device-plugin",
    repository="https://nvidia.github.io/k8s-device-plugin",
    version="0.19.2",
)
#: AWS EFA device plugin (advertises ``vpc.amazonaws.com/efa``); aws/eks-charts chart v0.5.29
#: (appVersion v0.5.20, PR #1338). The chart's versions carry a leading "v".
EFA_DEVICE_PLUGIN = HelmChartPin(
    chart="aws-efa-k8s-device-plugin",
    repository="https://aws.github.io/eks-charts",
    version="v0.5.29",
)

#: External Secrets Operator; chart 2.9.0 ships the v2.9.0 CRDs whose schemas are in third_party/crds.
EXTERNAL_SECRETS = HelmChartPin(
    chart="external-secrets",
    repository="https://charts.external-secrets.io",
    version="2.9.0",
)
#: Model-fetch Job images: the AWS CLI (``aws s3 sync``) and Python with a pinned huggingface_hub.
AWS_CLI_IMAGE = ImagePin(repository="public.ecr.aws/aws-cli/aws-cli", tag="2.32.2")
PYTHON_IMAGE = ImagePin(repository="public.ecr.aws/docker/library/python", tag="3.13-slim")
#: busybox of kube-prometheus-stack's CRD upgrade Job (unpacks the CRDs it applies); the ECR Public
#: mirror of the Docker official image, free of Docker Hub's pull limits.
BUSYBOX_IMAGE = ImagePin(repository="public.ecr.aws/docker/library/busybox", tag="1.37.0")
HUGGINGFACE_HUB_VERSION = "2.4.0"

# -- serving (vLLM, LeaderWorkerSet, KEDA, AWS Load Balancer Controller) ----------------------
#: The vLLM OpenAI-compatible server image (vLLM v0.29.0). Weights are never baked in: they come
#: from the model cache or are fetched at start (docs/serving.md, "Cold start").
VLLM_IMAGE = ImagePin(repository="vllm/vllm-openai", tag="v0.29.0")
#: vLLM for EFA pools: AWS's vLLM deep-learning container for EC2/EKS (tag family
#: ``<vLLM major.minor>-gpu-py312-ec2``), which carries libfabric and the aws-ofi-nccl plugin that
#: NCCL needs to use EFA. Same vLLM minor as :data:`VLLM_IMAGE`, so serve-args.json still applies.
VLLM_EFA_IMAGE = ImagePin(repository="public.ecr.aws/deep-learning-containers/vllm", tag="0.29-gpu-py312-ec2")
#: LeaderWorkerSet controller for multi-node models; 0.10.0 ships the v1 CRD in third_party/crds.
LWS = HelmChartPin(chart="lws", repository="oci://registry.k8s.io/lws/charts", version="0.10.0")
#: KEDA (ScaledObject on Prometheus queries); its keda.sh CRDs are in third_party/crds.
KEDA = HelmChartPin(chart="keda", repository="https://kedacore.github.io/charts", version="2.20.2")
#: AWS Load Balancer Controller (internal ALB/NLB for model endpoints); eks-charts 3.4.2 = controller v3.4.2.
AWS_LOAD_BALANCER_CONTROLLER = HelmChartPin(
    chart="aws-load-balancer-controller", repository="https://aws.github.io/eks-charts", version="3.4.2"
)
#: Container of the image pre-pull DaemonSet once the image is on the node (does nothing, uses ~1 MiB).
PAUSE_IMAGE = ImagePin(repository="registry.k8s.io/pause", tag="3.10")

# -- benchmarking ------------------------------------------------------------------------------
#: This project's own image: the ``eks-llm-stack`` command (bench run/report, simulate) on
#: Python, run by the benchmark Job chart and usable as a CPU-only vLLM stand-in. Its tag is
#: the package version (a test keeps them equal); built from this repository and pushed to the
#: registry mirror of the cluster.
BENCH_HARNESS_IMAGE = ImagePin(repository="ghcr.io/eks-llm-stack/eks-llm-stack", tag="0.1.0")
