"""Hugging Face ``config.json`` parsing: a published checkpoint's config into a :class:`ModelSpec`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problems
from .models import ModelSpec

_REQUIRED = {
    "num_hidden_layers": "number of transformer layers",
    "hidden_size": "model width",
    "num_attention_heads": "attention heads",
    "vocab_size": "vocabulary size",
    "max_position_embeddings": "longest context the model supports",
}


def _first(cfg: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    return default


def _native_dtype(qcfg: dict[str, Any] | None, p: Problems) -> tuple[str, str | None]:
    if not qcfg:
        return "bf16", None
    method = str(qcfg.get("quant_method", "")).lower()
    if method == "fp8":
        return "fp8", "fp8"
    if method == "mxfp4":
        return "mxfp4", "mxfp4"
    if method in ("awq", "gptq", "awq_marlin", "gptq_marlin"):
        bits = int(qcfg.get("bits", qcfg.get("w_bit", 4)))
        if bits in (4, 8):
            return ("int4" if bits == 4 else "int8"), method
    if method == "compressed-tensors":
        for group in (qcfg.get("config_groups") or {}).values():
            weights = (group or {}).get("weights") or {}
            num_bits, kind = weights.get("num_bits"), str(weights.get("type", "int"))
            if num_bits == 8:
                return ("fp8" if kind == "float" else "int8"), method
            if num_bits == 4 and kind == "int":
                return "int4", method
    p.add(
        "quantization_config",
        f"quantization method {method or '(none)'!r} with these settings is not modelled by the sizing engine",
        "use a bf16/fp16 checkpoint, or an fp8, AWQ/GPTQ (4 or 8 bit), compressed-tensors or mxfp4 one",
        qcfg.get("quant_method"),
    )
    return "bf16", None


def load_config_json(path: str | Path) -> ModelSpec:
    """Parse a Hugging Face ``config.json`` offline into a :class:`ModelSpec`.

    Reads ``text_config`` for multimodal checkpoints. The parameter count is recomputed from
    the architecture (``config.json`` does not state it).
    """
    path = Path(path).expanduser()
    subject = f"config.json {path}"
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
    cfg = dict(raw)
    text = raw.get("text_config")
    if isinstance(text, dict):
        cfg = {**raw, **text}

    p = Problems(subject)
    if cfg.get("kv_lora_rank") is not None:
        p.add(
            "kv_lora_rank",
            "multi-head latent attention (DeepSeek-V2/V3) is not modelled by the sizing engine",
            "size this model by hand, or use a model with standard (grouped-query) attention",
            cfg["kv_lora_rank"],
        )
    for key, what in _REQUIRED.items():
        value = cfg.get(key)
        if value is None:
            p.add(key, f"is missing ({what})", f'add "{key}" to the config.json (see the model card)')
        elif not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            p.add(key, "must be a positive whole number", f'correct "{key}" in the config.json', value)
    experts = int(_first(cfg, "num_local_experts", "num_experts", "n_routed_experts", default=0) or 0)
    if experts:
        if _first(cfg, "moe_intermediate_size", "intermediate_size") is None:
            p.add(
                "moe_intermediate_size",
                "is missing (width of one expert)",
                'add "moe_intermediate_size" (or "intermediate_size")',
            )
        if _first(cfg, "num_experts_per_tok", "experts_per_token") is None:
            p.add("num_experts_per_tok", "is missing (experts per token)", 'add "num_experts_per_tok"')
    elif cfg.get("intermediate_size") is None:
        p.add("intermediate_size", "is missing (MLP width)", 'add "intermediate_size" to the config.json')
    native, method = _native_dtype(cfg.get("quantization_config"), p)
    p.raise_if_any()

    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    kv_heads = int(cfg.get("num_key_value_heads") or heads)
    head_dim = int(cfg.get("head_dim") or hidden // heads)
    if heads % kv_heads:
        raise ConfigError(
            subject,
            [
                _problem(
                    "num_key_value_heads",
                    f"does not divide num_attention_heads ({heads})",
                    "check the config.json: grouped-query attention needs heads to be a multiple of KV heads",
                    kv_heads,
                )
            ],
        )
    name = str(raw.get("_name_or_path") or path.parent.name or path.stem)
    if native == "bf16" and str(cfg.get("torch_dtype", cfg.get("dtype", ""))).lower() == "float16":
        native = "fp16"
    spec = ModelSpec(
        name=name,
        hf_id=name,
        layers=int(cfg["num_hidden_layers"]),
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=int(cfg["vocab_size"]),
        max_positions=int(cfg["max_position_embeddings"]),
        intermediate_size=0 if experts else int(cfg["intermediate_size"]),
        params=0,
        experts=experts,
        experts_per_token=int(_first(cfg, "num_experts_per_tok", "experts_per_token", default=0) or 0),
        moe_intermediate_size=int(_first(cfg, "moe_intermediate_size", "intermediate_size", default=0) or 0)
        if experts
        else 0,
        tie_word_embeddings=bool(raw.get("tie_word_embeddings", cfg.get("tie_word_embeddings", False))),
        native_dtype=native,
        quant_method=method,
        source=str(path),
    )
    return _replace_params(spec, spec.estimated_params())


def _replace_params(spec: ModelSpec, params: int) -> ModelSpec:
    from dataclasses import replace

    return replace(spec, params=params)


def _problem(field: str, message: str, fix: str, value: Any = None) -> Any:
    from ..errors import Problem

    return Problem(field, message, fix) if value is None else Problem(field, message, fix, value)
