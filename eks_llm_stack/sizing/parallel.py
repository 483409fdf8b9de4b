"""Which tensor- and pipeline-parallel sizes vLLM accepts for a model (vLLM 0.29.0's rules).

* Attention: TP divides ``num_attention_heads``. With grouped-query attention, TP divides
  ``num_key_value_heads`` or, when TP exceeds them, the KV heads divide TP (vLLM then
  replicates each KV head on TP / KV-heads GPUs: ``QKVParallelLinear``). MLA has one latent
  KV "head" that every GPU holds whole.
* MLP: column/row-parallel layers split ``intermediate_size`` by TP; block-quantized FP8
  (``weight_block_size`` [128, 128]) needs every per-GPU slice to be a whole number of blocks,
  and AWQ/GPTQ/int compressed-tensors need the row-parallel input slice to be a whole number
  of quantization groups.
* MoE: experts run tensor-parallel by default, so the same rules apply to
  ``moe_intermediate_size``; where they fail, ``--enable-expert-parallel`` places whole experts
  on each GPU instead (the experts must then divide evenly over the GPUs).
* Pipeline parallel splits the layers: PP <= ``num_hidden_layers``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..catalog import ModelSpec

#: Tensor-parallel sizes the engine considers (a node has 1, 2, 4 or 8 GPUs).
TP_SIZES: tuple[int, ...] = (1, 2, 4, 8)


@dataclass(frozen=True, kw_only=True)
class Parallelism:
    """Whether a TP size is valid, and whether it needs expert parallelism."""

    tp: int
    ok: bool
    expert_parallel: bool = False
    why: str = ""


def _slice_problem(width: int, tp: int, what: str, block: int, group: int) -> str | None:
    if width % tp:
        return f"{what} {width} is not divisible by TP {tp}"
    part = width // tp
    if block and part % block:
        return f"{what} {width} / TP {tp} = {part} is not a whole number of {block}-wide FP8 blocks"
    if group and group > 0 and part % group:
        return f"{what} {width} / TP {tp} = {part} is not a whole number of {group}-weight quantization groups"
    return None


def check_tp(model: ModelSpec, tp: int, dtype: str | None = None) -> Parallelism:
    """vLLM's divisibility rules for ``model`` at tensor-parallel size ``tp``."""
    if model.attention_heads % tp:
        return Parallelism(tp=tp, ok=False, why=f"{model.attention_heads} attention heads are not divisible by TP {tp}")
    if not model.is_mla:
        kv = model.kv_heads
        if tp <= kv and kv % tp:
            return Parallelism(tp=tp, ok=False, why=f"{kv} KV heads are not divisible by TP {tp}")
        if tp > kv and tp % kv:
            return Parallelism(
                tp=tp,
                ok=False,
                why=f"TP {tp} exceeds the {kv} KV heads and is not a multiple of them (vLLM replicates KV heads only "
                "in whole copies)",
            )
    native = dtype is None or dtype == model.native_dtype
    block = model.quant_block_size if native else 0
    group = model.quant_group_size if native and model.native_dtype in ("int4", "int8") else 0
    if not native and dtype in ("int4", "int8"):
        group = 128  # a checkpoint quantized for the request would use the common group size
    if model.native_dtype == "mxfp4" and native:
        block = group = 0  # vLLM pads MXFP4 expert widths itself
    if model.intermediate_size and (not model.is_moe or model.dense_layers):
        problem = _slice_problem(model.intermediate_size, tp, "intermediate_size", block, group)
        if problem:
            return Parallelism(tp=tp, ok=False, why=problem)
    if model.shared_expert_intermediate_size:
        problem = _slice_problem(model.shared_expert_intermediate_size, tp, "shared expert width", block, group)
        if problem:
            return Parallelism(tp=tp, ok=False, why=problem)
    if model.is_moe and tp > 1:
        problem = _slice_problem(model.moe_intermediate_size, tp, "moe_intermediate_size", block, group)
        if problem:
            if model.experts % tp:
                return Parallelism(
                    tp=tp,
                    ok=False,
                    why=f"{problem}, and {model.experts} experts do not divide over {tp} GPUs for expert parallel",
                )
            return Parallelism(tp=tp, ok=True, expert_parallel=True, why=f"{problem}: needs --enable-expert-parallel")
    return Parallelism(tp=tp, ok=True)


def valid_tp_sizes(model: ModelSpec, dtype: str | None = None, sizes: tuple[int, ...] = TP_SIZES) -> list[int]:
    """The TP sizes of ``sizes`` vLLM accepts for ``model`` (with expert parallel where needed)."""
    return [t for t in sizes if check_tp(model, t, dtype).ok]


def check_pp(model: ModelSpec, pp: int) -> str | None:
    if pp > model.layers:
        return f"PP {pp} exceeds the {model.layers} layers (each pipeline stage needs at least one)"
    return None


__all__ = ["TP_SIZES", "Parallelism", "check_pp", "check_tp", "valid_tp_sizes"]
