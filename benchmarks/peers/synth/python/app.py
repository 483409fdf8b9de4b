#!/usr/bin/env python3
"""The TypeScript peer (``../ts/app.ts``) written with aws-cdk-lib's Python bindings, for benchmarks/synth.py.

Same stacks and resources: a VPC; EFS and two secrets; an EKS cluster (aws-eks-v2, kubectl layer v35) with a
system and a GPU managed node group, Karpenter-like resources, controllers as Helm releases with Pod Identity;
one vLLM Deployment + Service. No profile, no cdk8s, no cdk-nag: what a plain aws-cdk-lib Python app costs.
"""

from __future__ import annotations

from aws_cdk import App, Duration, RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_efs as efs
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sqs as sqs
from aws_cdk.lambda_layer_kubectl_v35 import KubectlV35Layer
from constructs import Construct

CONTROLLERS = [
    ("nvidia-device-plugin", "https://nvidia.github.io/k8s-device-plugin", "0.18.0", "kube-system"),
    ("external-secrets", "https://charts.external-secrets.io", "0.20.4", "external-secrets"),
    ("aws-load-balancer-controller", "https://aws.github.io/eks-charts", "1.14.1", "kube-system"),
    ("kube-prometheus-stack", "https://prometheus-community.github.io/helm-charts", "79.1.0", "monitoring"),
    ("dcgm-exporter", "https://nvidia.github.io/dcgm-exporter/helm-charts", "4.6.0", "monitoring"),
]


class NetworkStack(Stack):
    def __init__(self, scope: Construct, id: str) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(self, "Vpc", max_azs=3, nat_gateways=1)
        self.vpc.add_flow_log("FlowLog")


