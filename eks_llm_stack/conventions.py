"""Names shared between the AWS side (node pools) and the Kubernetes side (charts).

A GPU pool labels and taints its nodes with these keys; charts select and tolerate them
through :mod:`eks_llm_stack.charts.kube`. Keeping them here means a pool and a chart
built by different teams still agree.
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
#: The PersistentVolumeClaims the storage chart creates for the model caches, by cache kind.
CACHE_CLAIMS: dict[str, str] = {"fsx": "model-cache-fsx", "efs": "model-cache-efs"}
#: Name of that port: the vLLM PodMonitor of the monitoring chart scrapes the port of this name.
VLLM_PORT_NAME = "http"
#: uid/gid vLLM and the model-fetch Job run as; also the owner of the EFS model-cache access point.
MODEL_UID = 1000
