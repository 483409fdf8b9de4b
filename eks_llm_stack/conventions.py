"""Names and figures two layers must agree on, defined once: AWS side and Kubernetes side, app and ops.

A GPU pool labels and taints its nodes with these keys; charts select and tolerate them
through :mod:`eks_llm_stack.charts.kube`. The stacks tag and name themselves with the tag keys,
stack roles and cluster name below, and the ops commands find them by the same. Keeping them here
means a pool and a chart built by different teams still agree. This module imports nothing, so
every layer (ops without the CDK included) can read it.
"""

from __future__ import annotations

#: Taint on every GPU node (Karpenter pools): only pods that tolerate it land there.
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_TAINT_VALUE = "true"
GPU_TAINT_EFFECT = "NoSchedule"
#: Extended resources advertised by the device plugins.
GPU_RESOURCE = "nvidia.com/gpu"
EFA_RESOURCE = "vpc.amazonaws.com/efa"
#: Label every node of one of our GPU pools carries: the pool name.
POOL_LABEL = "eks-llm-stack.io/pool"
#: Label with the pool's purpose (inference | training).
WORKLOAD_LABEL = "eks-llm-stack.io/workload"
#: Karpenter well-known labels.
CAPACITY_TYPE_LABEL = "karpenter.sh/capacity-type"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
GPU_COUNT_LABEL = "karpenter.k8s.aws/instance-gpu-count"
ZONE_LABEL = "topology.kubernetes.io/zone"
#: Taint of the system node group, tolerated by controllers only.
SYSTEM_TAINT_KEY = "CriticalAddonsOnly"
#: Label of the system node group.
SYSTEM_NODE_LABEL = "eks-llm-stack.io/system"
#: Tag Karpenter uses to discover subnets and security groups.
DISCOVERY_TAG = "karpenter.sh/discovery"
#: Tag EKS and Karpenter put on the instances of a cluster (value: the cluster name).
CLUSTER_NAME_TAG = "eks:eks-cluster-name"
#: Common labels on every object we render.
MANAGED_BY = {"app.kubernetes.io/managed-by": "eks-llm-stack"}
#: vLLM's native multi-node launch (``vllm serve --nnodes N --node-rank R --master-addr <leader>
#: --master-port P``; workers add ``--headless``): the torch.distributed rendezvous port on the
#: leader of a LeaderWorkerSet group (vLLM's own default of ``--master-port``). Besides it,
#: NCCL's bootstrap and vLLM's inter-node message queues use ephemeral TCP ports between the
#: members of one group, so a NetworkPolicy between them must allow every TCP port within the group.
VLLM_MULTINODE_PORT = 29501
#: Port of vLLM's OpenAI-compatible server (and of the simulator).
VLLM_PORT = 8000
#: Where harness 0 of a multi-pod benchmark Job meets the others (``bench run --barrier``); the
#: benchmark chart's Service and NetworkPolicy open exactly this port between its pods.
BENCH_BARRIER_PORT = 7000
#: Secrets Manager name (without the profile prefix) and Kubernetes Secret name of the Hugging Face token.
HF_TOKEN_SECRET = "huggingface-token"
#: Secrets Manager name (without the profile prefix) of the generated Grafana admin login, and the name of
#: the Kubernetes Secret External Secrets syncs it into.
GRAFANA_ADMIN_SECRET = "grafana-admin"
#: The PersistentVolumeClaims the storage chart creates for the model caches, by cache kind.
CACHE_CLAIMS: dict[str, str] = {"fsx": "model-cache-fsx", "efs": "model-cache-efs"}
#: Name of that port: the vLLM PodMonitor of the monitoring chart scrapes the port of this name.
VLLM_PORT_NAME = "http"
#: uid/gid vLLM and the model-fetch Job run as; also the owner of the EFS model-cache access point.
MODEL_UID = 1000

#: Host memory (GiB) left to the OS, kubelet and daemon sets on a GPU node: the sizing engine adds
#: it to what loading a shard needs, and the vLLM chart keeps it out of the pod's memory request.
HOST_MEMORY_RESERVE_GIB = 4.0

#: The stacks of a platform by role, in deploy order (``ephemeral down`` deletes them in reverse);
#: each is named ``<StackPrefix>-<Role>`` (:func:`eks_llm_stack.naming.stack_name`).
NETWORK_STACK = "Network"
DATA_STACK = "Data"
PLATFORM_STACK = "Platform"
SERVING_STACK = "Serving"
STACK_ROLES = (NETWORK_STACK, DATA_STACK, PLATFORM_STACK, SERVING_STACK)

#: Every tag key the library owns starts with this (case-insensitive, as AWS compares tag keys in IAM).
RESERVED_TAG_PREFIX = "eks-llm-stack:"
#: Stack tags: the profile, the prefix (the environment's name), and for ephemeral environments the
#: ownership record that ``ephemeral down`` and ``reap`` act on.
TAG_PROFILE = "eks-llm-stack:profile"
TAG_NAME = "eks-llm-stack:name"
TAG_EPHEMERAL = "eks-llm-stack:ephemeral"
TAG_EXPIRES_AT = "eks-llm-stack:expires-at"
#: A random id written by ``ephemeral up`` only; ``down`` and ``reap`` act on nothing without it.
TAG_DEPLOYMENT_ID = "eks-llm-stack:deployment-id"
#: The stack output that repeats the deployment id from the template itself (tags alone can be set by anyone).
DEPLOYMENT_ID_OUTPUT = "EphemeralDeploymentId"


def cluster_name(prefix: str) -> str:
    """The EKS cluster a profile with ``prefix`` creates unless it names one: ``<prefix>-cluster``."""
    return f"{prefix}-cluster"


def secret_name(prefix: str, name: str) -> str:
    """The Secrets Manager name of a secret the Data stack creates for a profile: ``<prefix>/<name>``."""
    return f"{prefix}/{name}"
