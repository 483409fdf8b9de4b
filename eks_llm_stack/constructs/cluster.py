"""``LlmCluster``: the EKS control plane, its add-ons and the system node group.

Built on ``aws_eks_v2`` (native ``AWS::EKS::Cluster``, access entries rather than the
aws-auth ConfigMap; see docs/adr/0001). The kubectl provider is configured explicitly with
the kubectl layer that matches the Kubernetes version, because manifests and Helm charts of
every later capability go through it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from aws_cdk import RemovalPolicy, Size
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct

from .. import versions
from ..config.network import check_cidr
from ..conventions import SYSTEM_NODE_LABEL, SYSTEM_TAINT_KEY
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_generated
from .pod_identity import pod_identity_role

_K8S_VERSIONS = {"1.35": eks.KubernetesVersion.V1_35}

#: Managed add-ons installed on every cluster, with the service account that needs AWS access.
DEFAULT_ADDONS = ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-ebs-csi-driver", "metrics-server")


@dataclass(frozen=True, kw_only=True)
class LlmClusterProps:
    """The cluster.

    ``cluster_name`` — physical name (required: subnet discovery tags and Karpenter use it).
    ``vpc`` / ``subnets`` — where the control plane ENIs and system nodes go.
    ``admin_principal_arns`` — IAM roles/users given cluster-admin through access entries (default none:
    only the deploying CloudFormation role is bootstrapped as admin).
    ``public_endpoint`` / ``private_endpoint`` / ``public_cidrs`` — API endpoint access (default:
    both, public open to 0.0.0.0/0 — narrow it in a real profile).
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
    public_endpoint: bool = True
    private_endpoint: bool = True
    public_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
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
            for c in self.public_cidrs:
                try:
                    check_cidr(c)
                except ValueError as exc:
                    p.add("public_cidrs", str(exc).split(" -- fix: ")[0], "use CIDR blocks such as 203.0.113.0/24", c)
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
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            cluster_name=props.cluster_name,
            version=_K8S_VERSIONS[props.kubernetes_version],
            vpc=props.vpc,
            vpc_subnets=[props.subnets],
            endpoint_access=endpoint,
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

    def _acknowledge_findings(self) -> None:
        """AwsSolutions findings on resources whose shape EKS or aws-cdk-lib dictates, each with its reason."""
        managed = "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{}]"
        acknowledge(
            self.cluster.role.node.default_child,  # type: ignore[arg-type]
            managed.format("AmazonEKSClusterPolicy"),
            "EKS requires this AWS-maintained policy on the cluster role; AWS updates it with the service.",
        )
        node_role = self.system_nodegroup.role.node.default_child
        for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"):
            acknowledge(
                node_role,  # type: ignore[arg-type]
                managed.format(policy),
                "The AWS-maintained baseline every EKS managed node needs to join the cluster and pull images.",
            )
        acknowledge(
            self.ebs_csi_role.node.default_child,  # type: ignore[arg-type]
            managed.format("service-role/AmazonEBSCSIDriverPolicy"),
            "AWS-maintained policy of the EBS CSI driver; it already limits volume actions by the CSI tags.",
        )
        provider = self.cluster.node.try_find_child("KubectlProvider")
        if provider is not None:
            acknowledge_generated(
                provider,
                ("AwsSolutions-IAM4", "AwsSolutions-IAM5", "AwsSolutions-L1"),
                "Generated by aws-cdk-lib's EKS kubectl provider: its Lambda runtime, execution and ECR read-only "
                "managed policies and its handler-invoke permission (<Arn>:*) follow aws-cdk-lib releases.",
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
        self.addons[name] = addon
        return addon

    def _add_addons(self) -> None:
        # Prefix delegation: a /28 per ENI slot, so GPU nodes are not capped at a few dozen pod IPs.
        self._addon("vpc-cni", "VpcCni", {"env": {"ENABLE_PREFIX_DELEGATION": "true", "WARM_PREFIX_TARGET": "1"}})
        self._addon("kube-proxy", "KubeProxy")
        pod_identity = self._addon("eks-pod-identity-agent", "PodIdentityAgent")
        system = {"tolerations": [{"key": SYSTEM_TAINT_KEY, "operator": "Exists"}]}
        self._addon("coredns", "CoreDns", system)
        self._addon("metrics-server", "MetricsServer", system)
        ebs_role = pod_identity_role(self, "EbsCsiRole", "EBS CSI controller (EKS Pod Identity)")
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
        )
