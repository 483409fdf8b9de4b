"""A small stack with a cluster, Karpenter and GPU pools, shared by the GPU compute tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_eks_v2 as eks
from aws_cdk.assertions import Template
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer

from eks_llm_stack.charts.render import placeholders
from eks_llm_stack.constructs.device_plugins import DevicePluginsProps, GpuDevicePlugins
from eks_llm_stack.constructs.gpu_node_pool import GpuNodePool, GpuNodePoolProps
from eks_llm_stack.constructs.karpenter import Karpenter


@dataclass
class GpuStack:
    stack: Stack
    vpc: ec2.Vpc
    cluster: eks.Cluster
    karpenter: Karpenter
    pools: dict[str, GpuNodePool]

    def template(self) -> Template:
        return Template.from_stack(self.stack)

    def docs(self, pool: str) -> list[dict[str, Any]]:
        """The pool's manifests with CloudFormation values as ``${...}`` placeholders."""
        return [placeholders(self.stack.resolve(d)) for d in self.pools[pool].manifests()]

    def doc(self, pool: str, kind: str) -> dict[str, Any]:
        return next(d for d in self.docs(pool) if d["kind"] == kind)


def build(
    pools: Sequence[tuple[str, GpuNodePoolProps]] = (),
    *,
    subnets: Callable[[ec2.Vpc], Sequence[ec2.ISubnet]] | None = None,
    device_plugins: bool = True,
) -> GpuStack:
    """One app: a VPC over two AZs in us-east-1, a cluster, Karpenter, ``pools`` and their device plugins."""
    # Known zones, as `cdk synth` would have cached them: no lookup, real names.
    app = App(context={"availability-zones:account=123456789012:region=us-east-1": ["us-east-1a", "us-east-1b"]})
    stack = Stack(app, "Gpu", env=Environment(account="123456789012", region="us-east-1"))
    vpc = ec2.Vpc(stack, "Vpc", max_azs=2, nat_gateways=1)
    cluster = eks.Cluster(
        stack,
        "Cluster",
        version=eks.KubernetesVersion.V1_35,
        vpc=vpc,
        default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
        default_capacity=0,
        kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(stack, "Kubectl")),
    )
    karpenter = Karpenter(stack, "Karpenter", cluster=cluster)
    built = {
        name: GpuNodePool(
            stack, name, cluster=cluster, karpenter=karpenter, props=props, subnets=subnets(vpc) if subnets else None
        )
        for name, props in pools
    }
    if device_plugins and pools:
        GpuDevicePlugins(
            stack, "DevicePlugins", cluster=cluster, props=DevicePluginsProps.for_pools([p for _, p in pools])
        )
    return GpuStack(stack=stack, vpc=vpc, cluster=cluster, karpenter=karpenter, pools=built)
