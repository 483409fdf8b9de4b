"""Reusable CDK constructs, one public construct per module; every public name is importable from here.

``from eks_llm_stack.constructs import LlmCluster, Karpenter, GpuNodePool`` — the minimum set per capability is
in ``docs/library.md``.
"""

from ..config.gpu_pool import (
    DisruptionBudget,
    GpuNodePoolProps,
    GpuRequirements,
    GpuSharing,
    PlacementGroupSpec,
    PoolLimits,
    RootVolume,
)
from .cluster import LlmCluster, LlmClusterProps
from .csi_drivers import StorageCsiDrivers, StorageCsiDriversProps
from .device_plugins import DevicePluginsProps, GpuDevicePlugins
from .external_secrets import ExternalSecretsOperator, ExternalSecretsOperatorProps
from .gpu_node_pool import GpuNodePool
from .karpenter import Karpenter, KarpenterProps
from .model_secrets import ModelSecrets, ModelSecretsProps
from .model_storage import DataRepositoryOptions, EfsCacheOptions, LustreOptions, ModelStorage, ModelStorageProps
from .network import ClusterNetwork, ClusterNetworkProps
from .observability import Observability, ObservabilityProps
from .placement_group import PoolPlacementGroup
from .pod_identity import PodIdentity
from .serving_controllers import ServingControllers, ServingControllersProps

__all__ = [
    "ClusterNetwork",
    "ClusterNetworkProps",
    "DataRepositoryOptions",
    "DevicePluginsProps",
    "DisruptionBudget",
    "EfsCacheOptions",
    "ExternalSecretsOperator",
    "ExternalSecretsOperatorProps",
    "GpuDevicePlugins",
    "GpuNodePool",
    "GpuNodePoolProps",
    "GpuRequirements",
    "GpuSharing",
    "Karpenter",
    "KarpenterProps",
    "LlmCluster",
    "LlmClusterProps",
    "LustreOptions",
    "ModelSecrets",
    "ModelSecretsProps",
    "ModelStorage",
    "ModelStorageProps",
    "Observability",
    "ObservabilityProps",
    "PlacementGroupSpec",
    "PodIdentity",
    "PoolLimits",
    "PoolPlacementGroup",
    "RootVolume",
    "ServingControllers",
    "ServingControllersProps",
    "StorageCsiDrivers",
    "StorageCsiDriversProps",
]
