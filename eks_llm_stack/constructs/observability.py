"""``Observability``: kube-prometheus-stack on the system nodes, and the AWS-managed options.

In the cluster (always):

* the ``monitoring`` namespace (Pod Security ``restricted``) and ``monitoring-node-agents``
  (``privileged``: node-exporter and the DCGM exporter read the host), a gp3 StorageClass for Prometheus' volume, and an
  ``ExternalSecret`` that syncs the Grafana admin login from Secrets Manager;
* kube-prometheus-stack (pinned in :mod:`eks_llm_stack.versions`) with its controllers,
  Prometheus, Alertmanager and Grafana on the system node group, Prometheus retention and
  volume from the props, selectors that pick up every ServiceMonitor, PodMonitor and
  PrometheusRule (so the DCGM and monitoring charts are found wherever they are applied),
  node labels exposed by kube-state-metrics, and the Grafana dashboard sidecar.

With ``managed_prometheus``: an Amazon Managed Service for Prometheus workspace, and
Prometheus remote-writes to it through an EKS Pod Identity role allowed ``aps:RemoteWrite``
on that workspace only. With ``managed_grafana``: an Amazon Managed Grafana workspace whose
role may query that workspace only, replacing the in-cluster Grafana. With
``container_insights``: the ``amazon-cloudwatch-observability`` EKS add-on (off by default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack, Token
from aws_cdk import aws_aps as aps
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_grafana as grafana
from aws_cdk import aws_iam as iam
from constructs import Construct

from .. import versions
from ..charts.monitoring import DASHBOARD_LABEL, DASHBOARD_LABEL_VALUE
from ..config.observability import ObservabilityConfig, check_duration
from ..conventions import (
    CAPACITY_TYPE_LABEL,
    GRAFANA_ADMIN_SECRET,
    INSTANCE_TYPE_LABEL,
    MANAGED_BY,
    POOL_LABEL,
    SYSTEM_NODE_LABEL,
    SYSTEM_TAINT_KEY,
)
from ..errors import collecting
from ..naming import is_dns_label
from ..versions import HelmChartPin
from .applied import add_manifest
from .cluster_type import ClusterLike, as_icluster
from .pod_identity import pod_identity, pod_identity_role

#: API version of the External Secrets CRDs (v2.x).
EXTERNAL_SECRETS_API = "external-secrets.io/v1"
#: Keys of the Kubernetes Secret holding the Grafana admin login (``conventions.GRAFANA_ADMIN_SECRET``).
GRAFANA_USER_KEY = "admin-user"
GRAFANA_PASSWORD_KEY = "admin-password"
#: Namespace of the agents that need the host (node-exporter, the DCGM exporter): Pod Security
#: ``privileged``, and nothing else runs there.
NODE_AGENTS_NAMESPACE = "monitoring-node-agents"
#: File name of the objects applied here, in dist/manifests (namespaces, StorageClass, ExternalSecret).
MANIFESTS = "observability"


def _system_scheduling() -> dict[str, Any]:
    """Values fragment that puts a component on the system node group."""
    return {
        "nodeSelector": {SYSTEM_NODE_LABEL: "true"},
        "tolerations": [{"key": SYSTEM_TAINT_KEY, "operator": "Exists"}],
    }


@dataclass(frozen=True, kw_only=True)
class ObservabilityProps:
    """The monitoring stack.

    ``secret_store_name`` — the External Secrets ``ClusterSecretStore`` for Secrets Manager (required;
    it must allow the monitoring namespace). ``grafana_admin_secret`` — Secrets Manager name or ARN of a
    JSON secret with ``username``/``password`` (required unless ``managed_grafana``).
    ``namespace`` — default ``monitoring``. ``release`` — Helm release name (default ``kube-prometheus-stack``).
    ``chart`` — default :data:`versions.KUBE_PROMETHEUS_STACK`. ``retention`` — default ``15d``.
    ``storage_gib`` — Prometheus volume (default 50). ``storage_class`` — name of the gp3 StorageClass
    created for it (default ``monitoring-gp3``; ``create_storage_class=False`` to use an existing one).
    ``scrape_interval`` — default ``30s``. ``managed_prometheus`` / ``managed_grafana`` — AMP remote-write /
    AMG workspace (default off). ``grafana_authentication`` — AMG sign-in (default ``AWS_SSO``, which needs IAM
    Identity Center). ``container_insights`` — CloudWatch add-on (default off). ``workspace_alias`` — AMP
    alias (default: the cluster name). ``prometheus_service_account`` — name of Prometheus' service account,
    the subject of the remote-write role (default ``prometheus``). ``node_agents_namespace`` — the
    ``privileged`` namespace of node-exporter and the DCGM exporter (default ``monitoring-node-agents``),
    so that ``namespace`` can be ``restricted``.
    """

    secret_store_name: str
    grafana_admin_secret: str | None = None
    namespace: str = "monitoring"
    release: str = "kube-prometheus-stack"
    chart: HelmChartPin = versions.KUBE_PROMETHEUS_STACK
    retention: str = "15d"
    storage_gib: int = 50
    storage_class: str = "monitoring-gp3"
    create_storage_class: bool = True
    scrape_interval: str = "30s"
    managed_prometheus: bool = False
    managed_grafana: bool = False
    grafana_authentication: tuple[str, ...] = ("AWS_SSO",)
    container_insights: bool = False
    workspace_alias: str | None = None
    prometheus_service_account: str = "prometheus"
    node_agents_namespace: str = NODE_AGENTS_NAMESPACE

    def __post_init__(self) -> None:
        with collecting("ObservabilityProps") as p:
            for name in (
                "secret_store_name",
                "namespace",
                "release",
                "storage_class",
                "prometheus_service_account",
                "node_agents_namespace",
            ):
                value = getattr(self, name)
                p.check(
                    is_dns_label(value),
                    name,
                    value,
                    "is not a valid Kubernetes name",
                    "use at most 63 lowercase letters, digits or '-'",
                )
            for name, what in (("retention", "retention duration"), ("scrape_interval", "scrape interval")):
                try:
                    check_duration(getattr(self, name), what)
                except ValueError as exc:
                    p.add(name, str(exc).split(" -- fix: ")[0], "write a whole number and one unit: 30s, 15d")
            p.check(
                10 <= self.storage_gib <= 16384,
                "storage_gib",
                self.storage_gib,
                "is outside 10..16384 GiB",
                "give Prometheus 10 GiB or more (gp3 allows up to 16 TiB)",
            )
            p.check(
                self.managed_grafana or bool(self.grafana_admin_secret),
                "grafana_admin_secret",
                self.grafana_admin_secret,
                "is required for the in-cluster Grafana",
                'name the Secrets Manager secret holding {"username", "password"}, or set managed_grafana=True',
            )
            p.check(
                not self.managed_grafana or self.managed_prometheus,
                "managed_grafana",
                self.managed_grafana,
                "Amazon Managed Grafana needs a managed Prometheus workspace to read",
                "set managed_prometheus=True as well (the profile's 'managed' flag sets both)",
            )
            allowed = {"AWS_SSO", "SAML"}
            p.check(
                bool(self.grafana_authentication) and set(self.grafana_authentication) <= allowed,
                "grafana_authentication",
                self.grafana_authentication,
                "is not a set of Amazon Managed Grafana providers",
                "use ('AWS_SSO',), ('SAML',) or both",
            )
            if self.workspace_alias is not None and not Token.is_unresolved(self.workspace_alias):
                p.check(
                    1 <= len(self.workspace_alias) <= 100,
                    "workspace_alias",
                    self.workspace_alias,
                    "must be 1..100 characters",
                    "shorten it",
                )

    @classmethod
    def from_config(
        cls, config: ObservabilityConfig, *, secret_store_name: str, grafana_admin_secret: str | None = None
    ) -> ObservabilityProps:
        """Props from the profile's ``observability`` section; ``grafana_admin_secret`` — the secret the plan
        chose for the login (default: the section's own ``grafana_admin_secret``)."""
        return cls(
            secret_store_name=secret_store_name,
            grafana_admin_secret=grafana_admin_secret
            if grafana_admin_secret is not None
            else config.grafana_admin_secret,
            namespace=config.namespace,
            retention=config.retention,
            storage_gib=config.storage_gib,
            scrape_interval=config.scrape_interval,
            managed_prometheus=config.managed,
            managed_grafana=config.managed,
            container_insights=config.container_insights,
        )


def namespace_manifest(namespace: str, level: str = "restricted") -> dict[str, Any]:
    """The monitoring namespace: ``restricted`` (the node agents, which need the host, have their own)."""
    from ..charts.namespaces import namespace_manifest as labelled

    return labelled(namespace, level)


def storage_class_manifest(name: str) -> dict[str, Any]:
    """An encrypted gp3 StorageClass on the EBS CSI driver (EKS's default class is gp2)."""
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": name, "labels": dict(MANAGED_BY)},
        "provisioner": "ebs.csi.aws.com",
        "parameters": {"type": "gp3", "encrypted": "true"},
        "volumeBindingMode": "WaitForFirstConsumer",
        # Prometheus' history survives a reinstall of the chart.
        "reclaimPolicy": "Retain",
        "allowVolumeExpansion": True,
    }


