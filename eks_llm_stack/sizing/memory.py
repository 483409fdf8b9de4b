"""The memory model: weights and KV cache bytes of a model, whole and per GPU.

Documented with worked examples in ``docs/sizing.md``.
"""

from __future__ import annotations

import math

from ..catalog import ModelSpec
from ..catalog.models import PARTS

#: Bytes per 16-bit weight.
BF16 = 2.0
#: vLLM's paged KV cache allocates in blocks of this many tokens.
KV_BLOCK_TOKENS = 16
#: AWQ/GPTQ group size assumed when a request asks for int4/int8 of an unquantized model.
DEFAULT_GROUP_SIZE = 128


def quantized_bytes(dtype: str, group: int = DEFAULT_GROUP_SIZE, block: int = 0) -> float:
    """Bytes per quantized weight, scales included.

    fp8: 1 byte (+ one fp32 scale per block x block when blocked; per-tensor/-channel scales
    are negligible). int8/int4 (AWQ/GPTQ): 1 or 0.5 bytes + a 16-bit scale and a 4-bit zero
    point per group. mxfp4: 4 bits + one 8-bit scale per 32 weights.
    """
    if dtype in ("bf16", "fp16"):
        return BF16
    if dtype == "fp8":
        return 1.0 + (4.0 / (block * block) if block else 0.0)
    if dtype == "mxfp4":
        return (4 + 8 / 32) / 8
    base = 1.0 if dtype == "int8" else 0.5
    return base + ((2.0 + 0.5) / group if group and group > 0 else 0.0)


def weight_breakdown(model: ModelSpec, dtype: str) -> dict[str, float]:
    """Bytes of each part of the model in ``dtype``: embeddings, attention, mlp, experts,
    shared_experts, router, other (norms, biases, vision tower: the published parameter count
    minus the architecture's)."""
    native = dtype == model.native_dtype
    group = model.quant_group_size if native else DEFAULT_GROUP_SIZE
    block = model.quant_block_size if native else 0
    qb = quantized_bytes(dtype, group or (DEFAULT_GROUP_SIZE if dtype in ("int4", "int8") else 0), block)
    parts = set(model.quantized) if native and model.quantized else set(PARTS)
    if dtype in ("bf16", "fp16"):
        parts = set()
    attention = model.layers * model.attention_params_per_layer
    mlp = model.dense_mlp_params
    out = {
        "embeddings": model.embedding_params * BF16,
        "attention": attention * (qb if "attention" in parts else BF16),
        "mlp": mlp * (qb if "mlp" in parts else BF16),
        "experts": model.expert_params * (qb if "experts" in parts else BF16),
        "shared_experts": model.shared_expert_params * (qb if "shared_experts" in parts else BF16),
        "router": model.router_params * BF16,
        "other": max(0, model.params - model.estimated_params()) * BF16,
    }
    if native and model.unquantized_mlp_layers and "mlp" in parts and model.layers:
        # fbgemm_fp8 keeps the MLP of the first and last layer in 16 bit.
        per_layer = (mlp or model.expert_params) / model.layers
        key = "mlp" if mlp else "experts"
        out[key] += per_layer * model.unquantized_mlp_layers * (BF16 - qb)
    return out


def weight_bytes(model: ModelSpec, dtype: str) -> tuple[float, float]:
    """(embedding bytes, body bytes) of the whole model in ``dtype``."""
    parts = weight_breakdown(model, dtype)
    emb = parts.pop("embeddings")
    return emb, sum(parts.values())


def per_gpu_weight_bytes(model: ModelSpec, dtype: str, tp: int, pp: int) -> float:
    """Weights on the most loaded GPU: everything split over TP; over PP stages, the heavier
    stage holds its share of the body plus one vocab x hidden matrix."""
    emb, body = weight_bytes(model, dtype)
    if pp == 1:
        return (emb + body) / tp
    return (body / pp + model.vocab_size * model.hidden_size * BF16) / tp


def window_tokens(model: ModelSpec, max_len: int) -> int:
    """Tokens a sliding-window layer keeps per sequence: the window rounded up to whole blocks,
    plus the block being written."""
    if not model.sliding_window:
        return max_len
    w = math.ceil(model.sliding_window / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS + KV_BLOCK_TOKENS
    return min(max_len, w)


def kv_layer_bytes_per_token(model: ModelSpec, kv_bytes: float, tp: int) -> float:
    """One layer's KV cache of one token on one GPU.

    GQA/MHA: K and V of the KV heads this GPU holds, ``ceil(kv_heads / TP)`` (one replicated
    head once TP exceeds them). MLA: the latent vector, ``kv_lora_rank + qk_rope_head_dim``
    values, held whole by every GPU.
    """
    if model.is_mla:
        return (model.kv_lora_rank + model.qk_rope_head_dim) * kv_bytes
    return 2 * math.ceil(model.kv_heads / tp) * model.head_dim * kv_bytes


def kv_bytes_per_token_per_gpu(model: ModelSpec, kv_bytes: float, tp: int, pp: int) -> float:
    """KV bytes per token of full context on one GPU (full-attention layers of one stage)."""
    return math.ceil(model.full_layers / pp) * kv_layer_bytes_per_token(model, kv_bytes, tp)


def kv_bytes_per_sequence_per_gpu(model: ModelSpec, kv_bytes: float, tp: int, pp: int, max_len: int) -> float:
    """KV bytes one ``max_len``-token sequence needs on one GPU: full-attention layers keep the
    whole sequence, sliding-window layers only their window."""
    layer = kv_layer_bytes_per_token(model, kv_bytes, tp)
    full = math.ceil(model.full_layers / pp) * max_len
    window = math.ceil(model.window_layers / pp) * window_tokens(model, max_len)
    return layer * (full + window)


__all__ = [
    "KV_BLOCK_TOKENS",
    "kv_bytes_per_sequence_per_gpu",
    "kv_bytes_per_token_per_gpu",
    "kv_layer_bytes_per_token",
    "per_gpu_weight_bytes",
    "quantized_bytes",
    "weight_breakdown",
    "weight_bytes",
    "window_tokens",
]
