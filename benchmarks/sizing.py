#!/usr/bin/env python3
"""Sizing benchmark: `size` latency, and the share of right answers on the model matrix.

    .venv/bin/python benchmarks/sizing.py            # tests/data/models x 5 scenarios
    .venv/bin/python benchmarks/sizing.py --runs 50  # more latency samples

"Right" is judged by a second, independent implementation of the documented memory model
and of vLLM 0.29.0's divisibility rules written out again here (not the engine's helpers): an
answer is right when the engine's plan is valid and fits by that implementation and costs
what the cheapest valid, fitting catalog configuration costs, or when both refuse. It checks
the engine against its documented model and vLLM's rules, not against a GPU: calibrate the
overhead constants from vLLM's start-up log where a GPU is at hand.

Prints figures; asserts nothing (speed targets live here, not in the tests).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eks_llm_stack.catalog import INSTANCES, ModelSpec, load_config_json  # noqa: E402
from eks_llm_stack.errors import ConfigError  # noqa: E402
from eks_llm_stack.sizing import SizingRequest, size  # noqa: E402

GIB = 1024**3
SCENARIOS = ((4096, 1), (32768, 1), (4096, 64), (32768, 8), (131072, 1))


def _q(dtype: str, group: int, block: int) -> float:
    return {
        "bf16": 2.0,
        "fp16": 2.0,
        "fp8": 1.0 + (4 / block**2 if block else 0),
        "int8": 1.0 + 2.5 / (group or 128),
        "int4": 0.5 + 2.5 / (group or 128),
        "mxfp4": 4.25 / 8,
    }[dtype]


def weights(m: ModelSpec) -> float:
    h = m.hidden_size
    if m.is_mla:
        qk = m.qk_nope_head_dim + m.qk_rope_head_dim
        attn = (
            (h * m.q_lora_rank + m.q_lora_rank * m.attention_heads * qk)
            if m.q_lora_rank
            else h * m.attention_heads * qk
        )
        attn += h * (m.kv_lora_rank + m.qk_rope_head_dim) + m.kv_lora_rank * m.attention_heads * (
            m.qk_nope_head_dim + m.v_head_dim
        )
        attn += m.attention_heads * m.v_head_dim * h
    else:
        attn = 2 * h * m.attention_heads * m.head_dim + 2 * h * m.kv_heads * m.head_dim
    moe_layers = m.layers - m.dense_layers if m.is_moe else 0
    dense = (m.dense_layers if m.is_moe else m.layers) * 3 * h * m.intermediate_size
    experts = moe_layers * m.experts * 3 * h * m.moe_intermediate_size
    shared = moe_layers * 3 * h * m.shared_expert_intermediate_size
    router = moe_layers * h * m.experts
    emb = m.vocab_size * h * (1 if m.tie_word_embeddings else 2)
    q = _q(m.native_dtype, m.quant_group_size, m.quant_block_size)
    parts = set(m.quantized) or {"attention", "mlp", "experts", "shared_experts"}
    if m.native_dtype in ("bf16", "fp16"):
        parts = set()
    total = emb * 2 + router * 2
    total += attn * m.layers * (q if "attention" in parts else 2)
    total += dense * (q if "mlp" in parts else 2) + experts * (q if "experts" in parts else 2)
    total += shared * (q if "shared_experts" in parts else 2)
    if m.unquantized_mlp_layers:
        total += (dense or experts) / m.layers * m.unquantized_mlp_layers * (2 - q)
    return total


def valid_tp(m: ModelSpec, tp: int) -> tuple[bool, bool]:
    """(valid, needs expert parallel)."""
    if m.attention_heads % tp:
        return False, False
    if not m.is_mla and ((tp <= m.kv_heads and m.kv_heads % tp) or (tp > m.kv_heads and tp % m.kv_heads)):
        return False, False
    block = m.quant_block_size
    group = m.quant_group_size if m.native_dtype in ("int4", "int8") else 0
    if m.native_dtype == "mxfp4":
        block = group = 0

    def bad(width: int) -> bool:
        if width % tp:
            return True
        return bool((block and (width // tp) % block) or (group > 0 and (width // tp) % group))

    if m.intermediate_size and (not m.is_moe or m.dense_layers) and bad(m.intermediate_size):
        return False, False
    if m.shared_expert_intermediate_size and bad(m.shared_expert_intermediate_size):
        return False, False
    if m.is_moe and tp > 1 and bad(m.moe_intermediate_size):
        return (m.experts % tp == 0), True
    return True, False


def capable(m: ModelSpec, inst) -> bool:
    cc = inst.gpu.compute_capability_tuple
    if m.native_dtype == "fp8":
        return cc >= (8, 9)
    if m.native_dtype == "mxfp4" or m.is_mla:
        return cc >= (8, 0)
    if m.native_dtype in ("int4", "int8"):
        return cc >= (7, 5)
    return True


def fits(m: ModelSpec, inst, tp: int, pp: int, max_len: int, conc: int) -> bool:
    mem = inst.gpu.memory_gib
    util = min(0.9, math.floor((1 - 1.75 / mem) * 100) / 100)
    w = weights(m)
    emb = m.vocab_size * m.hidden_size * (1 if m.tie_word_embeddings else 2) * 2
    per_gpu = w / tp if pp == 1 else ((w - emb) / pp + m.vocab_size * m.hidden_size * 2) / tp
    mlp = max(m.experts_per_token * m.moe_intermediate_size if m.is_moe else 0, m.intermediate_size)
    mlp += m.shared_expert_intermediate_size
    act = 8192 * (4 * m.hidden_size + 2 * mlp / tp) * 2 + 256 * m.vocab_size / tp * 4
    per_layer = (
        (m.kv_lora_rank + m.qk_rope_head_dim) * 2 if m.is_mla else 2 * math.ceil(m.kv_heads / tp) * m.head_dim * 2
    )
    full = m.layers if not m.sliding_window or m.full_attention_layers is None else m.full_attention_layers
    win = min(max_len, (math.ceil(m.sliding_window / 16) + 1) * 16) if m.sliding_window else 0
    seq = per_layer * (math.ceil(full / pp) * max_len + math.ceil((m.layers - full) / pp) * win)
    inside = (0.5 * GIB if tp * pp > 1 else 0) + act
    if per_gpu + inside + conc * seq > mem * util * GIB:
        return False
    return w / pp / GIB + 4 <= inst.memory_gib and (pp == 1 or inst.efa_supported)


def cheapest(m: ModelSpec, max_len: int, conc: int) -> float | None:
    for multi in (False, True):
        best = None
        for inst in INSTANCES.values():
            if inst.on_demand_usd is None or not capable(m, inst):
                continue
            for tp in (1, 2, 4, 8):
                if tp > inst.gpu_count or not valid_tp(m, tp)[0]:
                    continue
                for pp in range(2, min(8, m.layers) + 1) if multi else (1,):
                    if multi and tp != inst.gpu_count:
                        continue
                    if fits(m, inst, tp, pp, max_len, conc):
                        price = inst.on_demand_usd * pp
                        best = price if best is None else min(best, price)
                        break
        if best is not None:
            return best
    return None


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    args = ap.parse_args()
    files = sorted(p for p in (ROOT / "tests/data/models").glob("*.json") if p.name != "expectations.json")
    right = total = 0
    wrong: list[str] = []
    for f in files:
        m = load_config_json(f)
        for max_len, conc in SCENARIOS:
            max_len = min(max_len, m.max_positions)
            total += 1
            expect = cheapest(m, max_len, conc)
            try:
                plan = size(SizingRequest(model=m, max_model_len=max_len, concurrency=conc))
            except ConfigError:
                ok = expect is None
            else:
                inst = INSTANCES[plan.instance_type]
                tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
                valid, ep = valid_tp(m, tp)
                ok = (
                    valid
                    and ep == plan.expert_parallel
                    and fits(m, inst, tp, pp, max_len, conc)
                    and expect is not None
                    and abs(plan.hourly_usd_per_replica - expect) < 1e-6
                )
            right += ok
            if not ok:
                wrong.append(f"{f.name} {max_len}x{conc}")
    print(f"right answers: {right}/{total} = {right / total:.1%} ({len(files)} models x {len(SCENARIOS)} scenarios)")
    for w in wrong:
        print(f"  wrong: {w}")

    timings = []
    for _ in range(args.runs):
        for name in ("llama-3.1-405b", "llama-3.1-8b"):
            t0 = time.perf_counter()
            size(SizingRequest(model=name))
            timings.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    load_config_json(files[0])
    parse_ms = (time.perf_counter() - t0) * 1000
    print(
        f"size() latency over {len(timings)} calls: median {statistics.median(timings):.1f} ms, "
        f"max {max(timings):.1f} ms; config.json parse {parse_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
