"""The sizing engine: budgets that really fit, legal parallelism, the documented errors."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eks_llm_stack.catalog import INSTANCES, MODELS, get_instance, get_model
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.sizing import (
    CUDA_CONTEXT_GIB,
    CUDA_GRAPHS_GIB,
    DISTRIBUTED_GIB,
    HOST_RESERVE_GIB,
    SizingRequest,
    check_tp,
    size,
)

GIB = 1024**3


def _independent_budget(plan):
    """Recompute the plan's per-GPU memory from the catalog and the documented model, without the
    engine's helpers: (used inside the utilization budget, that budget, host GiB needed)."""
    m = get_model(plan.model)
    inst = get_instance(plan.instance_type)
    tp, pp = plan.tensor_parallel_size, plan.pipeline_parallel_size
    q = {"bf16": 2, "fp16": 2, "fp8": 1, "int8": 1 + 2.5 / 128, "int4": 0.5 + 2.5 / 128, "mxfp4": 4.25 / 8}[plan.dtype]
    emb_params = m.vocab_size * m.hidden_size * (1 if m.tie_word_embeddings else 2)
    router = m.layers * m.hidden_size * m.experts
    rest = m.params - emb_params - router  # every linear layer, norms and the rest
    if plan.dtype == "mxfp4":
        body = m.expert_params * q + (rest - m.expert_params) * 2 + router * 2
    else:
        arch = m.estimated_params() - emb_params - router
        body = arch * q + max(0, m.params - m.estimated_params()) * 2 + router * 2
    emb = emb_params * 2
    per_gpu_weights = (body + emb) / tp if pp == 1 else (body / pp + m.vocab_size * m.hidden_size * 2) / tp
    kv_b = 1 if plan.kv_cache_dtype == "fp8" else 2
    layer_tok = 2 * math.ceil(m.kv_heads / tp) * m.head_dim * kv_b
    full = m.full_attention_layers if m.sliding_window and m.full_attention_layers is not None else m.layers
    window = min(plan.max_model_len, (math.ceil(m.sliding_window / 16) + 1) * 16) if m.sliding_window else 0
    per_seq = layer_tok * (math.ceil(full / pp) * plan.max_model_len + math.ceil((m.layers - full) / pp) * window)
    kv_needed = plan.max_num_seqs * per_seq
    inside = DISTRIBUTED_GIB if tp * pp > 1 else 0
    used = per_gpu_weights / GIB + inside + plan.memory.activation_gib + kv_needed / GIB
    util = plan.gpu_memory_utilization
    assert 0 < util < 1
    # CUDA context and graphs live outside the utilization budget.
    assert inst.gpu_memory_gib * (1 - util) >= CUDA_CONTEXT_GIB + CUDA_GRAPHS_GIB - 1e-9
    return used, inst.gpu_memory_gib * util, (body + emb) / pp / GIB


