"""Published config.json files of current models (tests/data/models), vLLM's rules, and an
independent brute force over the catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eks_llm_stack.catalog import INSTANCES, ModelSpec, get_instance, load_config_json
from eks_llm_stack.cli import main
from eks_llm_stack.config.compute import GpuPoolConfig
from eks_llm_stack.config.data import FsxConfig
from eks_llm_stack.errors import ConfigError
from eks_llm_stack.sizing import SizingRequest, check_tp, gpu_pool_fragment, size, storage_fragment

DATA = Path(__file__).parent / "data" / "models"
EXPECT = json.loads((DATA / "expectations.json").read_text())["models"]
SERVE_ARGS = json.loads(
    (Path(__file__).parent.parent / "eks_llm_stack/third_party/vllm-0.29.0/serve-args.json").read_text()
)["arguments"]
GIB = 1024**3


def _model(name: str) -> ModelSpec:
    return load_config_json(DATA / name)


# ------------------------------------------------------------------ an independent model


def _ok_tp(m: ModelSpec, tp: int) -> bool:
    """vLLM's divisibility rules for a dense bf16 GQA model, written out again."""
    if m.attention_heads % tp:
        return False
    if tp <= m.kv_heads and m.kv_heads % tp:
        return False
    if tp > m.kv_heads and tp % m.kv_heads:
        return False
    return m.intermediate_size % tp == 0


def _fits(m: ModelSpec, inst, tp: int, max_len: int, concurrency: int) -> bool:
    mem = inst.gpu.memory_gib
    util = min(0.9, math.floor((1 - 1.75 / mem) * 100) / 100)
    emb = m.vocab_size * m.hidden_size * (1 if m.tie_word_embeddings else 2)
    weights = 2 * m.params / tp / GIB
    act = (8192 * (4 * m.hidden_size + 2 * m.intermediate_size / tp) * 2 + 256 * m.vocab_size / tp * 4) / GIB
    kv_seq = 2 * m.layers * math.ceil(m.kv_heads / tp) * m.head_dim * 2 * max_len / GIB
    inside = (0.5 if tp > 1 else 0.0) + act
    host = 2 * m.params / GIB + 4
    del emb
    return weights + inside + concurrency * kv_seq <= mem * util and host <= inst.memory_gib


def _brute_force(m: ModelSpec, max_len: int, concurrency: int) -> float | None:
    best = None
    for inst in INSTANCES.values():
        if inst.on_demand_usd is None:
            continue
        for tp in (1, 2, 4, 8):
            if tp <= inst.gpu_count and _ok_tp(m, tp) and _fits(m, inst, tp, max_len, concurrency):
                best = inst.on_demand_usd if best is None else min(best, inst.on_demand_usd)
    return best


@st.composite
def _architectures(draw):
    kv = draw(st.sampled_from([1, 2, 4, 8, 10, 12, 16, 20]))
    heads = kv * draw(st.sampled_from([1, 2, 3, 4, 5, 7, 8]))
    head_dim = draw(st.sampled_from([64, 96, 128]))
    hidden = heads * head_dim
    inter = draw(st.integers(min_value=hidden, max_value=4 * hidden)) // 16 * 16 + draw(st.sampled_from([0, 3, 8]))
    layers = draw(st.integers(min_value=4, max_value=48))
    vocab = draw(st.sampled_from([32000, 128256, 151936]))
    m = ModelSpec(
        name="random",
        hf_id="random",
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        vocab_size=vocab,
        max_positions=32768,
        intermediate_size=inter,
        params=0,
    )
    return ModelSpec(**{**m.__dict__, "params": m.estimated_params()})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(m=_architectures(), max_len=st.sampled_from([2048, 4096, 16384]), concurrency=st.integers(1, 16))
def test_random_architectures_get_a_valid_plan_that_is_the_cheapest_single_node(m, max_len, concurrency):
    cheapest = _brute_force(m, max_len, concurrency)
    try:
        plan = size(SizingRequest(model=m, max_model_len=max_len, concurrency=concurrency, dtype="bf16"))
    except ConfigError as err:
        assert cheapest is None, f"engine refused a model the brute force places at ${cheapest}/h: {err}"
        assert "fix:" in str(err)
        return
    tp = plan.tensor_parallel_size
    assert _ok_tp(m, tp)
    if plan.pipeline_parallel_size == 1:
        inst = get_instance(plan.instance_type)
        assert _fits(m, inst, tp, max_len, concurrency), "the plan does not fit the independent budget"
        assert cheapest is not None and plan.hourly_usd_per_replica == pytest.approx(cheapest)
    else:
        assert cheapest is None


