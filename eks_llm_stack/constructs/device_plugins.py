"""The NVIDIA and AWS EFA Kubernetes device plugins, as pinned Helm charts.

Why the device plugin and not NVIDIA's GPU Operator: the EKS-optimized AL2023 NVIDIA and
Bottlerocket NVIDIA AMIs that Karpenter picks already carry the driver, the container
toolkit and (Bottlerocket) the plugin itself. The Operator would install a second driver
stack through privileged DaemonSets, slow every node's start by minutes, and fight the AMI
on upgrades; what is left to do on these AMIs is advertising ``nvidia.com/gpu``, which is
the device plugin's one job. GPU metrics come from the DCGM exporter chart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from aws_cdk import Aws, CfnMapping, Stack, Token
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from .. import versions
from ..charts.kube import gpu_tolerations
from ..config.gpu_pool import GpuNodePoolProps, GpuSharing
from ..conventions import GPU_COUNT_LABEL, GPU_RESOURCE
from ..errors import collecting
from .cluster_type import ClusterLike, as_icluster
from .gpu_node_pool import AMI_FAMILY_LABEL, EFA_LABEL

__all__ = ["DevicePluginsProps", "GpuDevicePlugins", "eks_addon_registry_account", "nvidia_plugin_config"]

#: Account of the Amazon EKS add-on image registry in each region (Amazon EKS User Guide, "View Amazon
#: container image registries for Amazon EKS add-ons"): 602401143452 everywhere but the regions below.
#: The EFA chart's default image is in us-west-2's registry; a node pulls from its own region's.
EKS_REGISTRY_DEFAULT_ACCOUNT = "602401143452"
EKS_REGISTRY_ACCOUNTS: Mapping[str, str] = {
    "af-south-1": "877085696533",
    "ap-east-1": "800184023465",
    "ap-east-2": "533267051163",
    "ap-south-2": "900889452093",
    "ap-southeast-3": "296578399912",
    "ap-southeast-4": "491585149902",
    "ap-southeast-5": "151610086707",
    "ap-southeast-6": "333609536671",
    "ap-southeast-7": "121268973566",
    "ca-west-1": "761377655185",
    "cn-north-1": "918309763551",
    "cn-northwest-1": "961992271922",
    "eu-central-2": "900612956339",
    "eu-south-1": "590381155156",
    "eu-south-2": "455263428931",
    "il-central-1": "066635153087",
    "me-central-1": "759879836304",
    "me-south-1": "558608220178",
    "mx-central-1": "730335286997",
    "us-gov-east-1": "151742754352",
    "us-gov-west-1": "013241004608",
}
#: Regions served by the default account (listed so an environment-agnostic template can map every region).
EKS_REGISTRY_DEFAULT_REGIONS = (
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ca-central-1",
    "eu-central-1",
    "eu-north-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
)
EFA_IMAGE_PATH = "eks/aws-efa-k8s-device-plugin"


def eks_addon_registry_account(region: str) -> str:
    """The EKS add-on registry account of a (concrete) region."""
    return EKS_REGISTRY_ACCOUNTS.get(region, EKS_REGISTRY_DEFAULT_ACCOUNT)


#: Name of the device plugin config every node uses unless its pool names its own.
DEFAULT_CONFIG = "default"


def nvidia_plugin_config(sharing: GpuSharing) -> str:
    """The device plugin's config file (``version: v1``) for ``sharing``."""
    doc: dict[str, Any] = {"version": "v1", "flags": {"migStrategy": sharing.mig_strategy}}
    if sharing.time_slicing_replicas > 1:
        doc["sharing"] = {
            "timeSlicing": {"resources": [{"name": GPU_RESOURCE, "replicas": sharing.time_slicing_replicas}]}
        }
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass(frozen=True, kw_only=True)
class DevicePluginsProps:
    """Options of the device plugins.

    ``namespace`` — default ``kube-system``. ``default_sharing`` — time-slicing / MIG on every
    GPU node (default none). ``pool_sharing`` — per-pool overrides, pool name -> sharing; a pool
    selects its entry through the ``nvidia.com/device-plugin.config`` node label its
    :class:`GpuNodePool` sets (default none). ``efa`` — also install the EFA plugin (default True).
    ``nvidia_chart`` / ``efa_chart`` — default the pins in :mod:`eks_llm_stack.versions`.
    """

    namespace: str = "kube-system"
    default_sharing: GpuSharing = field(default_factory=GpuSharing)
    pool_sharing: Mapping[str, GpuSharing] = field(default_factory=dict)
    efa: bool = True
    nvidia_chart: versions.HelmChartPin = versions.NVIDIA_DEVICE_PLUGIN
    efa_chart: versions.HelmChartPin = versions.EFA_DEVICE_PLUGIN

    def __post_init__(self) -> None:
        with collecting("DevicePluginsProps") as p:
            self.default_sharing.check(p, "default_sharing")
            for name, sharing in self.pool_sharing.items():
                sharing.check(p, f"pool_sharing.{name}")
                p.check(
                    name != DEFAULT_CONFIG,
                    f"pool_sharing.{name}",
                    name,
                    "is the name of the default config",
                    "rename the pool, or set default_sharing instead",
                )

    @classmethod
    def for_pools(cls, pools: Sequence[GpuNodePoolProps], *, namespace: str = "kube-system") -> DevicePluginsProps:
        """Plugins for these pools: their sharing overrides, and EFA when any pool uses it."""
        return cls(
            namespace=namespace,
            pool_sharing={
                p.name: p.device_plugin for p in pools if p.device_plugin is not None and not p.device_plugin.is_default
            },
            efa=any(p.efa for p in pools),
        )