class DataStack(Stack):
    def __init__(self, scope: Construct, id: str, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        key = kms.Key(self, "Key", enable_key_rotation=True)
        fs = efs.FileSystem(
            self, "ModelCache", vpc=vpc, encrypted=True, kms_key=key, removal_policy=RemovalPolicy.RETAIN
        )
        fs.add_access_point(
            "Models",
            path="/models",
            posix_user=efs.PosixUser(uid="1000", gid="1000"),
            create_acl=efs.Acl(owner_uid="1000", owner_gid="1000", permissions="750"),
        )
        for name in ("huggingface-token", "ngc-api-key"):
            secretsmanager.Secret(self, name, secret_name=f"llm/{name}", encryption_key=key)


class PlatformStack(Stack):
    def __init__(self, scope: Construct, id: str, vpc: ec2.IVpc) -> None:
        super().__init__(scope, id)
        self.cluster = eks.Cluster(
            self,
            "Cluster",
            version=eks.KubernetesVersion.V1_35,
            vpc=vpc,
            default_capacity_type=eks.DefaultCapacityType.NODEGROUP,
            default_capacity=0,
            endpoint_access=eks.EndpointAccess.PRIVATE,
            kubectl_provider_options=eks.KubectlProviderOptions(kubectl_layer=KubectlV35Layer(self, "KubectlLayer")),
            cluster_logging=[eks.ClusterLoggingTypes.API, eks.ClusterLoggingTypes.AUDIT],
        )
        self.cluster.add_nodegroup_capacity(
            "System",
            instance_types=[ec2.InstanceType("m7i.large")],
            min_size=2,
            max_size=4,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_STANDARD,
        )
        self.cluster.add_nodegroup_capacity(
            "Gpu",
            instance_types=[ec2.InstanceType(t) for t in ("g6.xlarge", "g6.2xlarge", "g6e.xlarge", "g5.xlarge")],
            min_size=0,
            max_size=8,
            ami_type=eks.NodegroupAmiType.AL2023_X86_64_NVIDIA,
            capacity_type=eks.CapacityType.SPOT,
            labels={"eks-llm-stack/pool": "inference"},
            taints=[eks.TaintSpec(key="nvidia.com/gpu", effect=eks.TaintEffect.NO_SCHEDULE)],
        )
        for name in ("vpc-cni", "coredns", "kube-proxy", "eks-pod-identity-agent", "aws-efs-csi-driver"):
            eks.Addon(self, f"Addon-{name}", cluster=self.cluster, addon_name=name)
        queue = sqs.Queue(self, "Interruption", retention_period=Duration.minutes(5), enforce_ssl=True)
        patterns = {
            "Spot": (["aws.ec2"], ["EC2 Spot Instance Interruption Warning"]),
            "Rebalance": (["aws.ec2"], ["EC2 Instance Rebalance Recommendation"]),
            "State": (["aws.ec2"], ["EC2 Instance State-change Notification"]),
            "Health": (["aws.health"], ["AWS Health Event"]),
        }
        for rule, (source, detail_type) in patterns.items():
            events.Rule(
                self,
                f"Rule{rule}",
                event_pattern=events.EventPattern(source=source, detail_type=detail_type),
                targets=[targets.SqsQueue(queue)],
            )
        node_role = iam.Role(
            self,
            "NodeRole",
            assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"),
            managed_policies=[
                iam.ManagedPolicy.from_aws_managed_policy_name(p)
                for p in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
            ],
        )
        controller = iam.Role(self, "KarpenterController", assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com"))
        controller.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateFleet", "ec2:RunInstances", "ec2:CreateLaunchTemplate", "ec2:TerminateInstances"],
                resources=["*"],
            )
        )
        queue.grant_consume_messages(controller)
        node_role.grant_pass_role(controller)
        eks.CfnPodIdentityAssociation(
            self,
            "KarpenterIdentity",
            cluster_name=self.cluster.cluster_name,
            namespace="kube-system",
            service_account="karpenter",
            role_arn=controller.role_arn,
        )
        karpenter = self.cluster.add_helm_chart(
            "Karpenter",
            chart="karpenter",
            repository="oci://public.ecr.aws/karpenter/karpenter",
            namespace="kube-system",
            version="1.8.1",
            values={"settings": {"clusterName": self.cluster.cluster_name, "interruptionQueue": queue.queue_name}},
        )
        pool = self.cluster.add_manifest(
            "GpuPool",
            {
                "apiVersion": "karpenter.k8s.aws/v1",
                "kind": "EC2NodeClass",
                "metadata": {"name": "inference"},
                "spec": {
                    "role": node_role.role_name,
                    "amiSelectorTerms": [{"alias": "al2023@latest"}],
                    "subnetSelectorTerms": [{"tags": {"karpenter.sh/discovery": "llm"}}],
                    "securityGroupSelectorTerms": [{"tags": {"karpenter.sh/discovery": "llm"}}],
                    "blockDeviceMappings": [
                        {"deviceName": "/dev/xvda", "ebs": {"volumeSize": "200Gi", "encrypted": True}}
                    ],
                },
            },
            {
                "apiVersion": "karpenter.sh/v1",
                "kind": "NodePool",
                "metadata": {"name": "inference"},
                "spec": {
                    "template": {
                        "spec": {
                            "nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass", "name": "inference"},
                            "requirements": [
                                {
                                    "key": "karpenter.k8s.aws/instance-family",
                                    "operator": "In",
                                    "values": ["g6", "g6e", "g5"],
                                },
                                {
                                    "key": "karpenter.sh/capacity-type",
                                    "operator": "In",
                                    "values": ["spot", "on-demand"],
                                },
                            ],
                            "taints": [{"key": "nvidia.com/gpu", "effect": "NoSchedule"}],
                        }
                    },
                    "limits": {"nvidia.com/gpu": 16},
                },
            },
        )
        pool.node.add_dependency(karpenter)
        for name, repository, version, namespace in CONTROLLERS:
            role = iam.Role(self, f"{name}-role", assumed_by=iam.ServicePrincipal("pods.eks.amazonaws.com"))
            eks.CfnPodIdentityAssociation(
                self,
                f"{name}-identity",
                cluster_name=self.cluster.cluster_name,
                namespace=namespace,
                service_account=name,
                role_arn=role.role_arn,
            )
            self.cluster.add_helm_chart(
                name, chart=name, repository=repository, version=version, namespace=namespace, create_namespace=True
            )
        self.cluster.add_manifest(
            "Storage",
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {"name": "efs"},
                "provisioner": "efs.csi.aws.com",
            },
        )


class ServingStack(Stack):
    def __init__(self, scope: Construct, id: str, cluster: eks.ICluster) -> None:
        super().__init__(scope, id)
        labels = {"app": "llama-3-8b"}
        container = {
            "name": "vllm",
            "image": "vllm/vllm-openai:v0.11.0",
            "args": ["--model", "meta-llama/Llama-3.1-8B-Instruct", "--port", "8000"],
            "ports": [{"name": "http", "containerPort": 8000}],
            "resources": {"limits": {"nvidia.com/gpu": 1}},
        }
        pod = {
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [container],
        }
        eks.KubernetesManifest(
            self,
            "Model",
            cluster=cluster,
            manifest=[
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "llm-serving"}},
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "metadata": {"name": "llama-3-8b", "namespace": "llm-serving", "labels": labels},
                    "spec": {
                        "replicas": 1,
                        "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": pod},
                    },
                },
                {
                    "apiVersion": "v1",
                    "kind": "Service",
                    "metadata": {"name": "llama-3-8b", "namespace": "llm-serving", "labels": labels},
                    "spec": {"selector": labels, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]},
                },
            ],
        )


app = App()
network = NetworkStack(app, "Peer-Network")
DataStack(app, "Peer-Data", network.vpc)
platform = PlatformStack(app, "Peer-Platform", network.vpc)
ServingStack(app, "Peer-Serving", platform.cluster)
app.synth()
