"""``Platform``: the cluster and everything that runs the cluster (controllers, GPU pools, monitoring)."""

from __future__ import annotations

from constructs import Construct

from ..charts.namespaces import NamespacesChart, NamespacesChartProps, NamespaceSpec
from ..config import Profile
from ..constructs.cluster import LlmCluster, LlmClusterProps
from .base import ChartRegistry, PlatformStackBase
from .data import DataStack
from .network import NetworkStack


class PlatformStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        network: NetworkStack,
        data: DataStack,
        charts: ChartRegistry,
        expires_at: str | None = None,
    ) -> None:
        super().__init__(
            scope, "Platform", profile=profile, description="EKS cluster, GPU capacity, controllers", expires_at=expires_at
        )
        self.add_stack_dependency(data)
        c = profile.cluster
        self.llm_cluster = LlmCluster(
            self,
            "Cluster",
            props=LlmClusterProps(
                cluster_name=profile.cluster_name,
                vpc=network.vpc,
                subnets=network.private_subnets,
                kubernetes_version=c.kubernetes_version,
                admin_principal_arns=c.admins,
                public_endpoint=c.endpoint.public,
                private_endpoint=c.endpoint.private,
                public_cidrs=c.endpoint.public_cidrs,
                system_instance_types=c.system_nodes.instance_types,
                system_desired=c.system_nodes.desired,
                system_min=c.system_nodes.min,
                system_max=c.system_nodes.max,
                system_disk_gib=c.system_nodes.disk_gib,
                addon_versions=dict(c.addon_versions),
                removal_policy=data.removal_policy,
            ),
        )
        self.cluster = self.llm_cluster.cluster
        self.system_nodegroup = self.llm_cluster.system_nodegroup
        self.namespaces = charts.apply(
            self,
            "namespaces",
            NamespacesChart(
                charts.app,
                "namespaces",
                props=NamespacesChartProps(namespaces=(NamespaceSpec(name=profile.serving_namespace),)),
            ),
            self.cluster,
        )

        # -- GPU compute (Karpenter, node pools, device plugins) ----------------------------------

        # -- storage drivers (EFS / FSx CSI) --------------------------------------------------------

        # -- secrets sync (External Secrets Operator) -----------------------------------------------

        # -- observability --------------------------------------------------------------------------
