"""The sizing engine (``engine``) and the token cost formula (``cost``).

``from eks_llm_stack.sizing import size, SizingRequest, Plan`` is the public entry point; the
serving stack calls it at synth time and ``eks-llm-stack size`` prints its answer.
"""

from __future__ import annotations

from .cost import TOKENS, TokenCost, token_cost
from .engine import (
    CAPACITY_TYPES,
    CUDA_CONTEXT_GIB,
    CUDA_GRAPHS_GIB,
    DEFAULT_GPU_MEMORY_UTILIZATION,
    DEFAULT_MAX_MODEL_LEN,
    DISTRIBUTED_GIB,
    DTYPES,
    GIB,
    HOST_RESERVE_GIB,
    KV_CACHE_DTYPES,
    MAX_NODES,
    MAX_NUM_BATCHED_TOKENS,
    MAX_NUM_SEQS_CAP,
    MemoryBudget,
    Plan,
    Problem,
    RunnerUp,
    SizingRequest,
    ThroughputEstimate,
    capability_problem,
    kv_bytes_per_token_per_gpu,
    size,
    vllm_args,
    weight_breakdown,
    weight_bytes,
)
from .memory import KV_BLOCK_TOKENS, kv_bytes_per_sequence_per_gpu, per_gpu_weight_bytes
from .parallel import TP_SIZES, check_tp, valid_tp_sizes
from .pool import gpu_pool_fragment, storage_fragment

__all__ = [
    "CAPACITY_TYPES",
    "CUDA_CONTEXT_GIB",
    "CUDA_GRAPHS_GIB",
    "DEFAULT_GPU_MEMORY_UTILIZATION",
    "DEFAULT_MAX_MODEL_LEN",
    "DISTRIBUTED_GIB",
    "DTYPES",
    "GIB",
    "HOST_RESERVE_GIB",
    "KV_BLOCK_TOKENS",
    "KV_CACHE_DTYPES",
    "MAX_NODES",
    "MAX_NUM_BATCHED_TOKENS",
    "MAX_NUM_SEQS_CAP",
    "TOKENS",
    "TP_SIZES",
    "MemoryBudget",
    "Plan",
    "Problem",
    "RunnerUp",
    "SizingRequest",
    "ThroughputEstimate",
    "TokenCost",
    "capability_problem",
    "check_tp",
    "gpu_pool_fragment",
    "kv_bytes_per_sequence_per_gpu",
    "kv_bytes_per_token_per_gpu",
    "per_gpu_weight_bytes",
    "size",
    "storage_fragment",
    "token_cost",
    "valid_tp_sizes",
    "vllm_args",
    "weight_breakdown",
    "weight_bytes",
]