# ------------------------------------------------------------------ published configs


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_published_config_valid_tp_sizes(name):
    m = _model(name)
    exp = EXPECT[name]
    assert [t for t in (1, 2, 4, 8) if check_tp(m, t).ok] == exp["valid_tp"]
    assert [t for t in (1, 2, 4, 8) if check_tp(m, t).expert_parallel] == exp["expert_parallel_tp"]
    assert exp["source"].startswith("https://huggingface.co/")


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_published_config_cheapest_instance_in_two_scenarios(name):
    m = _model(name)
    for sc in EXPECT[name]["scenarios"]:
        plan = size(SizingRequest(model=m, max_model_len=sc["max_model_len"], concurrency=sc["concurrency"]))
        assert (plan.instance_type, plan.tensor_parallel_size, plan.pipeline_parallel_size) == (
            sc["instance_type"],
            sc["tensor_parallel_size"],
            sc["pipeline_parallel_size"],
        )
        _assert_serve_args(plan.vllm_args)


def test_matrix_covers_every_kind():
    models = [_model(n) for n in EXPECT]
    assert len(models) >= 15
    assert any(m.is_mla for m in models) and any(m.is_moe for m in models)
    assert any(m.window_layers for m in models) and any(m.shared_expert_intermediate_size for m in models)
    assert {m.quant_method for m in models} >= {"fp8", "fbgemm_fp8", "awq", "mxfp4", "compressed-tensors", None}


def test_phi_4_at_tp_4_is_refused_for_its_ten_kv_heads():
    with pytest.raises(ConfigError, match=r"tensor_parallel_size: is invalid[\s\S]*10 KV heads[\s\S]*use one of 1, 2"):
        size(SizingRequest(model=str(DATA / "phi-4.json"), tensor_parallel_size=4, instance_type="g6e.12xlarge"))


def test_qwen3_moe_fp8_at_tp_4_runs_with_expert_parallel():
    m = _model("qwen3-30b-a3b-fp8.json")
    assert check_tp(m, 2).ok and not check_tp(m, 2).expert_parallel  # 768 / 2 = 384 = 3 blocks
    plan = size(SizingRequest(model=m, instance_type="g6e.12xlarge", tensor_parallel_size=4))
    assert "--enable-expert-parallel" in plan.vllm_args
    assert "--quantization" not in plan.vllm_args  # vLLM reads the checkpoint's fp8 config itself


def test_awq_checkpoint_gets_no_quantization_flag_and_group_size_rule():
    m = _model("qwen2.5-7b-instruct-awq.json")
    assert (m.native_dtype, m.quant_group_size) == ("int4", 128)
    plan = size(SizingRequest(model=m))
    assert "--quantization" not in plan.vllm_args
    assert not check_tp(m, 8).ok


def test_llama_405b_fbgemm_fp8_fits_one_h100_node():
    m = _model("llama-3.1-405b-instruct-fp8.json")
    assert m.quant_method == "fbgemm_fp8" and m.unquantized_mlp_layers == 2 and "attention" not in m.quantized
    plan = size(SizingRequest(model=m, instance_types=("p5",)))
    assert (plan.instance_type, plan.nodes) == ("p5.48xlarge", 1)
    assert 440 < plan.weights_gib < 470  # ~486 GB published checkpoint


def test_llama_70b_fp8_runs_on_one_h100_with_graphs_outside_the_budget():
    plan = size(SizingRequest(model="llama-3.1-70b", dtype="fp8", instance_types=("p5.4xlarge",)))
    assert plan.nodes == 1 and plan.memory.kv_cache_gib > 1
    assert plan.memory.headroom_gib >= plan.memory.outside_budget_gib


def test_gemma_3_27b_fits_one_p4d_node_thanks_to_its_sliding_window():
    m = _model("gemma-3-27b-it.json")
    assert (m.vocab_size, m.max_positions, m.full_layers) == (262208, 131072, 10)  # defaults filled
    plan = size(SizingRequest(model=m, instance_types=("p4d", "p4de"), max_model_len=32768, concurrency=8))
    assert (plan.instance_type, plan.nodes) == ("p4d.24xlarge", 1)


def test_deepseek_mla_kv_is_the_latent_vector_and_not_split_by_tp():
    m = _model("deepseek-v3.json")
    assert m.kv_bytes_per_token(2) == 61 * (512 + 64) * 2
    plan = size(SizingRequest(model=m, instance_types=("p5en",)))
    assert plan.memory.kv_bytes_per_token_gpu == 61 * 576 * 2


def test_shared_experts_are_counted():
    m = _model("qwen1.5-moe-a2.7b.json")
    assert m.params == pytest.approx(14.3e9, rel=0.02)


def _assert_serve_args(args):
    known = {o: a for a in SERVE_ARGS for o in a.get("options", [])}
    flags = [a for a in args if a.startswith("--")]
    for flag in flags:
        assert flag in known, f"{flag} is not a vllm serve argument"
        choices = known[flag].get("choices")
        if choices:
            assert args[args.index(flag) + 1] in choices
    get = lambda f: args[args.index(f) + 1]  # noqa: E731
    assert int(get("--max-num-seqs")) <= int(get("--max-num-batched-tokens"))
    assert 0 < float(get("--gpu-memory-utilization")) < 1