def grafana_admin_external_secret(*, namespace: str, store_name: str, remote_key: str) -> dict[str, Any]:
    """``ExternalSecret`` syncing the Grafana admin login (JSON ``username``/``password``) into ``grafana-admin``."""
    return {
        "apiVersion": EXTERNAL_SECRETS_API,
        "kind": "ExternalSecret",
        "metadata": {"name": GRAFANA_ADMIN_SECRET, "namespace": namespace, "labels": dict(MANAGED_BY)},
        "spec": {
            "refreshInterval": "1h",
            "secretStoreRef": {"kind": "ClusterSecretStore", "name": store_name},
            "target": {"name": GRAFANA_ADMIN_SECRET, "creationPolicy": "Owner"},
            "data": [
                {"secretKey": GRAFANA_USER_KEY, "remoteRef": {"key": remote_key, "property": "username"}},
                {"secretKey": GRAFANA_PASSWORD_KEY, "remoteRef": {"key": remote_key, "property": "password"}},
            ],
        },
    }


def helm_values(
    props: ObservabilityProps, *, remote_write_url: str | None = None, region: str | None = None
) -> dict[str, Any]:
    """The kube-prometheus-stack values for ``props`` (``remote_write_url``/``region`` with AMP)."""
    system = _system_scheduling()
    every: dict[str, Any] = {}  # an empty selector selects every object
    prometheus_spec: dict[str, Any] = {
        **system,
        "retention": props.retention,
        "scrapeInterval": props.scrape_interval,
        "evaluationInterval": props.scrape_interval,
        "storageSpec": {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": props.storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": f"{props.storage_gib}Gi"}},
                }
            }
        },
        # Without these the chart only selects objects labelled with its own release.
        "ruleSelectorNilUsesHelmValues": False,
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelector": every,
        "ruleNamespaceSelector": every,
        "serviceMonitorSelector": every,
        "serviceMonitorNamespaceSelector": every,
        "podMonitorSelector": every,
        "podMonitorNamespaceSelector": every,
    }
    if remote_write_url:
        prometheus_spec["remoteWrite"] = [{"url": remote_write_url, "sigv4": {"region": region}}]
    grafana_values: dict[str, Any] = {"enabled": not props.managed_grafana}
    if not props.managed_grafana:
        grafana_values.update(
            {
                **system,
                "admin": {
                    "existingSecret": GRAFANA_ADMIN_SECRET,
                    "userKey": GRAFANA_USER_KEY,
                    "passwordKey": GRAFANA_PASSWORD_KEY,
                },
                # A Role in the monitoring namespace, not a ClusterRole: the sidecars read ConfigMaps
                # and Secrets (dashboards, datasources) of this namespace only, never the cluster's.
                "rbac": {"namespaced": True},
                "sidecar": {
                    "dashboards": {
                        "enabled": True,
                        "label": DASHBOARD_LABEL,
                        "labelValue": DASHBOARD_LABEL_VALUE,
                        # No searchNamespace: Grafana's own namespace, where the dashboards chart puts them.
                        "folderAnnotation": "grafana_folder",
                        "provider": {"foldersFromFilesStructure": True},
                    }
                },
            }
        )
    node_labels = ",".join((POOL_LABEL, CAPACITY_TYPE_LABEL, INSTANCE_TYPE_LABEL))
    return {
        "prometheusOperator": {
            **system,
            "admissionWebhooks": {"patch": system},
        },
        "prometheus": {
            "serviceAccount": {"create": True, "name": props.prometheus_service_account},
            "prometheusSpec": prometheus_spec,
        },
        "alertmanager": {"alertmanagerSpec": system},
        "grafana": grafana_values,
        # Host access (hostNetwork, hostPID, hostPath) needs a privileged namespace of its own.
        "prometheus-node-exporter": {"namespaceOverride": props.node_agents_namespace},
        # kube_node_labels carries the pool and capacity type for ad-hoc cost queries.
        "kube-state-metrics": {**system, "metricLabelsAllowlist": [f"nodes=[{node_labels}]"]},
        **eks_control_plane_values(),
        "crds": crd_upgrade_values(),
    }


