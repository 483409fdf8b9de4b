"""``ClusterNetwork``: the VPC the cluster and its GPU nodes live in — new, or imported by id."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import ArnFormat, RemovalPolicy, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..conventions import DISCOVERY_TAG
from ..errors import collecting
from ..gates.nag import acknowledge, acknowledge_checkov_generated

#: Interface endpoints by short name (S3 is a gateway endpoint, handled apart).
_INTERFACE_ENDPOINTS = {
    "ecr": (ec2.InterfaceVpcEndpointAwsService.ECR, ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER),
    "sts": (ec2.InterfaceVpcEndpointAwsService.STS,),
    "ec2": (ec2.InterfaceVpcEndpointAwsService.EC2,),
    "sqs": (ec2.InterfaceVpcEndpointAwsService.SQS,),
    "logs": (ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,),
    "secretsmanager": (ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,),
    "elasticfilesystem": (ec2.InterfaceVpcEndpointAwsService.ELASTIC_FILESYSTEM,),
}
ENDPOINT_NAMES = ("s3", *_INTERFACE_ENDPOINTS)

#: How long VPC flow logs are kept.
FLOW_LOG_RETENTION = logs.RetentionDays.ONE_MONTH


def s3_endpoint_statements(partition: str, region: str, account: str) -> list[iam.PolicyStatement]:
    """What the S3 gateway endpoint lets through: principals of this account (pods, nodes, FSx), and
    reads of the AWS-owned buckets nodes pull from (ECR image layers, Amazon Linux package repositories),
    which are fetched with URLs signed by AWS, not by a principal of this account."""
    return [
        iam.PolicyStatement(
            sid="ThisAccountsPrincipals",
            principals=[iam.AnyPrincipal()],
            actions=["s3:*"],
            resources=["*"],
            conditions={"StringEquals": {"aws:PrincipalAccount": account}},
        ),
        iam.PolicyStatement(
            sid="AwsOwnedNodeBuckets",
            principals=[iam.AnyPrincipal()],
            actions=["s3:GetObject"],
            resources=[
                f"arn:{partition}:s3:::prod-{region}-starport-layer-bucket/*",
                f"arn:{partition}:s3:::al2023-repos-{region}-*/*",
                f"arn:{partition}:s3:::amazonlinux-2-repos-{region}/*",
            ],
        ),
    ]


def allow_logs_to_use_key(key: kms.IKey, stack: Stack, *, log_group_name: str) -> None:
    """Let CloudWatch Logs of this region use ``key``, only for ``log_group_name`` (``*``: any group of this account
    and region), through the encryption context it sends."""
    operator = "ArnLike" if "*" in log_group_name else "ArnEquals"
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            resources=["*"],
            conditions={
                operator: {
                    "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                        service="logs",
                        resource="log-group",
                        resource_name=log_group_name,
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                }
            },
        )
    )


@dataclass(frozen=True, kw_only=True)
class ClusterNetworkProps:
    """How to get a VPC.

    ``cluster_name`` — the value of the ``karpenter.sh/discovery`` tag put on private subnets.
    ``vpc_id`` — import this VPC instead of creating one (default: create). With it,
    ``private_subnet_ids`` (two or more) and, optionally, their ``availability_zones`` are
    required, because synth performs no lookups.
    ``cidr`` — CIDR of a new VPC (default 10.0.0.0/16). ``max_azs`` — zones of a new VPC
    (default 3; in an environment-agnostic stack the zones are the region's first three).
    ``nat_gateways`` — default 1. ``endpoints`` — VPC endpoints to add (default none).
    ``flow_logs`` — VPC flow logs of a new VPC to CloudWatch Logs, encrypted with their own key and kept
    30 days (default on). ``ephemeral`` — the flow-log key is destroyed with the stack (default: RETAIN).
    """

    cluster_name: str
    vpc_id: str | None = None
    private_subnet_ids: tuple[str, ...] = ()
    availability_zones: tuple[str, ...] = ()
    cidr: str = "10.0.0.0/16"
    max_azs: int = 3
    nat_gateways: int = 1
    endpoints: tuple[str, ...] = ()
    flow_logs: bool = True
    ephemeral: bool = False

    def __post_init__(self) -> None:
        with collecting("ClusterNetworkProps") as p:
            unknown = [e for e in self.endpoints if e not in ENDPOINT_NAMES]
            p.check(
                not unknown, "endpoints", unknown, "unknown endpoint names", f"use some of: {', '.join(ENDPOINT_NAMES)}"
            )
            if self.vpc_id:
                p.check(
                    len(self.private_subnet_ids) >= 2,
                    "private_subnet_ids",
                    self.private_subnet_ids,
                    "an imported VPC needs two or more private subnets",
                    "list the VPC's private subnet ids",
                )
            p.check(
                self.nat_gateways <= self.max_azs,
                "nat_gateways",
                self.nat_gateways,
                f"more NAT gateways than zones ({self.max_azs})",
                "use at most one NAT gateway per zone",
            )


class ClusterNetwork(Construct):
    """A VPC ready for EKS and Karpenter.

    A new VPC gets a public and a private subnet per zone (the private ones tagged for
    Karpenter discovery and internal load balancers), NAT, flow logs and the endpoints asked
    for. An imported VPC is referenced by ids only; its subnets are tagged by the owner.
    """

    def __init__(self, scope: Construct, id: str, *, props: ClusterNetworkProps) -> None:
        super().__init__(scope, id)
        self.props = props
        if props.vpc_id:
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=props.vpc_id,
                availability_zones=list(props.availability_zones)
                or [f"zone-{i}" for i in range(len(props.private_subnet_ids))],
                private_subnet_ids=list(props.private_subnet_ids),
            )
            self.private_subnets = ec2.SubnetSelection(
                subnets=[
                    ec2.Subnet.from_subnet_id(self, f"Private{i}", sid)
                    for i, sid in enumerate(props.private_subnet_ids)
                ]
            )
            return
        vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(props.cidr),
            # Either explicit zones or a count, never both (the VPC construct refuses the pair).
            max_azs=None if props.availability_zones else props.max_azs,
            availability_zones=list(props.availability_zones) or None,
            nat_gateways=props.nat_gateways,
            restrict_default_security_group=True,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=22),
                # Large private subnets: with prefix delegation every node takes /28 blocks.
                ec2.SubnetConfiguration(name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=18),
            ],
        )
        self.vpc = vpc
        self.private_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        provider = Stack.of(self).node.try_find_child("Custom::VpcRestrictDefaultSGCustomResourceProvider")
        if provider is not None:
            acknowledge_checkov_generated(
                provider,
                "AWS::Lambda::Function",
                ("CKV_AWS_115", "CKV_AWS_116", "CKV_AWS_117", "CKV_AWS_173"),
                "aws-cdk-lib's custom resource that empties the default security group: invoked synchronously by "
                "CloudFormation at deploy only, no environment secrets, and it must run before the VPC has routes",
            )
        for subnet in vpc.private_subnets:
            Tags.of(subnet).add(DISCOVERY_TAG, props.cluster_name)
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
        for subnet in vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        if props.flow_logs:
            stack = Stack.of(self)
            self.flow_logs_key = kms.Key(
                self,
                "FlowLogsKey",
                description=f"VPC flow logs of {props.cluster_name}",
                enable_key_rotation=True,
                removal_policy=RemovalPolicy.DESTROY if props.ephemeral else RemovalPolicy.RETAIN,
            )
            # CloudWatch Logs may use the key for log groups of this account and region only.
            allow_logs_to_use_key(self.flow_logs_key, stack, log_group_name="*")
            log_group = logs.LogGroup(self, "FlowLogs", retention=FLOW_LOG_RETENTION, encryption_key=self.flow_logs_key)
            vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group))
        else:
            acknowledge(
                vpc.node.default_child,  # type: ignore[arg-type]
                "AwsSolutions-VPC7",
                "Flow logs switched off in the profile (flow_logs: false), meant for throw-away environments.",
            )
        if "s3" in props.endpoints:
            s3_endpoint = vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
            stack = Stack.of(self)
            for statement in s3_endpoint_statements(stack.partition, stack.region, stack.account):
                s3_endpoint.add_to_policy(statement)
        for name in props.endpoints:
            for i, service in enumerate(_INTERFACE_ENDPOINTS.get(name, ())):
                endpoint = vpc.add_interface_endpoint(
                    f"{name.capitalize()}{i or ''}",
                    service=service,
                    subnets=self.private_subnets,
                    private_dns_enabled=True,
                )
                for sg in endpoint.connections.security_groups:
                    acknowledge(
                        sg.node.default_child,  # type: ignore[arg-type]
                        "AwsSolutions-EC23",
                        "Interface endpoint: HTTPS from the VPC's own CIDR only; the CIDR is a token at synth time, "
                        "which the rule cannot evaluate.",
                    )
