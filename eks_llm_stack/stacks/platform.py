"""``Platform``: the cluster and everything that runs the cluster (controllers, GPU pools, monitoring)."""

from __future__ import annotations

import dataclasses
from typing import cast

import cdk8s
from aws_cdk import Annotations, Tags
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct

from ..charts.dcgm_exporter import DcgmExporterChart, DcgmExporterProps
from ..charts.external_secrets import (
    CLUSTER_SECRET_STORE_NAME,
    ExternalSecretsChart,
    ExternalSecretsChartProps,
    SecretStore,
    SyncedSecret,
)
from ..charts.monitoring import MonitoringChart, MonitoringChartProps
from ..charts.namespaces import NamespacesChart, NamespacesChartProps, NamespaceSpec
from ..charts.network_policies import ServingNamespacePolicies, ServingNamespacePoliciesProps
from ..charts.storage import EfsVolume, FsxVolume, StorageChart, StorageChartProps
from ..config import Profile
from ..config.ephemeral import pool_node_tags
from ..constructs.cluster import LlmCluster, LlmClusterProps
from ..constructs.csi_drivers import StorageCsiDrivers, StorageCsiDriversProps
from ..constructs.device_plugins import DevicePluginsProps, GpuDevicePlugins
from ..constructs.external_secrets import ExternalSecretsOperator, ExternalSecretsOperatorProps
from ..constructs.gpu_node_pool import GpuNodePool
from ..constructs.karpenter import Karpenter
from ..constructs.model_secrets import API_KEY_PATH
from ..constructs.observability import Observability, ObservabilityProps
from ..constructs.serving_controllers import ServingControllers, ServingControllersProps
from ..conventions import PLATFORM_STACK, secret_name
from ..naming import pascal_case
from ..plan import PlatformPlan
from .base import ChartRegistry, PlatformStackBase
from .data import DataStack
from .network import NetworkStack


def cdk8s_chart(app: cdk8s.App, name: str) -> cdk8s.Chart:
    """An empty chart with stable object names, to put constructs in."""
    return cdk8s.Chart(app, name, disable_resource_name_hashes=True)


