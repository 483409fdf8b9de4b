"""The README's construct example, as a consumer writes it: an LlmCluster in a stack of their own."""

import sys

from aws_cdk import App, Stack
from aws_cdk import aws_ec2 as ec2

from eks_llm_stack.constructs import LlmCluster, LlmClusterProps

app = App(outdir=sys.argv[1])
stack = Stack(app, "Team")
vpc = ec2.Vpc(stack, "Vpc", max_azs=3)
cluster = LlmCluster(
    stack,
    "Cluster",
    props=LlmClusterProps(
        cluster_name="team-llm",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        admin_principal_arns=("arn:aws:iam::123456789012:role/team-admins",),
        public_cidrs=("203.0.113.0/24",),
    ),
)
app.synth()
