"""Hugging Face ``config.json`` parsing: a published checkpoint's config into a :class:`ModelSpec`.

Reads what transformers reads: a multimodal checkpoint's nested ``text_config`` (or
``llm_config``), and for every field the checkpoint omits, the default transformers fills
for its ``model_type`` (Gemma 3's ``text_config`` states neither ``vocab_size`` nor
``max_position_embeddings``). Every malformed field is reported with its name and a fix, all
at once, as a :class:`ConfigError`; nothing here raises anything else.

What it derives for the sizing engine:

* attention: GQA/MHA/MQA (``num_key_value_heads``) or MLA (``kv_lora_rank``,
  ``qk_rope_head_dim``); which layers keep the whole context when a sliding window is set
  (``layer_types``, Gemma 2's alternation, Gemma 3's ``sliding_window_pattern``, Mistral's
  all-sliding layers; Qwen's ``use_sliding_window: false`` disables it);
* MoE: routed experts, experts per token, shared experts (``shared_expert_intermediate_size``,
  ``n_shared_experts``), leading dense layers (``first_k_dense_replace``);
* quantization: ``fp8`` (with ``weight_block_size``), ``fbgemm_fp8`` (``modules_to_not_convert``),
  ``compressed-tensors`` (``config_groups``), ``awq``/``gptq`` (bits, ``group_size``), ``mxfp4``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problem, Problems
from .models import ModelSpec

#: transformers' defaults for the fields the sizing engine reads, per ``model_type``
#: (``Gemma3TextConfig``, ``Gemma2Config``, ``MistralConfig`` ... ``__init__`` defaults).
DEFAULTS: dict[str, dict[str, Any]] = {
    "llama": {"vocab_size": 32000, "max_position_embeddings": 2048, "tie_word_embeddings": False},
    "mistral": {"vocab_size": 32000, "max_position_embeddings": 4096 * 32, "sliding_window": 4096},
    "mixtral": {"vocab_size": 32000, "max_position_embeddings": 4096 * 32, "sliding_window": None},
    "qwen2": {"vocab_size": 151936, "max_position_embeddings": 32768, "use_sliding_window": False},
    "qwen3": {"vocab_size": 151936, "max_position_embeddings": 32768, "use_sliding_window": False},
    "qwen2_moe": {"vocab_size": 151936, "max_position_embeddings": 32768, "use_sliding_window": False},
    "qwen3_moe": {"vocab_size": 151936, "max_position_embeddings": 32768, "use_sliding_window": False},
    "gemma2": {
        "vocab_size": 256000,
        "max_position_embeddings": 8192,
        "head_dim": 256,
        "sliding_window": 4096,
        "tie_word_embeddings": True,
    },
    "gemma3_text": {
        "vocab_size": 262208,
        "max_position_embeddings": 131072,
        "head_dim": 256,
        "sliding_window": 4096,
        "sliding_window_pattern": 6,
        "tie_word_embeddings": True,
    },
    "phi3": {"vocab_size": 32064, "max_position_embeddings": 4096},
    "deepseek_v3": {
        "vocab_size": 129280,
        "max_position_embeddings": 4096,
        "first_k_dense_replace": 3,
        "n_shared_experts": 1,
        "qk_rope_head_dim": 64,
        "qk_nope_head_dim": 128,
        "v_head_dim": 128,
    },
    "gpt_oss": {"vocab_size": 201088, "max_position_embeddings": 131072, "sliding_window": 128},
}
DEFAULTS["gemma3"] = DEFAULTS["gemma3_text"]
DEFAULTS["deepseek_v2"] = DEFAULTS["deepseek_v3"]

_REQUIRED = {
    "num_hidden_layers": "number of transformer layers",
    "hidden_size": "model width",
    "num_attention_heads": "attention heads",
    "vocab_size": "vocabulary size",
    "max_position_embeddings": "longest context the model supports",
}


def _problem(field: str, message: str, fix: str, value: Any = None) -> Problem:
    return Problem(field, message, fix) if value is None else Problem(field, message, fix, value)


def _read(path: Path, subject: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            subject, [_problem("model", "file not found", "give the path to an existing config.json", str(path))]
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(
            subject, [_problem("model", f"is not readable JSON ({exc})", "download the model's config.json again")]
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(subject, [_problem("model", "is not a JSON object", "give the model's config.json")])
    return raw


class _Fields:
    """Typed reads of config fields that record a problem (never raise) on a bad value."""

    def __init__(self, cfg: dict[str, Any], p: Problems, prefix: str = "") -> None:
        self.cfg, self.p, self.prefix = cfg, p, prefix

    def int(self, key: str, default: int | None = None, *, minimum: int = 1, required: bool = False) -> int | None:
        value = self.cfg.get(key)
        if value is None:
            if required and default is None:
                self.p.add(
                    self.prefix + key,
                    f"is missing ({_REQUIRED.get(key, 'needed for sizing')})",
                    f'add "{key}" to the config.json (see the model card)',
                )
            return default
        if isinstance(value, float) and value.is_integer() and math.isfinite(value):
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            self.p.add(
                self.prefix + key, "must be a whole number", f'write "{key}" as a JSON integer, e.g. 4096', value
            )
            return None
        if value < minimum:
            self.p.add(
                self.prefix + key,
                f"must be >= {minimum}",
                f'correct "{key}" in the config.json (see the model card)',
                value,
            )
            return None
        return value


def _text_config(raw: dict[str, Any], p: Problems) -> tuple[dict[str, Any], str]:
    for key in ("text_config", "llm_config"):
        nested = raw.get(key)
        if nested is None:
            continue
        if not isinstance(nested, dict):
            p.add(key, "must be a JSON object", f'give "{key}" as the language model\'s config object', nested)
            return dict(raw), ""
        # The nested config wins; top-level keys fill what it omits (as transformers does for
        # quantization_config, tie_word_embeddings and the dtype).
        return {**raw, **nested}, f"{key}."
    return dict(raw), ""


def _with_defaults(cfg: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    model_type = str(cfg.get("model_type") or "")
    filled: list[str] = []
    for key, value in DEFAULTS.get(model_type, {}).items():
        if key not in cfg:
            cfg[key] = value
            if value is not None:
                filled.append(key)
    return cfg, filled


def _full_attention_layers(cfg: dict[str, Any], layers: int, f: _Fields, p: Problems) -> tuple[int, int | None]:
    """(sliding window, full-attention layers) — (0, None) when every layer keeps the context."""
    model_type = str(cfg.get("model_type") or "")
    if cfg.get("use_sliding_window") is False:
        return 0, None
    window = f.int("sliding_window", minimum=1)
    types = cfg.get("layer_types")
    if types is not None:
        if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
            p.add(
                "layer_types", "must be a list of strings", 'give one "full_attention" / "sliding_attention" per layer'
            )
            return 0, None
        if len(types) != layers:
            p.add(
                "layer_types",
                f"lists {len(types)} layers, num_hidden_layers says {layers}",
                "give one entry per layer",
                len(types),
            )
            return 0, None
        full = sum(1 for t in types if t != "sliding_attention")
        return (window or 0, full) if window and full < layers else (0, None)
    if not window:
        return 0, None
    if model_type == "gemma2":
        return window, layers // 2
    if model_type in ("gemma3", "gemma3_text"):
        pattern = f.int("sliding_window_pattern", 6) or 6
        return window, layers // pattern
    if model_type in ("mistral", "mixtral"):
        return window, 0
    # A sliding window without a layer schedule we know: size every layer as full attention
    # (over-, never under-estimates).
    return 0, None


def _quantization(cfg: dict[str, Any], p: Problems) -> dict[str, Any]:
    qcfg = cfg.get("quantization_config")
    if qcfg is None:
        return {}
    if not isinstance(qcfg, dict):
        p.add("quantization_config", "must be a JSON object", "give the checkpoint's quantization_config object", qcfg)
        return {}
    method = qcfg.get("quant_method")
    if not isinstance(method, str):
        p.add(
            "quantization_config.quant_method",
            "is missing or not a string",
            'give the method, e.g. "fp8", "awq", "gptq", "compressed-tensors", "fbgemm_fp8" or "mxfp4"',
            method,
        )
        return {}
    method = method.lower()
    q = _Fields(qcfg, p, "quantization_config.")
    not_converted = qcfg.get("modules_to_not_convert") or qcfg.get("ignored_layers") or qcfg.get("ignore") or []
    if not isinstance(not_converted, list):
        p.add(
            "quantization_config.modules_to_not_convert",
            "must be a list of module names",
            "give a JSON list of module names (or leave it out)",
            not_converted,
        )
        not_converted = []
    names = [str(n) for n in not_converted]
    attn_skipped = any(re.search(r"self_attn|\.attn\b|attention", n) for n in names)
    mlp_layers_skipped = {m.group(1) for n in names if (m := re.search(r"layers\.(\d+)\.mlp", n))}

    if method == "fp8":
        block = qcfg.get("weight_block_size")
        edge = 0
        if block is not None:
            if (
                not isinstance(block, list)
                or len(block) != 2
                or not all(isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in block)
            ):
                p.add(
                    "quantization_config.weight_block_size",
                    "must be a list of two positive integers",
                    "give the block shape, e.g. [128, 128]",
                    block,
                )
            else:
                edge = max(block)
        return {"native_dtype": "fp8", "quant_method": "fp8", "quant_block_size": edge}
    if method == "fbgemm_fp8":
        parts = ("mlp", "experts", "shared_experts") if attn_skipped else ()
        return {
            "native_dtype": "fp8",
            "quant_method": "fbgemm_fp8",
            "quantized": parts,
            "unquantized_mlp_layers": len(mlp_layers_skipped),
        }
    if method == "mxfp4":
        return {"native_dtype": "mxfp4", "quant_method": "mxfp4", "quantized": ("experts",)}
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        bits_key = "w_bit" if "w_bit" in qcfg and "bits" not in qcfg else "bits"
        bits = q.int(bits_key, 4)
        group = qcfg.get("group_size", qcfg.get("q_group_size", 128))
        if not isinstance(group, int) or isinstance(group, bool) or (group < 1 and group != -1):
            p.add(
                "quantization_config.group_size",
                "must be a positive integer or -1 (per channel)",
                "give the group size the checkpoint was quantized with, e.g. 128",
                group,
            )
            group = 128
        if bits not in (4, 8, None):
            p.add(
                f"quantization_config.{bits_key}",
                "is not modelled (4 or 8 bit AWQ/GPTQ only)",
                "use a 4- or 8-bit checkpoint",
                bits,
            )
        return {
            "native_dtype": "int8" if bits == 8 else "int4",
            "quant_method": method.replace("_marlin", ""),
            "quant_group_size": group,
        }
    if method == "compressed-tensors":
        groups = qcfg.get("config_groups")
        if not isinstance(groups, dict) or not groups:
            p.add(
                "quantization_config.config_groups",
                "is missing or not an object",
                "give the compressed-tensors config_groups of the checkpoint",
                groups,
            )
            return {}
        for gname, group in groups.items():
            weights = (group or {}).get("weights") if isinstance(group, dict) else None
            if not isinstance(weights, dict):
                p.add(
                    f"quantization_config.config_groups.{gname}.weights",
                    "is missing or not an object",
                    "give the weights' num_bits and type",
                )
                continue
            w = _Fields(weights, p, f"quantization_config.config_groups.{gname}.weights.")
            bits = w.int("num_bits")
            kind = weights.get("type", "int")
            block = weights.get("block_structure")
            edge = max(block) if isinstance(block, list) and block and all(isinstance(b, int) for b in block) else 0
            if bits == 8:
                return {
                    "native_dtype": "fp8" if kind == "float" else "int8",
                    "quant_method": "compressed-tensors",
                    "quant_block_size": edge,
                }
            if bits == 4 and kind == "int":
                gs = weights.get("group_size")
                return {
                    "native_dtype": "int4",
                    "quant_method": "compressed-tensors",
                    "quant_group_size": gs if isinstance(gs, int) and not isinstance(gs, bool) else 0,
                }
            if bits is not None:
                p.add(
                    f"quantization_config.config_groups.{gname}.weights",
                    f"{bits}-bit {kind} weights are not modelled by the sizing engine",
                    "use an 8-bit (fp8/int8) or 4-bit int compressed-tensors checkpoint",
                    f"{bits}-bit {kind}",
                )
        return {}
    p.add(
        "quantization_config.quant_method",
        "is not modelled by the sizing engine",
        "use a bf16/fp16 checkpoint, or an fp8, fbgemm_fp8, AWQ/GPTQ (4 or 8 bit), compressed-tensors or mxfp4 one",
        method,
    )
    return {}


def parse_config(raw: dict[str, Any], *, name: str, source: str, subject: str | None = None) -> ModelSpec:
    """A :class:`ModelSpec` from a parsed ``config.json`` object."""
    p = Problems(subject or f"config.json {source}")
    cfg, _prefix = _text_config(raw, p)
    cfg, _filled = _with_defaults(cfg)
    f = _Fields(cfg, p)
    layers = f.int("num_hidden_layers", required=True)
    hidden = f.int("hidden_size", required=True)
    heads = f.int("num_attention_heads", required=True)
    vocab = f.int("vocab_size", required=True)
    max_pos = f.int("max_position_embeddings", required=True)
    kv_heads = f.int("num_key_value_heads", heads)
    head_dim = f.int("head_dim")
    experts = f.int("num_local_experts") or f.int("num_experts") or f.int("n_routed_experts") or 0
    per_token = f.int("num_experts_per_tok") or f.int("experts_per_token") or 0
    inter = f.int("intermediate_size")
    moe_inter = f.int("moe_intermediate_size")
    mla = cfg.get("kv_lora_rank") is not None
    kv_lora = f.int("kv_lora_rank") if mla else None
    rope = f.int("qk_rope_head_dim") if mla else None
    nope = f.int("qk_nope_head_dim") if mla else None
    v_dim = f.int("v_head_dim") if mla else None
    q_lora = f.int("q_lora_rank") if mla and cfg.get("q_lora_rank") is not None else None
    shared_inter = f.int("shared_expert_intermediate_size", minimum=0) or 0
    n_shared = f.int("n_shared_experts", minimum=0) or 0
    dense = f.int("first_k_dense_replace", minimum=0) or 0 if experts else 0
    if experts:
        if per_token == 0:
            p.add("num_experts_per_tok", "is missing (experts per token)", 'add "num_experts_per_tok"')
        if moe_inter is None and inter is None:
            p.add(
                "moe_intermediate_size",
                "is missing (width of one expert)",
                'add "moe_intermediate_size" (or "intermediate_size")',
            )
        if per_token and per_token > experts:
            p.add(
                "num_experts_per_tok",
                f"exceeds the {experts} experts",
                "correct num_experts_per_tok or the expert count",
                per_token,
            )
    elif inter is None and not mla:
        p.add("intermediate_size", "is missing (MLP width)", 'add "intermediate_size" to the config.json')
    if mla and (kv_lora is None or rope is None):
        p.add(
            "kv_lora_rank / qk_rope_head_dim",
            "multi-head latent attention needs both (KV per token is their sum)",
            "add kv_lora_rank and qk_rope_head_dim from the model card",
        )
    quant = _quantization(cfg, p)
    window, full = (0, None) if layers is None else _full_attention_layers(cfg, layers, f, p)
    if heads and kv_heads and heads % kv_heads and not mla:
        p.add(
            "num_key_value_heads",
            f"does not divide num_attention_heads ({heads})",
            "check the config.json: grouped-query attention needs heads to be a multiple of KV heads",
            kv_heads,
        )
    if hidden and heads and head_dim is None and hidden % heads and not mla:
        p.add(
            "head_dim",
            f"is missing and hidden_size {hidden} is not a multiple of {heads} heads",
            'add "head_dim" to the config.json',
        )
    tie = raw.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False))
    if not isinstance(tie, bool):
        p.add("tie_word_embeddings", "must be true or false", "write it as a JSON boolean", tie)
    p.raise_if_any()
    assert layers and hidden and heads and vocab and max_pos and kv_heads  # checked above
    native = quant.get("native_dtype", "bf16")
    dtype_name = str(cfg.get("torch_dtype") or cfg.get("dtype") or "").lower()
    if native == "bf16" and dtype_name == "float16":
        native = "fp16"
    spec = ModelSpec(
        name=name,
        hf_id=name,
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=1 if mla else kv_heads,
        head_dim=head_dim or (v_dim or 0 if mla else hidden // heads),
        vocab_size=vocab,
        max_positions=max_pos,
        intermediate_size=(inter or 0) if (not experts or dense) else 0,
        params=0,
        experts=experts,
        experts_per_token=per_token,
        moe_intermediate_size=(moe_inter or inter or 0) if experts else 0,
        shared_expert_intermediate_size=shared_inter or n_shared * (moe_inter or 0),
        dense_layers=dense,
        tie_word_embeddings=bool(tie),
        native_dtype=native,
        quant_method=quant.get("quant_method"),
        quant_group_size=int(quant.get("quant_group_size", 0)),
        quant_block_size=int(quant.get("quant_block_size", 0)),
        quantized=tuple(quant.get("quantized", ())),
        unquantized_mlp_layers=int(quant.get("unquantized_mlp_layers", 0)),
        attention="mla" if mla else "gqa",
        kv_lora_rank=kv_lora or 0,
        qk_rope_head_dim=rope or 0,
        qk_nope_head_dim=nope or 0,
        v_head_dim=v_dim or 0,
        q_lora_rank=q_lora or 0,
        sliding_window=window,
        full_attention_layers=full,
        source=source,
    )
    return replace(spec, params=spec.estimated_params())


def load_config_json(path: str | Path) -> ModelSpec:
    """Parse a Hugging Face ``config.json`` offline into a :class:`ModelSpec`.

    The parameter count is recomputed from the architecture (``config.json`` does not state
    it); a vision tower is not counted.
    """
    path = Path(path).expanduser()
    subject = f"config.json {path}"
    raw = _read(path, subject)
    name = str(raw.get("_name_or_path") or path.parent.name or path.stem)
    return parse_config(raw, name=name, source=str(path), subject=subject)


__all__ = ["DEFAULTS", "load_config_json", "parse_config"]
