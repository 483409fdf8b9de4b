"""``LlmCluster``: the EKS control plane, its add-ons and the system node group.

Built on ``aws_eks_v2`` (native ``AWS::EKS::Cluster``, access entries rather than the
aws-auth ConfigMap; see docs/adr/0001). The kubectl provider is configured explicitly with
the kubectl layer that matches the Kubernetes version, because manifests and Helm charts of
every later capability go through it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from typing import cast

from aws_cdk import RemovalPolicy, Size, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct, IConstruct

from .. import versions
from ..config.network import check_cidr
from ..conventions import SYSTEM_NODE_LABEL, SYSTEM_TAINT_KEY
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_checkov_generated, acknowledge_generated
from .network import allow_logs_to_use_key
from .pod_identity import pod_identity_role

#: How long control-plane logs (the audit log among them) are kept.
CONTROL_PLANE_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS

_K8S_VERSIONS = {"1.35": eks.KubernetesVersion.V1_35}

#: How a managed add-on treats fields another manager set (EKS's bootstrap, an earlier version of itself).
ADDON_RESOLVE_CONFLICTS = "OVERWRITE"
#: What a node's own role needs to join and pull images; no SSM (reach nodes with `kubectl debug node/...`).
SYSTEM_NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")

#: Managed add-ons installed on every cluster, with the service account that needs AWS access.
DEFAULT_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver", "metrics-server")


@dataclass(frozen=True, kw_only=True)
class LlmClusterProps:
    """The cluster.

    ``cluster_name`` — physical name (required: subnet discovery tags and Karpenter use it).
    ``vpc`` / ``subnets`` — where the control plane ENIs and system nodes go.
    ``admin_principal_arns`` — IAM roles/users given cluster-admin through access entries (default none).
    The identity that creates the cluster is *not* made an admin (``bootstrapClusterCreatorAdminPermissions``
    is off); the kubectl provider reaches the API through its own access entry (``ClusterAdminRoleAccess``,
    created by aws-cdk-lib for the provider's handler role).
    ``public_endpoint`` / ``private_endpoint`` / ``public_cidrs`` — API endpoint access (default: private
    only). A public endpoint needs ``public_cidrs``; a ``/0`` block is refused unless
    ``allow_public_internet`` is set deliberately.
    ``system_instance_types`` / ``system_desired`` / ``system_min`` / ``system_max`` / ``system_disk_gib`` —
    the on-demand AL2023 node group where controllers run (default m7i.large, 2/2/4, 50 GiB).
    ``addon_versions`` — pin managed add-on versions by name (default: EKS's default version for the
    Kubernetes version). ``removal_policy`` — of the secrets KMS key (default RETAIN).
    ``volume_tags`` — tags the EBS CSI driver puts on every volume it creates for a PVC (default none).
    """

    cluster_name: str
    vpc: ec2.IVpc
    subnets: ec2.SubnetSelection
    kubernetes_version: str = versions.KUBERNETES_VERSION
    admin_principal_arns: tuple[str, ...] = ()
    public_endpoint: bool = False
    private_endpoint: bool = True
    public_cidrs: tuple[str, ...] = ()
    allow_public_internet: bool = False
    system_instance_types: tuple[str, ...] = ("m7i.large",)
    system_desired: int = 2
    system_min: int = 2
    system_max: int = 4
    system_disk_gib: int = 50
    addon_versions: dict[str, str] = field(default_factory=dict)
    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    volume_tags: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        with collecting("LlmClusterProps") as p:
            p.check(
                self.kubernetes_version in _K8S_VERSIONS,
                "kubernetes_version",
                self.kubernetes_version,
                "no kubectl layer is pinned for this version",
                f"use one of {sorted(_K8S_VERSIONS)}",
            )
            p.check(
                self.public_endpoint or self.private_endpoint,
                "public_endpoint",
                self.public_endpoint,
                "both endpoints are off",
                "enable the private endpoint",
            )
            p.check(
                not self.public_endpoint or bool(self.public_cidrs),
                "public_cidrs",
                self.public_cidrs,
                "a public endpoint needs the CIDR blocks allowed to reach it (EKS would open it to 0.0.0.0/0)",
                "list your office / CI runner blocks, e.g. ('203.0.113.0/24',), or use the private endpoint only",
            )
            for c in self.public_cidrs:
                try:
                    check_cidr(c)
                except ValueError as exc:
                    p.add("public_cidrs", str(exc).split(" -- fix: ")[0], "use CIDR blocks such as 203.0.113.0/24", c)
                    continue
                p.check(
                    self.allow_public_internet or ipaddress.ip_network(c).prefixlen != 0,
                    "public_cidrs",
                    c,
                    "opens the Kubernetes API to the whole internet",
                    "list narrower blocks, or set allow_public_internet=True deliberately (see docs/security.md)",
                )
            p.check(
                self.system_min <= self.system_desired <= self.system_max,
                "system_desired",
                self.system_desired,
                f"must lie between system_min ({self.system_min}) and system_max ({self.system_max})",
                "adjust the system node group sizes",
            )
            unknown = sorted(set(self.addon_versions) - set(DEFAULT_ADDONS))
            p.check(
                not unknown,
                "addon_versions",
                unknown,
                "not add-ons this cluster installs",
                f"pin some of {DEFAULT_ADDONS}",
            )


class LlmCluster(Construct):
    """An EKS cluster for GPU workloads: encrypted secrets, full control-plane logs, access entries,
    managed add-ons (VPC CNI with prefix delegation, CoreDNS, kube-proxy, Pod Identity agent, EBS CSI
    with its own role, metrics-server) and a small tainted system node group for controllers.

    Attributes: ``cluster`` (``aws_eks_v2.Cluster``), ``system_nodegroup``, ``secrets_key``,
    ``node_launch_template`` (of the system node group), ``addons`` (name -> ``Addon``).
    """

    def __init__(self, scope: Construct, id: str, *, props: LlmClusterProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.secrets_key = kms.Key(
            self,
            "SecretsKey",
            description=f"Envelope encryption of Kubernetes secrets in {props.cluster_name}",
            enable_key_rotation=True,
            removal_policy=props.removal_policy,
        )
        if props.public_endpoint and props.private_endpoint:
            endpoint = eks.EndpointAccess.PUBLIC_AND_PRIVATE.only_from(*props.public_cidrs)
        elif props.public_endpoint:
            endpoint = eks.EndpointAccess.PUBLIC.only_from(*props.public_cidrs)
        else:
            endpoint = eks.EndpointAccess.PRIVATE
        self._add_control_plane_log_group()
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=props.cluster_name,
            version=_K8S_VERSIONS[props.kubernetes_version],
            vpc=props.vpc,
            vpc_subnets=[props.subnets],
            endpoint_access=endpoint,
            # The identity that runs CloudFormation gets no hidden cluster-admin: admins are the access
            # entries below, and the kubectl provider has its own (ClusterAdminRoleAccess).
            bootstrap_cluster_creator_admin_permissions=False,
            secrets_encryption_key=self.secrets_key,
            cluster_logging=[
                eks.ClusterLoggingTypes.API,
                eks.ClusterLoggingTypes.AUDIT,
                eks.ClusterLoggingTypes.AUTHENTICATOR,
                eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
                eks.ClusterLoggingTypes.SCHEDULER,
            ],
            # Our own node group below; EKS Auto Mode would take node provisioning away from Karpenter.
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            kubectl_provider_options=eks.KubectlProviderOptions(
                kubectl_layer=KubectlV35Layer(self, "KubectlLayer"),
                memory=Size.gibibytes(1),
            ),
        )
        # EKS would create this group itself, unencrypted and kept forever; ours exists first.
        self.cluster.node.default_child.node.add_dependency(self.control_plane_logs)  # type: ignore[union-attr]
        for i, arn in enumerate(props.admin_principal_arns):
            self.cluster.grant_access(
                f"Admin{i}",
                arn,
                [
                    eks.AccessPolicy.from_access_policy_name(
                        "AmazonEKSClusterAdminPolicy", access_scope_type=eks.AccessScopeType.CLUSTER
                    )
                ],
            )
        self.addons: dict[str, eks.Addon] = {}
        self._add_addons()
        self._add_system_nodes()
        self._acknowledge_findings()

    def _add_control_plane_log_group(self) -> None:
        """``/aws/eks/<name>/cluster`` with a customer-managed key and a retention, before the cluster."""
        stack = Stack.of(self)
        name = f"/aws/eks/{self.props.cluster_name}/cluster"
        self.logs_key = kms.Key(
            self,
            "LogsKey",
            description=f"Control-plane logs of {self.props.cluster_name}",
            enable_key_rotation=True,
            removal_policy=self.props.removal_policy,
        )
        # CloudWatch Logs encrypts with the key only for this one log group (encryption context).
        allow_logs_to_use_key(self.logs_key, stack, log_group_name=name)
        self.control_plane_logs = logs.LogGroup(
            self,
            "ControlPlaneLogs",
            log_group_name=name,
            encryption_key=self.logs_key,
            retention=CONTROL_PLANE_LOG_RETENTION,
            removal_policy=self.props.removal_policy,
        )

    def _acknowledge_findings(self) -> None:
        """AwsSolutions findings on resources whose shape EKS or aws-cdk-lib dictates, each with its reason."""
        managed = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{}]"
        acknowledge(
            self.cluster.role.node.default_child,  # type: ignore[arg-type]
            managed.format("AmazonEKSClusterPolicy"),
            "EKS requires this AWS-maintained policy on the cluster role; AWS updates it with the service.",
        )
        node_role = self.system_node_role.node.default_child
        for policy in SYSTEM_NODE_POLICIES:
            acknowledge(
                node_role,  # type: ignore[arg-type]
                managed.format(policy),
                "The AWS-maintained baseline every EKS node needs to join the cluster and pull images (pull-only).",
            )
        acknowledge(
            self.vpc_cni_role.node.default_child,  # type: ignore[arg-type]
            managed.format("AmazonEKS_CNI_Policy"),
            "The VPC CNI's AWS-maintained policy, on the aws-node service account only (not on every node).",
        )
        acknowledge(
            self.ebs_csi_role.node.default_child,  # type: ignore[arg-type]
            managed.format("service-role/AmazonEBSCSIDriverPolicy"),
            "AWS-maintained policy of the EBS CSI driver; it already limits volume actions by the CSI tags.",
        )
        provider = self.cluster.node.try_find_child("KubectlProvider")
        if provider is not None:
            self._kubectl_handler_pull_only(provider)
            acknowledge_checkov_generated(
                provider,
                "AWS::Lambda::Function",
                ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"),
                "aws-cdk-lib's kubectl provider: CloudFormation invokes it synchronously (a DLQ or a concurrency "
                "reserve has nothing to add), its environment holds no secret, and it runs in the VPC whenever "
                "the private endpoint is on",
            )
            acknowledge_checkov_generated(
                provider,
                "AWS::Logs::LogGroup",
                ("CKV_AWS_158",),
                "aws-cdk-lib's kubectl provider logs (kubectl/helm output, no secret values: every secret is synced "
                "by External Secrets, never passed through a manifest); encrypted at rest by CloudWatch Logs",
            )
            acknowledge_generated(
                provider,
                ("AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-L1"),
                "Generated by aws-cdk-lib's EKS kubectl provider: its Lambda runtime, execution and ECR read-only "
                "managed policies and its handler-invoke permission (<Arn>:*) follow aws-cdk-lib releases.",
            )

    @staticmethod
    def _kubectl_handler_pull_only(provider: IConstruct) -> None:
        """The kubectl handler pulls OCI charts from ECR: pull-only rather than aws-cdk-lib's read-only."""
        stack = Stack.of(provider)
        for c in provider.node.find_all():
            if isinstance(c, iam.CfnRole) and c.managed_policy_arns is not None:
                arns = stack.resolve(c.managed_policy_arns)
                text = json.dumps(arns)
                if "AmazonEC2ContainerRegistryReadOnly" in text:
                    c.add_property_override(
                        "ManagedPolicyArns",
                        json.loads(
                            text.replace("AmazonEC2ContainerRegistryReadOnly", "AmazonEC2ContainerRegistryPullOnly")
                        ),
                    )

    # -- add-ons -----------------------------------------------------------------------------
    def _addon(self, name: str, construct_id: str, configuration: dict | None = None) -> eks.Addon:
        addon = eks.Addon(
            self,
            construct_id,
            cluster=cast(eks.ICluster, self.cluster),  # a Cluster is an ICluster; the Python typing misses it
            addon_name=name,
            addon_version=self.props.addon_versions.get(name),
            configuration_values=configuration,
            preserve_on_delete=False,
        )
        # EKS bootstraps vpc-cni, coredns and kube-proxy as self-managed objects when it creates the
        # cluster; the managed add-on must take their fields over or its creation fails on conflicts.
        # (Turning bootstrapping off instead would replace existing clusters: the property is create-only.)
        addon.node.default_child.add_property_override(  # type: ignore[union-attr]
            "ResolveConflicts", ADDON_RESOLVE_CONFLICTS
        )
        self.addons[name] = addon
        return addon

    def _add_addons(self) -> None:
        pod_identity = self._addon("eks-pod-identity-agent", "PodIdentityAgent")
        # The CNI's ENI permissions belong to its own service account, not to every node's role: a pod
        # that reached a node's credentials could otherwise rewire the VPC's network interfaces.
        cni_role = pod_identity_role(
            self,
            "VpcCniRole",
            "VPC CNI (aws-node, EKS Pod Identity): node network interfaces and IPs",
            cluster=cast(eks.ICluster, self.cluster),
            namespace="kube-system",
            service_account="aws-node",
        )
        cni_role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name("AmazonEKS_CNI_Policy"))
        self.vpc_cni_role = cni_role
        # Prefix delegation: a /28 per ENI slot, so GPU nodes are not capped at a few dozen pod IPs.
        # enableNetworkPolicy: the add-on's network-policy agent enforces NetworkPolicies (off by default,
        # and without it the serving namespace's default-deny policies would be accepted and ignored).
        cni = self._addon(
            "vpc-cni",
            "VpcCni",
            {"env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}, "enableNetworkPolicy": "true"},
        )
        cni.node.default_child.add_property_override(  # type: ignore[union-attr]
            "PodIdentityAssociations", [{"ServiceAccount": "aws-node", "RoleArn": cni_role.role_arn}]
        )
        cni.node.add_dependency(pod_identity)
        self._addon("kube-proxy", "KubeProxy")
        system = {"tolerations": [{"key": SYSTEM_TAINT_KEY, "operator": "Exists"}]}
        self._addon("coredns", "CoreDns", system)
        self._addon("metrics-server", "MetricsServer", system)
        ebs_role = pod_identity_role(
            self,
            "EbsCsiRole",
            "EBS CSI controller (EKS Pod Identity)",
            cluster=cast(eks.ICluster, self.cluster),
            namespace="kube-system",
            service_account="ebs-csi-controller-sa",
        )
        ebs_role.add_managed_policy(
            iam.ManagedPolicy.from_aws_managed_policy_name("service-role/AmazonEBSCSIDriverPolicy")
        )
        self.ebs_csi_role = ebs_role
        controller: dict = {**system}
        if self.props.volume_tags:
            # PVC volumes are created by the driver, not CloudFormation: tag them so teardown finds them.
            controller["extraVolumeTags"] = dict(self.props.volume_tags)
        ebs = self._addon("aws-ebs-csi-driver", "EbsCsi", {"controller": controller})
        # The L2 Addon has no pod-identity property yet; the association belongs to the add-on itself.
        cfn = ebs.node.default_child
        cfn.add_property_override(  # type: ignore[union-attr]
            "PodIdentityAssociations",
            [{"ServiceAccount": "ebs-csi-controller-sa", "RoleArn": ebs_role.role_arn}],
        )
        ebs.node.add_dependency(pod_identity)

    # -- system node group ---------------------------------------------------------------------
    def _add_system_nodes(self) -> None:
        p = self.props
        # Our own role rather than the node group's default: ECR pull-only (no image listing), and no
        # CNI policy (it sits on the aws-node service account).
        self.system_node_role = iam.Role(
            self,
            "SystemNodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description=f"System node group of {p.cluster_name}",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(n) for n in SYSTEM_NODE_POLICIES],
        )
        self.node_launch_template = ec2.LaunchTemplate(
            self,
            "SystemNodeTemplate",
            # IMDSv2 only, one hop: pods cannot reach the node's credentials through IMDS.
            require_imdsv2=True,
            http_put_response_hop_limit=1,
            block_devices=[
                ec2.BlockDevice(
                    device_name="/dev/xvda",
                    volume=ec2.BlockDeviceVolume.ebs(
                        p.system_disk_gib, encrypted=True, volume_type=ec2.EbsDeviceVolumeType.GP3
                    ),
                )
            ],
        )
        self.system_nodegroup = self.cluster.add_nodegroup_capacity(
            "SystemNodes",
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
            capacity_type=eks.CapacityType.ON_DEMAND,
            instance_types=[ec2.InstanceType(t) for t in p.system_instance_types],
            desired_size=p.system_desired,
            min_size=p.system_min,
            max_size=p.system_max,
            subnets=p.subnets,
            labels={SYSTEM_NODE_LABEL: "true"},
            taints=[eks.TaintSpec(effect=eks.TaintEffect.NO_SCHEDULE, key=SYSTEM_TAINT_KEY, value="true")],
            launch_template_spec=eks.LaunchTemplateSpec(
                id=self.node_launch_template.launch_template_id or "",
                version=self.node_launch_template.latest_version_number,
            ),
            enable_node_auto_repair=True,
            node_role=self.system_node_role,
        )