def eks_control_plane_values() -> dict[str, Any]:
    """EKS runs the controller manager, the scheduler and etcd itself and exposes none of them to
    in-cluster scrapes: their ServiceMonitors would find no target, so KubeControllerManagerDown,
    KubeSchedulerDown and the etcd alerts would fire for ever. Their scrapes and rules are off.
    (kube-proxy stays: the EKS add-on binds its metrics on 0.0.0.0:10249.)"""
    return {
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "defaultRules": {
            "rules": {
                "etcd": False,
                "kubeControllerManager": False,
                "kubeSchedulerAlerting": False,
                "kubeSchedulerRecording": False,
            }
        },
    }


def crd_upgrade_values() -> dict[str, Any]:
    """The chart's CRD upgrade Job: ``helm upgrade`` never touches a chart's ``crds/`` folder, so
    without it a chart bump would leave the prometheus-operator CRDs at their first version. The Job
    (a pre-install/pre-upgrade hook) server-side applies the CRDs the chart carries; it runs on the
    system nodes with pinned images."""
    busybox = versions.BUSYBOX_IMAGE
    registry, _, repository = busybox.repository.partition("/")
    return {
        "enabled": True,
        "upgradeJob": {
            "enabled": True,
            "forceConflicts": True,
            "image": {"busybox": {"registry": registry, "repository": repository, "tag": busybox.tag}},
            **_system_scheduling(),
        },
    }


