"""cdk8s charts, one workload per module; every public chart and its props are importable from here.

Each chart is usable three ways: applied by ``cdk deploy`` (``cluster.add_cdk8s_chart``), written to YAML for
GitOps (``eks_llm_stack.charts.render.write_manifests``), or composed by another repository's cdk8s app.
"""

from .autoscaling import ModelAutoscaler, ModelAutoscalerProps
from .benchmark_job import BenchmarkJobChart, BenchmarkJobProps, PvcResults
from .dcgm_exporter import DcgmExporterChart, DcgmExporterProps
from .external_secrets import ExternalSecretsChart, ExternalSecretsChartProps, SecretStore, SyncedSecret
from .model import ModelApiKey, ModelChart, ModelChartProps
from .model_fetch import ModelFetch, ModelFetchJob
from .monitoring import MonitoringChart, MonitoringChartProps, VllmMonitorProps, VllmPodMonitor, VllmServiceMonitor
from .namespaces import NamespacesChart, NamespacesChartProps, NamespaceSpec
from .network_policies import (
    ModelNetworkPolicy,
    ModelNetworkPolicyProps,
    ServingNamespacePolicies,
    ServingNamespacePoliciesProps,
)
from .prepull import ImagePrepull, ImagePrepullProps
from .storage import EfsVolume, FsxVolume, StorageChart, StorageChartProps
from .vllm import (
    ModelIngress,
    VllmChart,
    VllmChartProps,
    VllmModel,
    VllmModelProps,
    WeightsFromClaim,
    WeightsFromHub,
    WeightsFromS3,
)

__all__ = [
    "BenchmarkJobChart",
    "BenchmarkJobProps",
    "DcgmExporterChart",
    "DcgmExporterProps",
    "EfsVolume",
    "ExternalSecretsChart",
    "ExternalSecretsChartProps",
    "FsxVolume",
    "ImagePrepull",
    "ImagePrepullProps",
    "ModelApiKey",
    "ModelAutoscaler",
    "ModelAutoscalerProps",
    "ModelChart",
    "ModelChartProps",
    "ModelFetch",
    "ModelFetchJob",
    "ModelIngress",
    "ModelNetworkPolicy",
    "ModelNetworkPolicyProps",
    "MonitoringChart",
    "MonitoringChartProps",
    "NamespaceSpec",
    "NamespacesChart",
    "NamespacesChartProps",
    "PvcResults",
    "SecretStore",
    "ServingNamespacePolicies",
    "ServingNamespacePoliciesProps",
    "StorageChart",
    "StorageChartProps",
    "SyncedSecret",
    "VllmChart",
    "VllmChartProps",
    "VllmModel",
    "VllmModelProps",
    "VllmMonitorProps",
    "VllmPodMonitor",
    "VllmServiceMonitor",
    "WeightsFromClaim",
    "WeightsFromHub",
    "WeightsFromS3",
]