# ------------------------------------------------------------------ malformed config.json


def _write(tmp_path, cfg) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


@pytest.mark.parametrize(
    ("patch", "field", "fix"),
    [
        ({"num_hidden_layers": "32"}, "num_hidden_layers", "JSON integer"),
        ({"hidden_size": -4096}, "hidden_size", "correct"),
        ({"quantization_config": ["awq"]}, "quantization_config", "object"),
        ({"quantization_config": {"quant_method": "awq", "bits": "4"}}, "quantization_config.bits", "JSON integer"),
        ({"quantization_config": {"quant_method": "awq", "group_size": 0}}, "quantization_config.group_size", "128"),
        (
            {"quantization_config": {"quant_method": "fp8", "weight_block_size": [128]}},
            "weight_block_size",
            "[128, 128]",
        ),
        ({"quantization_config": {"quant_method": "bitsandbytes"}}, "quant_method", "fp8"),
        ({"num_key_value_heads": 7}, "num_key_value_heads", "multiple"),
        ({"layer_types": ["full_attention"]}, "layer_types", "one entry per layer"),
    ],
)
def test_malformed_config_is_a_clear_error(tmp_path, patch, field, fix):
    cfg = json.loads((DATA / "llama-3.1-8b-instruct.json").read_text())
    cfg.update(patch)
    with pytest.raises(ConfigError) as err:
        size(SizingRequest(model=str(_write(tmp_path, cfg))))
    text = str(err.value)
    assert field in text and fix in text and "fix:" in text


# ------------------------------------------------------------------ infrastructure, prices, calibration


def test_pool_fragment_loads_through_the_profile_model():
    plan = size(SizingRequest(model="llama-3.1-405b", instance_types=("p4d",)))
    assert plan.nodes > 1
    pool = gpu_pool_fragment(plan)
    props = GpuPoolConfig.model_validate(pool).to_props()
    assert props.efa and props.placement_group is not None and props.instance_types == ("p4d.24xlarge",)
    fsx = FsxConfig.model_validate(storage_fragment(plan)["fsx"])
    assert fsx.storage_capacity_gib >= plan.weights_gib


def test_emit_pool_prints_pasteable_yaml(capsys):
    assert main(["size", "llama-3.1-8b", "--emit-pool"]) == 0
    doc = yaml.safe_load(capsys.readouterr().out)
    GpuPoolConfig.model_validate(doc["compute"]["pools"][0])
    FsxConfig.model_validate(doc["storage"]["fsx"])


def test_capacity_block_prices_come_from_the_price_source(tmp_path, capsys):
    prices = tmp_path / "prices.yaml"
    prices.write_text("capacity: capacity-block\nregion: us-east-2\nprices:\n  p5e.48xlarge: 43.26\n")
    assert main(["size", "llama-3.1-405b", "--price-source", str(prices), "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert (plan["instance_type"], plan["hourly_usd"], plan["capacity"]) == ("p5e.48xlarge", 43.26, "capacity-block")
    # Without a price p5e is never chosen: the catalog has no on-demand figure for it.
    assert get_instance("p5e.48xlarge").on_demand_usd is None


def test_bad_price_file_names_the_entry(tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("g6.xlarge: cheap\n")
    assert main(["size", "llama-3.2-1b", "--price-source", str(prices)]) == 2


def test_throughput_from_a_bench_run_replaces_the_roofline(tmp_path, capsys):
    (tmp_path / "summary.json").write_text(
        json.dumps(
            {
                "target": {"model": "llama-2-7b"},
                "levels": [
                    {"concurrency": 1, "output_tokens_per_s": 40.0},
                    {"concurrency": 10, "output_tokens_per_s": 161.3},
                ],
            }
        )
    )
    plan = size(SizingRequest(model="llama-2-7b", instance_type="g5.2xlarge", throughput_from=tmp_path))
    est = plan.throughput_estimate
    assert est.measured and est.batch_tokens_per_s == 161.3
    assert est.usd_per_1m_tokens_at_bound == pytest.approx(1.212 / (161.3 * 3600) * 1e6)
    assert main(["cost", "--instance", "g5.2xlarge", "--throughput-from", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tokens_per_second"] == 161.3


def test_catalog_refresh_check_passes_and_catches_drift(tmp_path, capsys):
    assert main(["catalog", "refresh", "--check"]) == 0
    stale = tmp_path / "snap.json"
    stale.write_text(json.dumps({"instances": []}))
    assert main(["catalog", "refresh", "--check", "--out", str(stale)]) == 1


def test_every_row_names_its_source():
    for inst in INSTANCES.values():
        assert "Karpenter" in inst.hardware_source or "not in Karpenter" in inst.hardware_source
        assert "Karpenter" in inst.price_source or "Capacity Blocks" in inst.price_source
