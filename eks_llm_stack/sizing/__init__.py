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
    KV_BLOCK_TOKENS,
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
    kv_bytes_per_token_per_gpu,
    size,
    weight_bytes,
)

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
    "MemoryBudget",
    "Plan",
    "Problem",
    "RunnerUp",
    "SizingRequest",
    "ThroughputEstimate",
    "TokenCost",
    "kv_bytes_per_token_per_gpu",
    "size",
    "token_cost",
    "weight_bytes",
]
