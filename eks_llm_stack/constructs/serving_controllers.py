"""``ServingControllers``: the controllers model charts rely on, from their pinned Helm charts.

* **LeaderWorkerSet** — runs multi-node models (``leaderworkerset.x-k8s.io/v1``);
* **KEDA** — scales models on Prometheus queries (``keda.sh/v1alpha1`` ScaledObject);
* **AWS Load Balancer Controller** (optional) — internal ALB/NLB for model endpoints, with an
  EKS Pod Identity role.

Every controller runs on the system node group (its toleration and the
``eks-llm-stack.io/system: "true"`` node selector), never on GPU nodes. The charts wait until
their webhooks are up, so model charts applied after them (Serving stack) find their CRDs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from constructs import Construct

from .. import versions
from ..charts.kube import system_tolerations
from ..charts.namespaces import namespace_manifest
from ..conventions import SYSTEM_NODE_LABEL
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_checkov
from ..naming import check_dns_label
from .applied import add_manifest
from .crds import CrdChart
from .pod_identity import pod_identity

#: Pod Security level of the controllers' own namespaces: KEDA's pods meet restricted; the LWS
#: controller gets a seccomp profile from our values (the chart sets none), so both are restricted.
CONTROLLER_POD_SECURITY = {"keda": "restricted", "lws-system": "restricted"}
#: Tag the AWS Load Balancer Controller puts on every resource it creates (policy conditions key on it).
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"


@dataclass(frozen=True, kw_only=True)
class ServingControllersProps:
    """The controllers to install.

    ``cluster`` — where (required). ``vpc_id`` / ``region`` — for the load balancer controller,
    which cannot read them from IMDS (hop limit 1) (required when ``load_balancer_controller``).
    ``lws`` / ``keda`` — install them (default True). ``load_balancer_controller`` — install it
    (default False). ``lws_chart`` / ``keda_chart`` / ``lbc_chart`` — default the pins in
    :mod:`eks_llm_stack.versions`. ``lbc_namespace`` / ``lbc_service_account`` — default
    ``kube-system`` / ``aws-load-balancer-controller``.
    """

    cluster: eks.ICluster
    vpc_id: str | None = None
    region: str | None = None
    lws: bool = True
    keda: bool = True
    load_balancer_controller: bool = False
    lws_chart: versions.HelmChartPin = versions.LWS
    keda_chart: versions.HelmChartPin = versions.KEDA
    lbc_chart: versions.HelmChartPin = versions.AWS_LOAD_BALANCER_CONTROLLER
    lbc_namespace: str = "kube-system"
    lbc_service_account: str = "aws-load-balancer-controller"

    def __post_init__(self) -> None:
        with collecting("ServingControllersProps") as p:
            p.check(
                self.lws or self.keda or self.load_balancer_controller,
                "lws",
                False,
                "no controller selected",
                "enable lws, keda and/or load_balancer_controller",
            )
            if self.load_balancer_controller:
                p.check(
                    self.vpc_id is not None,
                    "vpc_id",
                    None,
                    "is required with load_balancer_controller",
                    "pass the cluster's VPC id",
                )
                p.check(
                    self.region is not None,
                    "region",
                    None,
                    "is required with load_balancer_controller",
                    "pass the stack's region",
                )
            check_dns_label(p, "lbc_namespace", self.lbc_namespace)
            check_dns_label(p, "lbc_service_account", self.lbc_service_account)


def on_system_nodes() -> dict[str, Any]:
    return {"nodeSelector": {SYSTEM_NODE_LABEL: "true"}, "tolerations": system_tolerations()}


class ServingControllers(Construct):
    """The Helm releases: ``lws``, ``keda``, ``load_balancer_controller`` (each None when off);
    ``lbc_role`` / ``lbc_pod_identity`` with the load balancer controller. ``charts`` — the
    releases that exist, for ``depends_on``."""

    def __init__(self, scope: Construct, id: str, *, props: ServingControllersProps) -> None:
        super().__init__(scope, id)
        self.props = props
        self.lws: eks.HelmChart | None = None
        self.keda: eks.HelmChart | None = None
        self.load_balancer_controller: eks.HelmChart | None = None
        self.lbc_role: iam.Role | None = None
        self.lws_crds: CrdChart | None = None
        if props.lws:
            # The LeaderWorkerSet CRDs (1.3 MB) as their own release, so a chart bump upgrades them.
            self.lws_crds = CrdChart(self, "LwsCrds", cluster=props.cluster, pin=props.lws_chart)
            self.lws = self._helm(
                "Lws",
                props.lws_chart,
                "lws-system",
                {
                    **on_system_nodes(),
                    "enableCertManager": False,
                    # The chart sets no seccomp profile; with it the controller meets Pod Security restricted.
                    "podSecurityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
                },
                skip_crds=True,
            )
            self.lws.node.add_dependency(self.lws_crds.chart)
        if props.keda:
            self.keda = self._helm(
                "Keda",
                props.keda_chart,
                "keda",
                {
                    # Top-level nodeSelector/tolerations apply to the operator, metrics server and webhooks.
                    **on_system_nodes(),
                    # No TriggerAuthentication reads a Secret here (the Prometheus scalers need none): the
                    # operator and metrics server read Secrets of their own namespace only, not the cluster's.
                    "permissions": {
                        "operator": {"restrict": {"secret": True}},
                        "metricServer": {"restrict": {"secret": True}},
                    },
                    # KEDA's metrics API server and operator drop every capability and run as non-root by default.
                    "resources": {
                        "operator": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
                    },
                },
            )
        if props.load_balancer_controller:
            self._load_balancer_controller()
        self.charts = tuple(c for c in (self.lws, self.keda, self.load_balancer_controller) if c is not None)

    def _helm(
        self, id: str, pin: versions.HelmChartPin, namespace: str, values: dict[str, Any], *, skip_crds: bool = False
    ) -> eks.HelmChart:
        """A pinned release named after its chart, waited for: model charts need its CRDs and webhooks."""
        oci = pin.repository.startswith("oci://")
        own_namespace = namespace != "kube-system"
        chart = eks.HelmChart(
            self,
            id,
            cluster=self.props.cluster,
            chart=pin.chart,
            # OCI charts are pulled by their full reference; the chart name is its last segment.
            repository=f"{pin.repository}/{pin.chart}" if oci else pin.repository,
            version=pin.version,
            release=pin.chart,
            namespace=namespace,
            skip_crds=skip_crds or None,
            # Created below with its Pod Security labels (Helm would create it without them).
            create_namespace=False,
            wait=True,
            timeout=Duration.minutes(10),
            values=values,
        )
        if own_namespace:
            ns = add_manifest(
                self,
                self.props.cluster,
                f"{id}Namespace",
                namespace_manifest(namespace, CONTROLLER_POD_SECURITY.get(namespace, "baseline")),
                name="serving-controllers",
            )
            chart.node.add_dependency(ns)
        return chart

    def _load_balancer_controller(self) -> None:
        props = self.props
        cluster = props.cluster
        identity = pod_identity(
            self,
            "LbcRole",
            cluster=cluster,
            namespace=props.lbc_namespace,
            service_account=props.lbc_service_account,
            description="AWS Load Balancer Controller (EKS Pod Identity): load balancers it tags as its own",
            association_id="LbcPodIdentity",
        )
        role = identity.role
        stack = Stack.of(self)
        vpc_arn = stack.format_arn(service="ec2", resource="vpc", resource_name=props.vpc_id)
        policy = iam.Policy(
            self,
            "LbcPolicy",
            statements=lbc_statements(stack.partition, cluster_name=cluster.cluster_name, vpc_arn=vpc_arn),
        )
        policy.attach_to_role(role)
        for rule, reason in lbc_acknowledgements(nag_partition(stack)).items():
            acknowledge(policy, rule, reason)
        acknowledge_checkov(
            policy,
            "CKV_AWS_111",
            "The controller's reference policy (checked against the vendored one by the IAM contract gate): "
            "creating load balancers, target groups and security groups has no resource ARN before they exist; "
            "their later mutations are scoped by this cluster's tag",
        )
        self.lbc_role = role
        assert identity.association is not None
        self.lbc_pod_identity = identity.association
        self.load_balancer_controller = self._helm(
            "Lbc",
            props.lbc_chart,
            props.lbc_namespace,
            {
                "clusterName": cluster.cluster_name,
                "region": props.region,
                "vpcId": props.vpc_id,
                "serviceAccount": {"create": True, "name": props.lbc_service_account},
                "replicaCount": 2,
                **on_system_nodes(),
                # Only Services that ask for it (loadBalancerClass) get an NLB; others keep the default behaviour.
                "enableServiceMutatorWebhook": False,
            },
        )
        # Pods started before the association exists get no credentials until restarted.
        self.load_balancer_controller.node.add_dependency(self.lbc_pod_identity, policy)


def lbc_acknowledgements(partition: str) -> dict[str, str]:
    """The cdk-nag findings of :func:`lbc_statements` and why each is acceptable (``partition`` as cdk-nag
    writes it)."""
    acks = {
        "AwsSolutions-IAM5[Resource::*]": (
            "As in the controller's reference policy: Describe*/Get* and acm/cognito/iam certificate reads accept "
            "no resource ARN; CreateSecurityGroup, CreateLoadBalancer and CreateTargetGroup create resources with "
            f"generated ids (the latter two only with this cluster's {LBC_CLUSTER_TAG} tag in the request); "
            "security group deletion and ingress changes on '*' need that tag on the group; WAF/Shield "
            "association takes the web ACL or protection the Ingress annotation names."
        ),
        f"AwsSolutions-IAM5[Resource::arn:{partition}:ec2:*:*:security-group/*]": (
            "Security groups have generated ids: tags change only on groups the controller tagged, and ingress "
            "rules only on groups of this cluster's VPC (ec2:Vpc condition)."
        ),
    }
    for kind, what in (
        ("loadbalancer/app/*/*", "ALBs"),
        ("loadbalancer/net/*/*", "NLBs"),
        ("targetgroup/*/*", "Target groups"),
        ("listener/app/*/*/*", "ALB listeners"),
        ("listener/net/*/*/*", "NLB listeners"),
        ("listener-rule/app/*/*/*", "ALB listener rules"),
        ("listener-rule/net/*/*/*", "NLB listener rules"),
    ):
        acks[f"AwsSolutions-IAM5[Resource::arn:{partition}:elasticloadbalancing:*:*:{kind}]"] = (
            f"{what} the controller creates have generated names; every mutation, target registration and tag "
            f"change needs {LBC_CLUSTER_TAG} naming this cluster, on the resource or (at creation) in the request."
        )
    return acks


def nag_partition(stack: Stack) -> str:
    """The partition as cdk-nag writes it in granular finding ids ('aws', or '<AWS::Partition>')."""
    from aws_cdk import Token

    return "<AWS::Partition>" if Token.is_unresolved(stack.partition) else stack.partition


def lbc_statements(partition: str, *, cluster_name: str, vpc_arn: str) -> list[iam.PolicyStatement]:
    """The AWS Load Balancer Controller's permissions, after its reference ``iam_policy.json`` (v3.4.2).

    Every reference action is granted; what the reference leaves open is narrowed where IAM allows:
    listener, rule, target-group and load-balancer mutations need the controller's
    ``elbv2.k8s.aws/cluster`` tag naming *this* cluster (on the resource, or in the request when it is
    being created with its tags), and security-group ingress changes stay inside the cluster's VPC.
    """
    mine = {"StringEquals": {f"aws:ResourceTag/{LBC_CLUSTER_TAG}": cluster_name}}
    created_mine = {"StringEquals": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": cluster_name}}
    tagging_own = {"Null": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": "true", f"aws:ResourceTag/{LBC_CLUSTER_TAG}": "false"}}
    elb = f"arn:{partition}:elasticloadbalancing:*:*"
    load_balancers = [f"{elb}:loadbalancer/net/*/*", f"{elb}:loadbalancer/app/*/*"]
    target_groups = [f"{elb}:targetgroup/*/*"]
    listeners = [f"{elb}:listener/net/*/*/*", f"{elb}:listener/app/*/*/*"]
    rules = [f"{elb}:listener-rule/net/*/*/*", f"{elb}:listener-rule/app/*/*/*"]
    security_groups = [f"arn:{partition}:ec2:*:*:security-group/*"]
    return [
        iam.PolicyStatement(
            actions=["iam:CreateServiceLinkedRole"],
            resources=["*"],
            conditions={"StringEquals": {"iam:AWSServiceName": "elasticloadbalancing.amazonaws.com"}},
        ),
        iam.PolicyStatement(
            actions=[
                "ec2:DescribeAccountAttributes",
                "ec2:DescribeAddresses",
                "ec2:DescribeAvailabilityZones",
                "ec2:DescribeInternetGateways",
                "ec2:DescribeVpcs",
                "ec2:DescribeVpcPeeringConnections",
                "ec2:DescribeSubnets",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeInstances",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeTags",
                "ec2:DescribeRouteTables",
                "ec2:GetCoipPoolUsage",
                "ec2:DescribeCoipPools",
                "ec2:GetSecurityGroupsForVpc",
                "ec2:DescribeIpamPools",
                "elasticloadbalancing:DescribeLoadBalancers",
                "elasticloadbalancing:DescribeLoadBalancerAttributes",
                "elasticloadbalancing:DescribeListeners",
                "elasticloadbalancing:DescribeListenerCertificates",
                "elasticloadbalancing:DescribeListenerAttributes",
                "elasticloadbalancing:DescribeSSLPolicies",
                "elasticloadbalancing:DescribeRules",
                "elasticloadbalancing:DescribeTargetGroups",
                "elasticloadbalancing:DescribeTargetGroupAttributes",
                "elasticloadbalancing:DescribeTargetHealth",
                "elasticloadbalancing:DescribeTags",
                "elasticloadbalancing:DescribeTrustStores",
                "elasticloadbalancing:DescribeCapacityReservation",
                "acm:ListCertificates",
                "acm:DescribeCertificate",
                "cognito-idp:DescribeUserPoolClient",
                "iam:ListServerCertificates",
                "iam:GetServerCertificate",
                "wafv2:GetWebACL",
                "wafv2:GetWebACLForResource",
                "waf-regional:GetWebACL",
                "waf-regional:GetWebACLForResource",
                "shield:GetSubscriptionState",
                "shield:DescribeProtection",
            ],
            resources=["*"],
        ),
        # The wafv2-acl-arn / waf-acl-id / shield-advanced-protection Ingress annotations: the controller
        # associates the ACL with, and protects, the ALBs it manages. These calls take the web ACL or the
        # protection as their resource, whose ARNs the user chooses.
        iam.PolicyStatement(
            actions=[
                "wafv2:AssociateWebACL",
                "wafv2:DisassociateWebACL",
                "waf-regional:AssociateWebACL",
                "waf-regional:DisassociateWebACL",
                "shield:CreateProtection",
                "shield:DeleteProtection",
            ],
            resources=["*"],
        ),
        # Targets are reached through the cluster's and the nodes' security groups, which the controller
        # did not create: ingress rules on any security group of this VPC (not of another VPC).
        iam.PolicyStatement(
            actions=["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"],
            resources=security_groups,
            conditions={"StringEquals": {"ec2:Vpc": vpc_arn}},
        ),
        iam.PolicyStatement(actions=["ec2:CreateSecurityGroup"], resources=["*"]),
        iam.PolicyStatement(
            actions=["ec2:CreateTags"],
            resources=security_groups,
            conditions={
                "StringEquals": {"ec2:CreateAction": "CreateSecurityGroup"},
                "Null": {f"aws:RequestTag/{LBC_CLUSTER_TAG}": "false"},
            },
        ),
        iam.PolicyStatement(
            actions=["ec2:CreateTags", "ec2:DeleteTags"], resources=security_groups, conditions=tagging_own
        ),
        iam.PolicyStatement(
            actions=["ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress", "ec2:DeleteSecurityGroup"],
            resources=["*"],
            conditions={"Null": {f"aws:ResourceTag/{LBC_CLUSTER_TAG}": "false"}},
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:CreateLoadBalancer", "elasticloadbalancing:CreateTargetGroup"],
            resources=["*"],
            conditions=created_mine,
        ),
        # Listeners and rules: created with this cluster's tag, on load balancers / listeners of this cluster.
        iam.PolicyStatement(
            actions=["elasticloadbalancing:CreateListener"],
            resources=[*load_balancers, *listeners],
            conditions=mine,
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:CreateListener"],
            resources=listeners,
            conditions=created_mine,
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:CreateRule"],
            resources=[*listeners, *rules],
            conditions=mine,
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:CreateRule"],
            resources=rules,
            conditions=created_mine,
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:AddTags", "elasticloadbalancing:RemoveTags"],
            resources=[*target_groups, *load_balancers, *listeners, *rules],
            conditions=tagging_own,
        ),
        # Tag-on-create: load balancers, target groups, listeners (the HTTPS listener included) and rules.
        iam.PolicyStatement(
            actions=["elasticloadbalancing:AddTags"],
            resources=[*target_groups, *load_balancers, *listeners, *rules],
            conditions={
                "StringEquals": {
                    "elasticloadbalancing:CreateAction": [
                        "CreateTargetGroup",
                        "CreateLoadBalancer",
                        "CreateListener",
                        "CreateRule",
                    ],
                    f"aws:RequestTag/{LBC_CLUSTER_TAG}": cluster_name,
                },
            },
        ),
        iam.PolicyStatement(
            actions=[
                "elasticloadbalancing:ModifyLoadBalancerAttributes",
                "elasticloadbalancing:SetIpAddressType",
                "elasticloadbalancing:SetSecurityGroups",
                "elasticloadbalancing:SetSubnets",
                "elasticloadbalancing:DeleteLoadBalancer",
                "elasticloadbalancing:ModifyTargetGroup",
                "elasticloadbalancing:ModifyTargetGroupAttributes",
                "elasticloadbalancing:DeleteTargetGroup",
                "elasticloadbalancing:ModifyListenerAttributes",
                "elasticloadbalancing:ModifyCapacityReservation",
                "elasticloadbalancing:ModifyIpPools",
                "elasticloadbalancing:SetWebAcl",
            ],
            resources=load_balancers + target_groups + listeners,
            conditions=mine,
        ),
        iam.PolicyStatement(
            actions=["elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"],
            resources=target_groups,
            conditions=mine,
        ),
        iam.PolicyStatement(
            actions=[
                "elasticloadbalancing:DeleteListener",
                "elasticloadbalancing:ModifyListener",
                "elasticloadbalancing:AddListenerCertificates",
                "elasticloadbalancing:RemoveListenerCertificates",
            ],
            resources=listeners,
            conditions=mine,
        ),
        iam.PolicyStatement(
            actions=[
                "elasticloadbalancing:DeleteRule",
                "elasticloadbalancing:ModifyRule",
                "elasticloadbalancing:SetRulePriorities",
            ],
            resources=rules,
            conditions=mine,
        ),
    ]
