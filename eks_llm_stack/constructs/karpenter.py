"""The Karpenter controller: Helm chart, IAM through EKS Pod Identity, interruption handling.

Creates the node IAM role (with an ``EC2_LINUX`` access entry so nodes can join), the
controller role with a least-privilege policy scoped to this cluster by tag conditions, the
SQS interruption queue with its five EventBridge rules (the set of Karpenter's reference template), and installs the pinned chart on the
system node group. GPU pools are added with :meth:`Karpenter.add_gpu_node_pool` or by
constructing :class:`~eks_llm_stack.constructs.gpu_node_pool.GpuNodePool` directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from .. import versions
from ..charts.kube import system_tolerations
from ..config.gpu_pool import GpuNodePoolProps
from ..conventions import CLUSTER_NAME_TAG, SYSTEM_NODE_LABEL
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_checkov, acknowledge_generated
from ..naming import is_dns_label
from .applied import add_manifest
from .cluster_type import ClusterLike, as_icluster
from .crds import CrdChart
from .gpu_node_pool import GpuNodePool
from .pod_identity import pod_identity

# CLUSTER_NAME_TAG (conventions): the tag Karpenter (v1) puts on every instance, volume, launch
# template and instance profile it creates. Its key is a constant, so a policy can scope by it even
# when the cluster name is a CloudFormation token — unlike ``kubernetes.io/cluster/<name>``, whose key
# would need CfnJson.
#: Managed policies of the GPU node role.
GPU_NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEC2ContainerRegistryPullOnly")

#: EventBridge events Karpenter reacts to (detail-type per source), one rule each.
INTERRUPTION_EVENTS: tuple[tuple[str, str, str], ...] = (
    ("SpotInterruption", "aws.ec2", "EC2 Spot Instance Interruption Warning"),
    ("Rebalance", "aws.ec2", "EC2 Instance Rebalance Recommendation"),
    ("InstanceStateChange", "aws.ec2", "EC2 Instance State-change Notification"),
    ("ScheduledChange", "aws.health", "AWS Health Event"),
    # Reserved capacity (ODCR / capacity blocks) being reclaimed: without it reserved pools get no warning.
    ("CapacityReservationInterruption", "aws.ec2", "EC2 Capacity Reservation Instance Interruption Warning"),
)

#: EC2 actions that change something; the tests check that none is granted on ``*`` without a tag condition.
MUTATING_EC2_ACTIONS = frozenset(
    {
        "ec2:RunInstances",
        "ec2:CreateFleet",
        "ec2:CreateLaunchTemplate",
        "ec2:CreateTags",
        "ec2:TerminateInstances",
        "ec2:DeleteLaunchTemplate",
    }
)


@dataclass(frozen=True, kw_only=True)
class KarpenterProps:
    """Options of the Karpenter controller.

    ``namespace`` — where the chart is installed (default ``kube-system``, as upstream recommends
    so the controller is treated as critical). ``service_account`` — its name (default
    ``karpenter``). ``replicas`` — controller replicas (default 2, leader-elected).
    ``log_level`` — default ``info``. ``chart`` — default :data:`versions.KARPENTER`.
    """

    namespace: str = "kube-system"
    service_account: str = "karpenter"
    replicas: int = 2
    log_level: str = "info"
    chart: versions.HelmChartPin = versions.KARPENTER

    def __post_init__(self) -> None:
        with collecting("KarpenterProps") as p:
            for name in ("namespace", "service_account"):
                value = getattr(self, name)
                p.check(
                    is_dns_label(value),
                    name,
                    value,
                    "is not a valid Kubernetes name",
                    "use lowercase letters, digits and '-'",
                )
            p.check(1 <= self.replicas <= 5, "replicas", self.replicas, "is outside 1-5", "use 2 for high availability")
            p.check(
                self.log_level in ("debug", "info", "error"),
                "log_level",
                self.log_level,
                "is not a Karpenter log level",
                "use debug, info or error",
            )
            p.check(
                self.chart.version.startswith("1."),
                "chart.version",
                self.chart.version,
                "is not a Karpenter 1.x chart; the EC2NodeClass fields this library writes need >= 1.11",
                "use a 1.x version (this release pins " + versions.KARPENTER.version + ")",
            )


class Karpenter(Construct):
    """Karpenter on an ``aws_eks_v2`` cluster, ready for :class:`GpuNodePool` s.

    Public attributes: ``node_role`` (the role GPU nodes run as), ``controller_role``,
    ``interruption_queue``, ``rules`` (the five EventBridge rules), ``chart`` (the Helm
    release, which every pool's manifests depend on), ``cluster``.
    """

    def __init__(self, scope: Construct, id: str, *, cluster: ClusterLike, props: KarpenterProps | None = None) -> None:
        super().__init__(scope, id)
        cluster = as_icluster(cluster)
        props = props if props is not None else KarpenterProps()
        self.props = props
        self.cluster = cluster
        stack = Stack.of(self)

        # Nodes: what a worker needs to join and pull images (ECR pull-only, not read-only). No CNI policy:
        # it sits on the aws-node service account. No SSM: a shell on a GPU node goes through
        # `kubectl debug node/...` (Kubernetes RBAC and audit log), not a second, IAM-only path.
        self.node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            description="Karpenter-launched GPU nodes",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(name) for name in GPU_NODE_POLICIES],
        )
        # Granular findings (one per policy / ARN pattern), acknowledged on this one role.
        acknowledge_generated(
            self.node_role,
            ("AwsSolutions-IAM4",),
            "EKS worker nodes need the AWS-maintained worker and ECR pull-only policies; "
            "AWS keeps them in step with the kubelet.",
        )
        self.node_access_entry = eks.AccessEntry(
            self,
            "NodeAccessEntry",
            cluster=cluster,
            principal=self.node_role.role_arn,
            access_entry_type=eks.AccessEntryType.EC2_LINUX,
            # EC2_LINUX entries carry the node permissions themselves; policies are not allowed.
            access_policies=[],
        )

        self.interruption_queue = sqs.Queue(
            self,
            "InterruptionQueue",
            retention_period=Duration.minutes(5),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        acknowledge(
            self.interruption_queue,
            "AwsSolutions-SQS3",
            "Interruption events are only useful within their two-minute warning; "
            "a dead-letter queue would only keep stale notices.",
        )
        acknowledge_checkov(
            self.interruption_queue,
            "CKV_AWS_27",
            "Encrypted with SSE-SQS (SqsManagedSseEnabled); the check only recognises a KMS key, and EventBridge "
            "would need a key policy grant for no gain on public interruption notices",
        )
        self.rules: list[events.Rule] = []
        for name, source, detail_type in INTERRUPTION_EVENTS:
            rule = events.Rule(
                self,
                f"{name}Rule",
                description=f"Karpenter interruption handling: {detail_type}",
                event_pattern=events.EventPattern(source=[source], detail_type=[detail_type]),
            )
            rule.add_target(targets.SqsQueue(self.interruption_queue))
            self.rules.append(rule)

        # Trusted by Pod Identity for this cluster's karpenter service account only (session tags).
        identity = pod_identity(
            self,
            "ControllerRole",
            cluster=cluster,
            namespace=props.namespace,
            service_account=props.service_account,
            description="Karpenter controller (EKS Pod Identity)",
            association_id="PodIdentity",
        )
        self.controller_role = identity.role
        self.controller_policy = iam.Policy(
            self,
            "ControllerPolicy",
            statements=controller_statements(
                cluster_name=cluster.cluster_name,
                cluster_arn=cluster.cluster_arn,
                node_role_arn=self.node_role.role_arn,
                queue_arn=self.interruption_queue.queue_arn,
                partition=Aws.PARTITION,
                region=stack.region,
                account=stack.account,
            ),
        )
        self.controller_policy.attach_to_role(self.controller_role)
        acknowledge_generated(
            self.controller_policy,
            ("AwsSolutions-IAM5",),
            "Karpenter launches instances whose ids are unknown in advance: every wildcard is either a "
            "read-only Describe/pricing call, or an ARN pattern narrowed by the eks:eks-cluster-name and "
            "karpenter.sh/nodepool tag conditions, as in Karpenter's reference policy.",
        )
        assert identity.association is not None
        self.pod_identity = identity.association

        # The CRDs are a release of their own, so a chart bump upgrades them (helm never upgrades crds/).
        self.crds = CrdChart(self, "Crds", cluster=cluster, pin=props.chart)
        self.chart = eks.HelmChart(
            self,
            "Chart",
            cluster=cluster,
            skip_crds=True,
            chart=props.chart.chart,
            # OCI charts are pulled by their full reference; the chart name is its last segment.
            repository=f"{props.chart.repository}/{props.chart.chart}",
            version=props.chart.version,
            namespace=props.namespace,
            release="karpenter",
            # Another namespace than kube-system is created below, with Pod Security labels.
            create_namespace=False,
            wait=True,
            timeout=Duration.minutes(10),
            values=self.chart_values(),
        )
        # The controller must find its role, the queue and a node identity from its first start.
        self.chart.node.add_dependency(self.pod_identity, self.node_access_entry, self.controller_policy)
        self.chart.node.add_dependency(self.crds.chart)
        if props.namespace != "kube-system":
            from ..charts.namespaces import namespace_manifest

            ns = add_manifest(
                self, cluster, f"{id}Namespace", namespace_manifest(props.namespace, "baseline"), name="karpenter"
            )
            self.chart.node.add_dependency(ns)
        self.chart.node.add_dependency(self.interruption_queue)

    def chart_values(self) -> dict[str, Any]:
        """Helm values: cluster and queue, and scheduling on the system node group only."""
        return {
            "replicas": self.props.replicas,
            "logLevel": self.props.log_level,
            "serviceAccount": {"create": True, "name": self.props.service_account},
            "settings": {
                "clusterName": self.cluster.cluster_name,
                "interruptionQueue": self.interruption_queue.queue_name,
            },
            "nodeSelector": {SYSTEM_NODE_LABEL: "true"},
            "tolerations": system_tolerations(),
            "controller": {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}},
        }

    def add_gpu_node_pool(
        self,
        id: str,
        *,
        props: GpuNodePoolProps,
        subnets: Sequence[ec2.ISubnet] | None = None,
    ) -> GpuNodePool:
        """A :class:`GpuNodePool` on this controller, created in this construct's scope."""
        return GpuNodePool(self, id, cluster=self.cluster, karpenter=self, props=props, subnets=subnets)


def controller_statements(
    *,
    cluster_name: str,
    cluster_arn: str,
    node_role_arn: str,
    queue_arn: str,
    partition: str,
    region: str,
    account: str,
) -> list[iam.PolicyStatement]:
    """The controller's permissions, after Karpenter's reference policy (v1.x), scoped to one cluster.

    Mutating EC2 actions are allowed only on ARNs of this region and either on resources that
    carry no ownership (images, subnets, security groups, reservations, placement groups: they
    are only *used* by a launch) or under a tag condition naming this cluster and a NodePool.
    """
    ec2_arn = f"arn:{partition}:ec2:{region}"
    owned_request = {
        "StringEquals": {f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name},
        "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
    }
    owned_resource = {
        "StringEquals": {f"aws:ResourceTag/{CLUSTER_NAME_TAG}": cluster_name},
        "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
    }
    created = [
        f"{ec2_arn}:*:{kind}/*"
        for kind in ("fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")
    ]
    instance_profile = f"arn:{partition}:iam::{account}:instance-profile/*"
    region_tag = {"aws:RequestTag/topology.kubernetes.io/region": region}
    return [
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[
                f"{ec2_arn}::image/*",
                f"{ec2_arn}::snapshot/*",
                f"{ec2_arn}:*:security-group/*",
                f"{ec2_arn}:*:subnet/*",
                f"{ec2_arn}:*:capacity-reservation/*",
                f"{ec2_arn}:*:placement-group/*",
            ],
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2LaunchTemplateAccessActions",
            actions=["ec2:RunInstances", "ec2:CreateFleet"],
            resources=[f"{ec2_arn}:*:launch-template/*"],
            conditions=owned_resource,
        ),
        iam.PolicyStatement(
            sid="AllowScopedEC2InstanceActionsWithTags",
            actions=["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            resources=created,
            conditions=owned_request,
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceCreationTagging",
            actions=["ec2:CreateTags"],
            resources=created,
            conditions={
                "StringEquals": {
                    f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name,
                    "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"],
                },
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedResourceTagging",
            actions=["ec2:CreateTags"],
            resources=[f"{ec2_arn}:*:instance/*"],
            conditions={
                **owned_resource,
                "StringEqualsIfExists": {f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name},
                "ForAllValues:StringEquals": {"aws:TagKeys": [CLUSTER_NAME_TAG, "karpenter.sh/nodeclaim", "Name"]},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedDeletion",
            actions=["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            resources=[f"{ec2_arn}:*:instance/*", f"{ec2_arn}:*:launch-template/*"],
            conditions=owned_resource,
        ),
        iam.PolicyStatement(
            sid="AllowRegionalReadActions",
            # Describe calls support no resource-level permissions; they are limited to the region.
            actions=[
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeCapacityReservations",
                "ec2:DescribeImages",
                "ec2:DescribeInstances",
                # Instance status checks: Karpenter's node repair of unhealthy instances needs it.
                "ec2:DescribeInstanceStatus",
                "ec2:DescribeInstanceTypeOfferings",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates",
                "ec2:DescribePlacementGroups",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory",
                "ec2:DescribeSubnets",
            ],
            resources=["*"],
            conditions={"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.PolicyStatement(
            sid="AllowSSMReadActions",
            actions=["ssm:GetParameter"],
            resources=[f"arn:{partition}:ssm:{region}::parameter/aws/service/*"],
        ),
        iam.PolicyStatement(sid="AllowPricingReadActions", actions=["pricing:GetProducts"], resources=["*"]),
        iam.PolicyStatement(
            sid="AllowInterruptionQueueActions",
            actions=["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            resources=[queue_arn],
        ),
        iam.PolicyStatement(
            sid="AllowPassingInstanceRole",
            actions=["iam:PassRole"],
            resources=[node_role_arn],
            # The EC2 service principal is ec2.amazonaws.com.cn in the China partition.
            conditions={"StringEquals": {"iam:PassedToService": ["ec2.amazonaws.com", "ec2.amazonaws.com.cn"]}},
        ),
        iam.PolicyStatement(
            sid="AllowZonalShiftStatusReadOnly",
            # Karpenter avoids zones under an ARC zonal shift; the call has no resource-level permission.
            actions=["arc-zonal-shift:GetManagedResource"],
            resources=["*"],
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileCreationActions",
            actions=["iam:CreateInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name, **region_tag},
                "StringLike": {"aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileTagActions",
            actions=["iam:TagInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{CLUSTER_NAME_TAG}": cluster_name,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                    f"aws:RequestTag/{CLUSTER_NAME_TAG}": cluster_name,
                    **region_tag,
                },
                "StringLike": {
                    "aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*",
                    "aws:RequestTag/karpenter.k8s.aws/ec2nodeclass": "*",
                },
            },
        ),
        iam.PolicyStatement(
            sid="AllowScopedInstanceProfileActions",
            actions=["iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:DeleteInstanceProfile"],
            resources=[instance_profile],
            conditions={
                "StringEquals": {
                    f"aws:ResourceTag/{CLUSTER_NAME_TAG}": cluster_name,
                    "aws:ResourceTag/topology.kubernetes.io/region": region,
                },
                "StringLike": {"aws:ResourceTag/karpenter.k8s.aws/ec2nodeclass": "*"},
            },
        ),
        iam.PolicyStatement(
            sid="AllowInstanceProfileReadActions", actions=["iam:GetInstanceProfile"], resources=[instance_profile]
        ),
        iam.PolicyStatement(
            sid="AllowUnscopedInstanceProfileListAction", actions=["iam:ListInstanceProfiles"], resources=["*"]
        ),
        iam.PolicyStatement(
            sid="AllowAPIServerEndpointDiscovery", actions=["eks:DescribeCluster"], resources=[cluster_arn]
        ),
    ]