class Observability(Construct):
    """kube-prometheus-stack in the cluster, plus the optional AWS-managed services.

    Public attributes: ``namespace`` / ``storage_class`` / ``grafana_admin_secret`` (the manifests),
    ``chart`` (the Helm release; apply ServiceMonitors and PrometheusRules after it),
    ``workspace`` / ``remote_write_role`` (AMP), ``grafana_workspace`` / ``grafana_role`` (AMG),
    ``container_insights`` (the add-on) — ``None`` when not enabled.
    """

    def __init__(self, scope: Construct, id: str, *, cluster: ClusterLike, props: ObservabilityProps) -> None:
        super().__init__(scope, id)
        cluster = as_icluster(cluster)
        self.props = props
        stack = Stack.of(self)

        self.namespace = add_manifest(
            self, cluster, f"{id}Namespace", namespace_manifest(props.namespace), name=MANIFESTS
        )
        self.node_agents_namespace = add_manifest(
            self,
            cluster,
            f"{id}NodeAgentsNamespace",
            namespace_manifest(props.node_agents_namespace, "privileged"),
            name=MANIFESTS,
        )
        self.storage_class: eks.KubernetesManifest | None = None
        if props.create_storage_class:
            self.storage_class = add_manifest(
                self, cluster, f"{id}StorageClass", storage_class_manifest(props.storage_class), name=MANIFESTS
            )

        self.grafana_admin_secret: eks.KubernetesManifest | None = None
        if not props.managed_grafana:
            assert props.grafana_admin_secret is not None  # checked by the props
            self.grafana_admin_secret = add_manifest(
                self,
                cluster,
                f"{id}GrafanaAdmin",
                grafana_admin_external_secret(
                    namespace=props.namespace, store_name=props.secret_store_name, remote_key=props.grafana_admin_secret
                ),
                name=MANIFESTS,
            )
            self.grafana_admin_secret.node.add_dependency(self.namespace)

        self.workspace: aps.CfnWorkspace | None = None
        self.remote_write_role: iam.Role | None = None
        remote_write_url: str | None = None
        if props.managed_prometheus:
            # aws_aps has no L2 construct; the workspace is an L1.
            self.workspace = aps.CfnWorkspace(self, "Workspace", alias=props.workspace_alias or cluster.cluster_name)
            self.remote_write_role = pod_identity(
                self,
                "RemoteWriteRole",
                cluster=cluster,
                namespace=props.namespace,
                service_account=props.prometheus_service_account,
                description="Prometheus remote-write to the platform's AMP workspace (EKS Pod Identity)",
                association_id="RemoteWriteIdentity",
            ).role
            self.remote_write_role.add_to_policy(
                iam.PolicyStatement(actions=["aps:RemoteWrite"], resources=[self.workspace.attr_arn])
            )
            remote_write_url = f"{self.workspace.attr_prometheus_endpoint}api/v1/remote_write"

        self.chart = eks.HelmChart(
            self,
            "KubePrometheusStack",
            cluster=cluster,
            chart=props.chart.chart,
            repository=props.chart.repository,
            version=props.chart.version,
            release=props.release,
            namespace=props.namespace,
            create_namespace=False,
            values=helm_values(props, remote_write_url=remote_write_url, region=stack.region),
        )
        self.chart.node.add_dependency(self.namespace, self.node_agents_namespace)
        if self.storage_class is not None:
            self.chart.node.add_dependency(self.storage_class)
        if self.grafana_admin_secret is not None:
            # Grafana starts only once its admin secret exists.
            self.chart.node.add_dependency(self.grafana_admin_secret)

        self.grafana_workspace: grafana.CfnWorkspace | None = None
        self.grafana_role: iam.Role | None = None
        if props.managed_grafana and self.workspace is not None:
            self.grafana_role = iam.Role(
                self,
                "GrafanaRole",
                assumed_by=iam.ServicePrincipal(
                    "grafana.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
                ),
                description="Amazon Managed Grafana: read the platform's AMP workspace",
            )
            self.grafana_role.add_to_policy(
                iam.PolicyStatement(
                    actions=["aps:QueryMetrics", "aps:GetSeries", "aps:GetLabels", "aps:GetMetricMetadata"],
                    resources=[self.workspace.attr_arn],
                )
            )
            # Listing is not resource-scoped in IAM; the data source picker needs it.
            self.grafana_role.add_to_policy(
                iam.PolicyStatement(actions=["aps:ListWorkspaces", "aps:DescribeWorkspace"], resources=["*"])
            )
            # aws_grafana has no L2 construct; the workspace is an L1.
            self.grafana_workspace = grafana.CfnWorkspace(
                self,
                "Grafana",
                account_access_type="CURRENT_ACCOUNT",
                authentication_providers=list(props.grafana_authentication),
                permission_type="CUSTOMER_MANAGED",
                role_arn=self.grafana_role.role_arn,
                data_sources=["PROMETHEUS"],
                description="eks-llm-stack GPU and vLLM dashboards (import dist/dashboards/*.json)",
            )

        self.container_insights: eks.CfnAddon | None = None
        if props.container_insights:
            agent_role = pod_identity_role(
                self,
                "CloudWatchAgentRole",
                "CloudWatch agent of the amazon-cloudwatch-observability add-on (EKS Pod Identity)",
                cluster=cluster,
                # Where the add-on runs its agent.
                namespace="amazon-cloudwatch",
                service_account="cloudwatch-agent",
            )
            agent_role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("CloudWatchAgentServerPolicy"))
            # The L2 Addon takes no pod identity associations; the L1 does.
            self.container_insights = eks.CfnAddon(
                self,
                "ContainerInsights",
                addon_name="amazon-cloudwatch-observability",
                cluster_name=cluster.cluster_name,
                resolve_conflicts="OVERWRITE",
                pod_identity_associations=[
                    eks.CfnAddon.PodIdentityAssociationProperty(
                        role_arn=agent_role.role_arn, service_account="cloudwatch-agent"
                    )
                ],
            )


__all__ = [
    "NODE_AGENTS_NAMESPACE",
    "Observability",
    "ObservabilityProps",
    "grafana_admin_external_secret",
    "helm_values",
    "namespace_manifest",
    "storage_class_manifest",
]
