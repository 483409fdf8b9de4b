"""The instance and model catalogs: complete, internally consistent, and helpful when asked wrong."""

from __future__ import annotations

import json
import re

import pytest

from eks_llm_stack.catalog import FAMILIES, GPUS, INSTANCES, MODELS, get_instance, get_model, load_config_json
from eks_llm_stack.errors import ConfigError

_SIZES = {
    "g4dn": {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge"},
    "g5": {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"},
    "g6": {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"},
    "g6f": {"large", "xlarge", "2xlarge", "4xlarge"},
    "g6e": {"xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "48xlarge"},
    "g7e": {"2xlarge", "4xlarge", "8xlarge", "12xlarge", "24xlarge", "48xlarge"},
    "p4d": {"24xlarge"},
    "p4de": {"24xlarge"},
    "p5": {"4xlarge", "48xlarge"},
    "p5e": {"48xlarge"},
    "p5en": {"48xlarge"},
    "p6-b200": {"48xlarge"},
    "p6-b300": {"48xlarge"},
}


def test_every_size_of_every_family_is_listed():
    listed = {(i.family, i.name.split(".")[1]) for i in INSTANCES.values()}
    expected = {(f, s) for f, sizes in _SIZES.items() for s in sizes}
    assert listed == expected
    assert set(FAMILIES) == set(_SIZES)


@pytest.mark.parametrize("inst", INSTANCES.values(), ids=lambda i: i.name)
def test_instance_is_internally_consistent(inst):
    assert inst.name.startswith(inst.family + ".")
    assert inst.generation == int(inst.family[1])
    assert inst.hardware_source
    assert inst.gpu_memory_gib == inst.gpu.memory_gib
    assert inst.total_gpu_memory_gib == pytest.approx(inst.gpu_memory_gib * inst.gpu_count)
    assert inst.gpu_count in (1, 2, 4, 8)
    # EC2 ties vCPUs and memory to the size: 4 vCPUs per "xlarge" unit.
    size = inst.name.split(".")[1]
    units = 0.5 if size == "large" else 1 if size == "xlarge" else int(size.removesuffix("xlarge"))
    assert inst.vcpus == 4 * units
    assert inst.efa_supported == (inst.max_efa_interfaces > 0)
    assert inst.max_efa_interfaces <= inst.network_cards or not inst.efa_supported
    assert (inst.on_demand_usd is None) == inst.capacity_blocks_only
    assert inst.on_demand_usd is None or inst.on_demand_usd > 0
    assert inst.price_source and re.fullmatch(r"\d{4}-\d{2}", inst.price_date)
    # Host memory is at least the GPU memory on every GPU type (AWS sizes them that way).
    assert inst.memory_gib >= inst.gpu_count * min(16, inst.gpu.memory_gib)


@pytest.mark.parametrize("family", ["g5", "g6", "g6e"])
def test_price_grows_with_gpus_and_vcpus_within_a_family(family):
    sizes = sorted((i for i in INSTANCES.values() if i.family == family), key=lambda i: (i.gpu_count, i.vcpus))
    prices = [i.on_demand_usd for i in sizes]
    assert prices == sorted(prices)


def test_multi_card_types_have_one_efa_interface_per_card():
    for name in ("p4d.24xlarge", "p5.48xlarge", "p5en.48xlarge", "g6e.48xlarge"):
        inst = get_instance(name)
        assert inst.network_cards > 1
        assert inst.max_efa_interfaces == inst.network_cards


def test_fp8_support_follows_compute_capability():
    for gpu in GPUS.values():
        assert gpu.fp8 == (gpu.compute_capability_tuple >= (8, 9)), gpu.sku


def test_get_instance_suggests_close_names():
    with pytest.raises(
        ConfigError, match=r"instance_type: is not in the GPU instance catalog[\s\S]*did you mean 'g5.12xlarge'"
    ):
        get_instance("g5.12xlarg")


def test_catalog_holds_at_least_twenty_models_across_sizes():
    assert len(MODELS) >= 20
    sizes = sorted(m.params for m in MODELS.values())
    assert sizes[0] < 2e9 and sizes[-1] > 300e9


@pytest.mark.parametrize("model", MODELS.values(), ids=lambda m: m.name)
def test_published_params_match_the_architecture(model):
    # The parameter count recomputed from layers, widths and vocab agrees with the published
    # one; gemma-3's published count includes a 0.4B vision tower, hence the 2 % tolerance.
    assert model.estimated_params() == pytest.approx(model.params, rel=0.02)


@pytest.mark.parametrize("model", MODELS.values(), ids=lambda m: m.name)
def test_model_heads_are_consistent(model):
    assert model.attention_heads % model.kv_heads == 0
    assert model.source.startswith("https://huggingface.co/")
    assert model.is_moe == (model.experts > 0) == (model.experts_per_token > 0)
    assert model.active_params <= model.params


def test_get_model_accepts_hf_id_case_insensitively():
    assert get_model("META-LLAMA/Llama-3.1-70B-Instruct").name == "llama-3.1-70b"


def test_get_model_suggests_close_names():
    with pytest.raises(ConfigError, match=r"model: is not in the model catalog[\s\S]*did you mean 'llama-2-7b'"):
        get_model("llama2-7b")


def _write(tmp_path, cfg):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


_LLAMA2_7B = {
    "_name_or_path": "meta-llama/Llama-2-7b-hf",
    "num_hidden_layers": 32,
    "hidden_size": 4096,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 32000,
    "max_position_embeddings": 4096,
    "intermediate_size": 11008,
    "tie_word_embeddings": False,
}


def test_config_json_parses_to_the_catalog_numbers(tmp_path):
    spec = load_config_json(_write(tmp_path, _LLAMA2_7B))
    cat = get_model("llama-2-7b")
    assert (spec.layers, spec.kv_heads, spec.head_dim, spec.vocab_size) == (32, 32, 128, 32000)
    assert spec.params == pytest.approx(cat.params, rel=1e-3)


def test_config_json_reads_quantization_config(tmp_path):
    cfg = {**_LLAMA2_7B, "quantization_config": {"quant_method": "awq", "bits": 4}}
    spec = load_config_json(_write(tmp_path, cfg))
    assert (spec.native_dtype, spec.quant_method) == ("int4", "awq")


def test_config_json_reads_text_config_of_multimodal_checkpoints(tmp_path):
    inner = {k: v for k, v in _LLAMA2_7B.items() if k != "_name_or_path"}
    spec = load_config_json(_write(tmp_path, {"_name_or_path": "x/vl", "text_config": inner}))
    assert spec.layers == 32


def test_config_json_missing_fields_are_listed_together(tmp_path):
    cfg = {k: v for k, v in _LLAMA2_7B.items() if k not in ("num_hidden_layers", "vocab_size")}
    with pytest.raises(
        ConfigError, match=r"2 problems[\s\S]*num_hidden_layers: is missing[\s\S]*vocab_size: is missing"
    ) as err:
        load_config_json(_write(tmp_path, cfg))
    assert 'add "num_hidden_layers"' in str(err.value)


def test_config_json_that_is_not_json_says_so(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"is not readable JSON[\s\S]*fix: download the model's config.json again"):
        load_config_json(path)
