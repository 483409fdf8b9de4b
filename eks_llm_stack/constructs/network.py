"""``ClusterNetwork``: the VPC the cluster and its GPU nodes live in — new, or imported by id."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from ..conventions import DISCOVERY_TAG
from ..errors import collecting
from ..gates.nag import acknowledge

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
    ``flow_logs`` — VPC flow logs of a new VPC to CloudWatch Logs (default on).
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
        for subnet in vpc.private_subnets:
            Tags.of(subnet).add(DISCOVERY_TAG, props.cluster_name)
            Tags.of(subnet).add("kubernetes.io/role/internal-elb", "1")
        for subnet in vpc.public_subnets:
            Tags.of(subnet).add("kubernetes.io/role/elb", "1")
        if props.flow_logs:
            log_group = logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH)
            vpc.add_flow_log("FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(log_group))
        else:
            acknowledge(
                vpc.node.default_child,  # type: ignore[arg-type]
                "AwsSolutions-VPC7",
                "Flow logs switched off in the profile (flow_logs: false), meant for throw-away environments.",
            )
        if "s3" in props.endpoints:
            vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3)
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