_models = st.sampled_from(sorted(MODELS))
_dtypes = st.sampled_from([None, "bf16", "fp16", "fp8", "int8", "int4"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    model=_models,
    dtype=_dtypes,
    kv=st.sampled_from(["auto", "fp8"]),
    max_len=st.integers(min_value=1, max_value=140_000),
    concurrency=st.integers(min_value=1, max_value=512),
    capacity=st.sampled_from(["on-demand", "spot"]),
)
def test_any_request_fits_really_or_raises_the_documented_error(model, dtype, kv, max_len, concurrency, capacity):
    request = SizingRequest(
        model=model, dtype=dtype, kv_cache_dtype=kv, max_model_len=max_len, concurrency=concurrency, capacity=capacity
    )
    try:
        plan = size(request)
    except ConfigError as err:
        assert "fix:" in str(err)
        return
    m = get_model(model)
    inst = get_instance(plan.instance_type)
    assert check_tp(m, plan.tensor_parallel_size, plan.dtype).ok
    assert m.attention_heads % plan.tensor_parallel_size == 0
    assert plan.tensor_parallel_size <= inst.gpu_count
    assert plan.max_num_seqs >= concurrency
    used, budget, host_needed = _independent_budget(plan)
    assert used <= budget + 1e-6
    assert host_needed + HOST_RESERVE_GIB <= inst.memory_gib
    if plan.nodes > 1:
        assert inst.efa_supported and capacity != "spot" and plan.placement_group
    if plan.dtype == "fp8" or kv == "fp8":
        assert inst.gpu.fp8


@settings(max_examples=100, deadline=None)
@given(
    model=_models,
    inst=st.sampled_from(sorted(INSTANCES)),
    tp=st.sampled_from([1, 2, 4, 8]),
    concurrency=st.integers(min_value=1, max_value=64),
)
def test_explicit_choices_fit_or_raise(model, inst, tp, concurrency):
    try:
        plan = size(
            SizingRequest(
                model=model,
                instance_type=inst,
                tensor_parallel_size=tp,
                pipeline_parallel_size=1,
                concurrency=concurrency,
            )
        )
    except ConfigError as err:
        assert "fix:" in str(err)
        return
    used, budget, _ = _independent_budget(plan)
    assert used <= budget + 1e-6
    assert plan.max_num_seqs >= 1


def test_weights_of_llama_2_7b_in_bf16():
    plan = size(SizingRequest(model="llama-2-7b"))
    assert plan.weights_gib == pytest.approx(6_738_415_616 * 2 / GIB)


def test_kv_cache_per_token_of_llama_2_70b():
    plan = size(SizingRequest(model="llama-2-70b"))
    assert plan.memory.kv_bytes_per_token_model == 2 * 80 * 8 * 128 * 2


@pytest.mark.parametrize(
    ("model", "instance", "tp"),
    [
        ("llama-2-7b", "g5.2xlarge", 1),
        ("llama-2-13b", "g5.12xlarge", 4),
        ("llama-2-70b", "g5.48xlarge", 8),
        ("llama-2-70b", "p4d.24xlarge", 8),
    ],
)
def test_red_hat_tensor_parallel_degrees_are_valid_explicit_choices(model, instance, tp):
    plan = size(SizingRequest(model=model, instance_type=instance, tensor_parallel_size=tp, concurrency=10))
    assert (plan.instance_type, plan.tensor_parallel_size, plan.nodes) == (instance, tp, 1)


def test_explicit_choice_short_of_kv_lowers_max_num_seqs_and_says_by_how_much():
    plan = size(SizingRequest(model="llama-2-7b", instance_type="g5.2xlarge", tensor_parallel_size=1, concurrency=10))
    assert plan.max_num_seqs < 10
    assert "10 x 4096 = 40960 needed" in plan.warnings[0]
    assert "--max-num-seqs" in plan.vllm_args


def test_cheapest_configuration_wins():
    plan = size(SizingRequest(model="llama-3.1-8b"))
    fitting = [r for r in plan.runners_up if r.fits]
    assert fitting and all(r.hourly_usd >= plan.hourly_usd for r in fitting)


def test_model_too_big_for_one_node_goes_multi_node_on_efa():
    plan = size(SizingRequest(model="llama-3.1-405b", instance_types=("p4d",)))
    assert plan.nodes > 1 and plan.placement_group
    assert plan.pipeline_parallel_size == plan.nodes


def test_spot_refuses_multi_node_and_says_to_use_on_demand():
    with pytest.raises(ConfigError, match=r"model: llama-3.1-405b[\s\S]*fix:[\s\S]*--capacity on-demand"):
        size(SizingRequest(model="llama-3.1-405b", instance_types=("p4d",), capacity="spot"))


def test_fp8_on_a10g_is_refused_with_fp8_capable_types():
    with pytest.raises(
        ConfigError, match=r"dtype: fp8 needs FP8 tensor cores[\s\S]*fix: use an FP8-capable type \(g6, g6e"
    ):
        size(SizingRequest(model="llama-3.1-8b", dtype="fp8", instance_type="g5.2xlarge"))


def test_max_model_len_above_the_model_limit_is_refused():
    with pytest.raises(
        ConfigError, match=r"max_model_len: exceeds llama-2-7b's limit of 4096[\s\S]*--max-model-len 4096"
    ):
        size(SizingRequest(model="llama-2-7b", max_model_len=8192))


def test_impossible_concurrency_names_the_largest_that_fits():
    with pytest.raises(ConfigError, match=r"concurrency: [\s\S]*largest concurrency that fits is \d+"):
        size(SizingRequest(model="llama-3.1-70b", max_model_len=131072, concurrency=100_000))


def test_tensor_parallel_size_must_divide_the_heads():
    with pytest.raises(
        ConfigError,
        match=r"tensor_parallel_size: is invalid for qwen2.5-7b: 28 attention heads are not divisible by TP 8"
        r"[\s\S]*use one of 1, 2, 4",
    ):
        size(SizingRequest(model="qwen2.5-7b", tensor_parallel_size=8))


def test_bad_numbers_are_reported_together():
    with pytest.raises(
        ConfigError, match=r"3 problems[\s\S]*max_model_len[\s\S]*concurrency[\s\S]*gpu_memory_utilization"
    ):
        SizingRequest(model="llama-2-7b", max_model_len=0, concurrency=-1, gpu_memory_utilization=1.5)


def test_prequantized_model_refuses_another_dtype():
    with pytest.raises(ConfigError, match=r"dtype: gpt-oss-20b ships pre-quantized mxfp4 weights"):
        size(SizingRequest(model="gpt-oss-20b", dtype="bf16"))


def test_moe_counts_every_expert_for_memory():
    m = get_model("mixtral-8x7b")
    plan = size(SizingRequest(model="mixtral-8x7b"))
    assert plan.weights_gib == pytest.approx(m.params * 2 / GIB)
    assert m.active_params < m.params / 3


def test_vllm_args_carry_the_plan():
    plan = size(SizingRequest(model="llama-3.1-8b", dtype="fp8", kv_cache_dtype="fp8", max_model_len=8192))
    args = plan.vllm_args
    pairs = dict(zip(args[::2], args[1::2], strict=True))
    assert pairs["--tensor-parallel-size"] == str(plan.tensor_parallel_size)
    assert pairs["--max-model-len"] == "8192"
    assert pairs["--quantization"] == "fp8"
    assert pairs["--kv-cache-dtype"] == "fp8"


def test_throughput_estimate_is_labelled_an_upper_bound():
    plan = size(SizingRequest(model="llama-2-7b"))
    assert "UPPER BOUND" in plan.throughput_estimate.basis
    assert plan.throughput_estimate.single_stream_tokens_per_s > 0


def test_json_has_the_documented_keys():
    import json

    data = json.loads(size(SizingRequest(model="llama-2-13b")).to_json())
    for key in (
        "instance_type",
        "tensor_parallel_size",
        "pipeline_parallel_size",
        "nodes",
        "weights_gib",
        "kv_cache_gib",
        "hourly_usd",
        "vllm_args",
    ):
        assert key in data
    assert isinstance(data["vllm_args"], list)