class PlatformStack(PlatformStackBase):
    def __init__(
        self,
        scope: Construct,
        *,
        profile: Profile,
        plan: PlatformPlan,
        network: NetworkStack,
        data: DataStack,
        charts: ChartRegistry,
        expires_at: str | None = None,
        deployment_id: str | None = None,
    ) -> None:
        super().__init__(
            scope,
            PLATFORM_STACK,
            profile=profile,
            description="EKS cluster, GPU capacity, controllers",
            expires_at=expires_at,
            deployment_id=deployment_id,
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
                public_endpoint=c.endpoint.public_enabled,
                private_endpoint=c.endpoint.private,
                public_cidrs=c.endpoint.allowed_cidrs,
                allow_public_internet=c.endpoint.allow_public_internet,
                system_instance_types=c.system_nodes.instance_types,
                system_desired=c.system_nodes.desired,
                system_min=c.system_nodes.min,
                system_max=c.system_nodes.max,
                system_disk_gib=c.system_nodes.disk_gib,
                addon_versions=dict(c.addon_versions),
                removal_policy=data.removal_policy,
                volume_tags=dict(self.resource_tags),
            ),
        )
        # aws-cdk-lib's Python typing leaves kubectl_provider_options off Cluster, so mypy does not
        # take a Cluster for the ICluster every construct below accepts; it is one at run time.
        self.cluster: eks.ICluster = cast(eks.ICluster, self.llm_cluster.cluster)
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
        # Default-deny for the serving namespace; each model's chart opens what that model needs.

        policies = cdk8s_chart(charts.app, "network-policies")
        ServingNamespacePolicies(
            policies, "Serving", props=ServingNamespacePoliciesProps(namespace=profile.serving_namespace)
        )
        self.network_policies = charts.apply(
            self, "network-policies", policies, self.cluster, depends_on=(self.namespaces,)
        )

        # -- GPU compute (Karpenter, node pools, device plugins) ----------------------------------
        #: ``Karpenter`` or None (no pools in the profile); ``gpu_pools`` by pool name.
        self.karpenter = None
        self.gpu_pools: dict = {}
        if plan.karpenter:
            self.karpenter = Karpenter(self, "Karpenter", cluster=self.cluster)
            # The controller runs on the system node group: install it once that group exists.
            self.karpenter.chart.node.add_dependency(self.system_nodegroup)
            pool_subnets = network.vpc.select_subnets(**network.private_subnets._values).subnets
            # GPU nodes carry the storage client group, so they can mount FSx / EFS. It is selected by a
            # tag with a plain value: its id is another stack's export, unknown until deploy time.
            client_tags: dict[str, str] = {}
            if data.model_storage is not None:
                client_tags = {"eks-llm-stack.io/gpu-node-group": profile.cluster_name}
                Tags.of(data.model_storage.client_security_group).add(*next(iter(client_tags.items())))
            pool_props = plan.pools
            for props in pool_props:
                # One replace (each one re-checks the props): stack tags under the pool's own, plus the
                # storage client group's tag when there is storage.
                props = dataclasses.replace(
                    props,
                    node_tags=pool_node_tags(self.resource_tags, props.node_tags),
                    security_group_tags={**props.security_group_tags, **client_tags},
                )
                if props.name in plan.unpinned_ami_pools:
                    Annotations.of(self).add_warning_v2(
                        "eks-llm-stack:unpinned-ami",
                        f"pool '{props.name}': the AMI alias follows 'latest', so nodes change image with every "
                        "release -- fix: pin compute.pools[].ami_version (e.g. v20260930) in a production profile",
                    )
                pool = GpuNodePool(
                    self,
                    "GpuPool" + pascal_case(props.name),
                    cluster=self.cluster,
                    karpenter=self.karpenter,
                    props=props,
                    subnets=pool_subnets,
                    apply_manifests=False,
                )
                charts.apply(
                    self,
                    f"gpu-pool-{props.name}",
                    pool.to_chart(charts.app),
                    self.cluster,
                    depends_on=tuple(pool.dependencies()),
                )
                self.gpu_pools[props.name] = pool
            self.device_plugins = GpuDevicePlugins(
                self, "GpuDevicePlugins", cluster=self.cluster, props=DevicePluginsProps.for_pools(pool_props)
            )

        # -- storage drivers (EFS / FSx CSI) --------------------------------------------------------
        storage = data.model_storage
        if storage is not None:
            self.csi_drivers = StorageCsiDrivers(
                self,
                "StorageCsiDrivers",
                props=StorageCsiDriversProps(
                    cluster=self.cluster, efs_file_system=storage.efs, fsx_file_system_arn=storage.fsx_file_system_arn
                ),
            )
            fsx_volume = efs_volume = None
            if storage.lustre is not None and profile.storage.fsx is not None:
                fsx_volume = FsxVolume(
                    file_system_id=storage.lustre.file_system_id,
                    dns_name=storage.lustre.dns_name,
                    mount_name=storage.lustre.mount_name,
                    capacity_gib=profile.storage.fsx.storage_capacity_gib,
                )
            if storage.efs is not None and storage.access_point is not None:
                efs_volume = EfsVolume(
                    file_system_id=storage.efs.file_system_id, access_point_id=storage.access_point.access_point_id
                )
            self.storage_manifest = charts.apply(
                self,
                "storage",
                StorageChart(
                    charts.app,
                    "storage",
                    props=StorageChartProps(
                        namespace=profile.serving_namespace, name_prefix=profile.prefix, fsx=fsx_volume, efs=efs_volume
                    ),
                ),
                self.cluster,
                depends_on=(self.namespaces, *self.csi_drivers.addons),
            )

        # -- secrets sync (External Secrets Operator) -----------------------------------------------
        secrets = data.model_secrets
        #: Name of the ClusterSecretStore of the monitoring namespace (Grafana's login), or None.
        self.monitoring_store: str | None = None
        if secrets is not None:
            #: The operator; ``.store_name`` is the serving namespace's ClusterSecretStore.
            self.external_secrets = ExternalSecretsOperator(
                self,
                "ExternalSecrets",
                props=ExternalSecretsOperatorProps(
                    cluster=self.cluster,
                    secrets=tuple(secrets.secrets.values()),
                    keys=(secrets.key,),
                    # The models' API keys by prefix: adding a model adds no permission to this stack.
                    secret_name_prefixes=(secret_name(profile.prefix, API_KEY_PATH) + "/",),
                ),
            )
            # One store per consumer: the monitoring namespace gets the Grafana login and nothing else.
            extra: tuple[SecretStore, ...] = ()
            if data.grafana_admin_secret is not None:
                reader = self.external_secrets.add_reader("MonitoringReader", secrets=(data.grafana_admin_secret,))
                self.monitoring_store = f"{self.external_secrets.store_name}-monitoring"
                extra = (
                    SecretStore(
                        name=self.monitoring_store,
                        namespaces=(profile.observability.namespace,),
                        role_arn=reader.role_arn,
                    ),
                )
            self.external_secrets_manifest = charts.apply(
                self,
                "external-secrets",
                ExternalSecretsChart(
                    charts.app,
                    "external-secrets",
                    props=ExternalSecretsChartProps(
                        region=self.region,
                        namespace=profile.serving_namespace,
                        refresh_interval=profile.secrets.refresh_interval,
                        # The serving store: the serving namespace, through the default reader only.
                        role_arn=self.external_secrets.reader.role_arn,
                        extra_stores=extra,
                        secrets=tuple(
                            # By name, not ARN: readable in dist/manifests, and no export pinning the secret.
                            SyncedSecret(name=k8s_name, remote_key=secrets.secret_names[name])
                            for name, k8s_name in secrets.kubernetes_secret_names().items()
                        ),
                    ),
                ),
                self.cluster,
                depends_on=(self.namespaces, self.external_secrets.helm_chart),
            )

        # -- observability --------------------------------------------------------------------------
        obs_cfg = profile.observability
        #: ``Observability`` (kube-prometheus-stack and the managed options) or None.
        self.observability = None
        if plan.observability:
            store = self.monitoring_store or CLUSTER_SECRET_STORE_NAME
            # The plan decides which secret holds the login (created by the Data stack, or the profile's own).
            grafana = plan.grafana_admin_secret
            obs_props = ObservabilityProps.from_config(
                obs_cfg, secret_store_name=store, grafana_admin_secret=grafana.name if grafana else None
            )
            self.observability = Observability(self, "Observability", cluster=self.cluster, props=obs_props)
            self.observability.chart.node.add_dependency(self.system_nodegroup)
            if data.grafana_admin_secret is not None and secrets is not None:
                # The ExternalSecret needs the operator's CRDs and the store.
                assert self.observability.grafana_admin_secret is not None
                self.observability.grafana_admin_secret.node.add_dependency(self.external_secrets_manifest)
            # ServiceMonitors, PodMonitors and PrometheusRules need the operator's CRDs from the chart.
            monitoring_crds = (self.observability.chart,)
            charts.apply(
                self,
                "monitoring",
                MonitoringChart(
                    charts.app,
                    "monitoring",
                    props=MonitoringChartProps(
                        namespace=obs_cfg.namespace, thresholds=obs_cfg.alerts, dashboards=not obs_cfg.managed
                    ),
                ),
                self.cluster,
                depends_on=monitoring_crds,
            )
            charts.apply(
                self,
                "dcgm-exporter",
                DcgmExporterChart(
                    charts.app,
                    "dcgm-exporter",
                    props=DcgmExporterProps(
                        # It needs the host: the privileged namespace, so that monitoring stays restricted.
                        namespace=obs_props.node_agents_namespace,
                        profiling_metrics=obs_cfg.dcgm_profiling_metrics,
                    ),
                ),
                self.cluster,
                depends_on=(*monitoring_crds, self.observability.node_agents_namespace),
            )

        # -- serving controllers (LeaderWorkerSet, KEDA, AWS Load Balancer Controller) ---------------
        #: Helm releases the model charts of the Serving stack are applied after.
        self.serving_controller_charts: tuple = ()
        if plan.serving_controllers:
            lbc = plan.load_balancer_controller
            self.serving_controllers = ServingControllers(
                self,
                "ServingControllers",
                props=ServingControllersProps(
                    cluster=self.cluster,
                    load_balancer_controller=lbc,
                    vpc_id=network.vpc.vpc_id if lbc else None,
                    region=self.region if lbc else None,
                ),
            )
            self.serving_controller_charts = self.serving_controllers.charts