class GpuDevicePlugins(Construct):
    """The NVIDIA device plugin on every GPU node, and the EFA plugin on EFA nodes.

    Public attributes: ``cluster``, ``nvidia`` and ``efa`` (the ``HelmChart`` s; ``efa`` is None when off).
    """

    #: What a GpuNodePool looks for in the app to know its GPUs will be advertised (checked at synth).
    ADVERTISES_GPUS = True

    def __init__(
        self, scope: Construct, id: str, *, cluster: ClusterLike, props: DevicePluginsProps | None = None
    ) -> None:
        super().__init__(scope, id)
        cluster = as_icluster(cluster)
        props = props if props is not None else DevicePluginsProps()
        self.props = props
        self.cluster = cluster
        self.nvidia = eks.HelmChart(
            self,
            "Nvidia",
            cluster=cluster,
            chart=props.nvidia_chart.chart,
            repository=props.nvidia_chart.repository,
            version=props.nvidia_chart.version,
            namespace=props.namespace,
            release="nvidia-device-plugin",
            values=self.nvidia_values(),
        )
        self.efa: eks.HelmChart | None = None
        if props.efa:
            self.efa = eks.HelmChart(
                self,
                "Efa",
                cluster=cluster,
                chart=props.efa_chart.chart,
                repository=props.efa_chart.repository,
                version=props.efa_chart.version,
                namespace=props.namespace,
                release="aws-efa-k8s-device-plugin",
                values=self.efa_values(),
            )

    def nvidia_values(self) -> dict[str, Any]:
        configs = {DEFAULT_CONFIG: nvidia_plugin_config(self.props.default_sharing)}
        configs.update({name: nvidia_plugin_config(s) for name, s in sorted(self.props.pool_sharing.items())})
        return {
            "config": {"map": configs, "default": DEFAULT_CONFIG},
            # The chart's default affinity wants Node Feature Discovery labels, which we do not
            # install; Karpenter's GPU-count label marks GPU nodes. Bottlerocket runs its own plugin.
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {
                        "nodeSelectorTerms": [
                            {
                                "matchExpressions": [
                                    {"key": GPU_COUNT_LABEL, "operator": "Exists"},
                                    {"key": AMI_FAMILY_LABEL, "operator": "NotIn", "values": ["bottlerocket"]},
                                ]
                            }
                        ]
                    }
                }
            },
            "tolerations": gpu_tolerations(),
            "priorityClassName": "system-node-critical",
        }

    def efa_image_repository(self) -> str:
        """The EFA plugin image in the cluster's own region (and partition: ``.com.cn`` in China)."""
        stack = Stack.of(self)
        if not Token.is_unresolved(stack.region):
            account = eks_addon_registry_account(stack.region)
            suffix = "amazonaws.com.cn" if stack.region.startswith("cn-") else "amazonaws.com"
        else:
            # An environment-agnostic stack: the region is only known at deploy time.
            regions = {r: EKS_REGISTRY_DEFAULT_ACCOUNT for r in EKS_REGISTRY_DEFAULT_REGIONS} | dict(
                EKS_REGISTRY_ACCOUNTS
            )
            mapping = CfnMapping(self, "EksRegistry", mapping={r: {"account": a} for r, a in sorted(regions.items())})
            account = mapping.find_in_map(Aws.REGION, "account")
            suffix = Aws.URL_SUFFIX
        return f"{account}.dkr.ecr.{stack.region}.{suffix}/{EFA_IMAGE_PATH}"

    def efa_values(self) -> dict[str, Any]:
        return {
            "image": {"repository": self.efa_image_repository()},
            "nodeSelector": {EFA_LABEL: "true"},
            "tolerations": gpu_tolerations(),
        }
