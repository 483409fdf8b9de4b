"""A composition of our own: cluster + Karpenter + a GPU pool + model storage + a vLLM model chart.

Only the public faces are imported (``eks_llm_stack.constructs``, ``eks_llm_stack.charts``), and mypy checks this
file in the consumer's environment (``py.typed``).
"""

from __future__ import annotations

import sys

import cdk8s
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_ec2 as ec2

from eks_llm_stack.charts import (
    NamespacesChart,
    NamespacesChartProps,
    NamespaceSpec,
    VllmChart,
    VllmChartProps,
    VllmModelProps,
    WeightsFromHub,
)
from eks_llm_stack.constructs import (
    DevicePluginsProps,
    EfsCacheOptions,
    GpuDevicePlugins,
    GpuNodePool,
    GpuNodePoolProps,
    Karpenter,
    LlmCluster,
    LlmClusterProps,
    ModelStorage,
    ModelStorageProps,
)

app = App(outdir=sys.argv[1])
stack = Stack(app, "Composed", env=Environment(account="123456789012", region="us-east-1"))
vpc = ec2.Vpc(stack, "Vpc", max_azs=2)
llm = LlmCluster(
    stack,
    "Cluster",
    props=LlmClusterProps(
        cluster_name="composed",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        admin_principal_arns=("arn:aws:iam::123456789012:role/platform-admins",),
    ),
)
cluster = llm.cluster
karpenter = Karpenter(stack, "Karpenter", cluster=cluster)
pool_props = GpuNodePoolProps.inference("inference")
pool = GpuNodePool(
    stack, "Inference", cluster=cluster, karpenter=karpenter, props=pool_props, subnets=vpc.private_subnets
)
GpuDevicePlugins(stack, "DevicePlugins", cluster=cluster, props=DevicePluginsProps.for_pools([pool_props]))
storage = ModelStorage(stack, "ModelStorage", props=ModelStorageProps(vpc=vpc, efs=EfsCacheOptions()))

charts = cdk8s.App()
namespaces = NamespacesChart(
    charts, "namespaces", props=NamespacesChartProps(namespaces=(NamespaceSpec(name="llm-serving"),))
)
model = VllmChart(
    charts,
    "qwen3-8b",
    props=VllmChartProps(
        model=VllmModelProps(
            name="qwen3-8b",
            namespace="llm-serving",
            weights=WeightsFromHub(repo="Qwen/Qwen3-8B", revision="b968826d9c46dd6066d109eabc6255188de91218"),
            pools=(pool.name,),
            instance_type="g6e.xlarge",
        )
    ),
)
applied_namespaces = cluster.add_cdk8s_chart("Namespaces", namespaces)
cluster.add_cdk8s_chart("Qwen3", model).node.add_dependency(applied_namespaces)
app.synth()
