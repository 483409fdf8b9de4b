"""Open models with their published architecture numbers: the ``ModelSpec`` table (the ``config.json`` parser is ``hf_config``).

Every entry's numbers are the ones in the model's ``config.json`` on the Hugging Face Hub
(``source``) and its published parameter count. The sizing engine needs: layers, KV heads
and head dim (KV cache per token), the parameter count split into embeddings, MoE experts
and the rest (weights per dtype), attention heads (which tensor-parallel sizes are legal)
and the maximum positions (the longest ``--max-model-len``).

Sliding-window layers (Gemma 2/3, gpt-oss) keep only their window (``full_attention_layers``),
MLA models (DeepSeek-V3/R1) cache one latent vector per layer; vision towers of multimodal
checkpoints are counted in ``params`` (16 bit), which over-estimates slightly.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ..errors import ConfigError, Problem

#: Weight formats a checkpoint can ship in (``native_dtype``).
NATIVE_DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "int4", "mxfp4")


#: Parts of a transformer a quantized checkpoint may quantize (``ModelSpec.quantized``).
PARTS: tuple[str, ...] = ("attention", "mlp", "experts", "shared_experts")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """Architecture of one decoder-only transformer, as its ``config.json`` states it."""

    #: Catalog key (``"llama-3.1-70b"``), or the checkpoint name for a parsed config.json.
    name: str
    #: Hugging Face repository id.
    hf_id: str
    layers: int
    hidden_size: int
    attention_heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    max_positions: int
    #: Dense MLP width (for MoE models: the width of the dense layers, if any; else 0).
    intermediate_size: int
    #: Total parameters, all experts included (published, or recomputed from the architecture).
    params: int
    #: Routed experts per MoE layer; 0 for a dense model.
    experts: int = 0
    #: Experts each token is routed to; 0 for a dense model.
    experts_per_token: int = 0
    #: Width of one expert's MLP; 0 for a dense model.
    moe_intermediate_size: int = 0
    #: Total MLP width of the always-active shared experts of each MoE layer (Qwen-MoE, DeepSeek).
    shared_expert_intermediate_size: int = 0
    #: Leading layers that are dense in an MoE model (DeepSeek's ``first_k_dense_replace``).
    dense_layers: int = 0
    #: Input embeddings and LM head share one matrix.
    tie_word_embeddings: bool = False
    #: Format the checkpoint's weights ship in; ``bf16`` unless the checkpoint is pre-quantized.
    native_dtype: str = "bf16"
    #: ``quantization_config.quant_method`` of a pre-quantized checkpoint (vLLM reads it itself).
    quant_method: str | None = None
    #: AWQ/GPTQ (and int compressed-tensors) group size; -1 or 0 for per-channel.
    quant_group_size: int = 0
    #: Block-quantized FP8 block edge (``weight_block_size`` [128, 128]); 0 when not blocked.
    quant_block_size: int = 0
    #: Parts the checkpoint quantizes (the rest stays 16 bit); empty = all linear layers.
    quantized: tuple[str, ...] = ()
    #: Layers whose MLP is left 16 bit (fbgemm_fp8 keeps the first and last layer's MLP).
    unquantized_mlp_layers: int = 0
    #: ``mla`` for multi-head latent attention (DeepSeek-V2/V3/R1), else ``gqa`` (MHA, GQA, MQA).
    attention: str = "gqa"
    #: MLA: latent KV width and the decoupled RoPE key width (KV per token = their sum).
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    q_lora_rank: int = 0
    #: Sliding-window width in tokens (0: every layer attends the whole context).
    sliding_window: int = 0
    #: Layers that keep the whole context when ``sliding_window`` is set (the others keep the
    #: window). ``None``: all layers (no sliding window).
    full_attention_layers: int | None = None
    #: Where the numbers come from (the config.json URL or file path).
    source: str = ""
    #: Other names ``get_model`` accepts.
    aliases: tuple[str, ...] = ()

    @property
    def is_moe(self) -> bool:
        return self.experts > 0

    @property
    def moe_layers(self) -> int:
        return self.layers - self.dense_layers if self.is_moe else 0

    @property
    def is_mla(self) -> bool:
        return self.attention == "mla"

    @property
    def full_layers(self) -> int:
        """Layers that cache the whole context."""
        if not self.sliding_window or self.full_attention_layers is None:
            return self.layers
        return self.full_attention_layers

    @property
    def window_layers(self) -> int:
        """Layers that cache only the last ``sliding_window`` tokens."""
        return self.layers - self.full_layers

    @property
    def embedding_params(self) -> int:
        """Input embeddings plus the LM head (once when tied). Never quantized."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def attention_params_per_layer(self) -> int:
        h = self.hidden_size
        if self.is_mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            q = (
                h * self.attention_heads * qk
                if not self.q_lora_rank
                else (h * self.q_lora_rank + self.q_lora_rank * self.attention_heads * qk)
            )
            kv = h * (self.kv_lora_rank + self.qk_rope_head_dim) + self.kv_lora_rank * self.attention_heads * (
                self.qk_nope_head_dim + self.v_head_dim
            )
            return q + kv + self.attention_heads * self.v_head_dim * h
        q = h * self.attention_heads * self.head_dim
        kv = 2 * h * self.kv_heads * self.head_dim
        return 2 * q + kv

    @property
    def dense_mlp_params(self) -> int:
        """Parameters of every dense MLP (all layers of a dense model, the leading ones of an MoE)."""
        n = self.dense_layers if self.is_moe else self.layers
        return n * 3 * self.hidden_size * self.intermediate_size

    @property
    def expert_params(self) -> int:
        """Parameters of all routed experts (gate, up and down projections)."""
        return self.moe_layers * self.experts * 3 * self.hidden_size * self.moe_intermediate_size

    @property
    def shared_expert_params(self) -> int:
        return self.moe_layers * 3 * self.hidden_size * self.shared_expert_intermediate_size

    @property
    def router_params(self) -> int:
        return self.moe_layers * self.hidden_size * self.experts

    @property
    def active_params(self) -> int:
        """Parameters read per generated token: everything but the experts a token skips."""
        if not self.is_moe:
            return self.params
        per_expert = 3 * self.hidden_size * self.moe_intermediate_size * self.moe_layers
        return self.params - per_expert * (self.experts - self.experts_per_token)

    def kv_bytes_per_token(self, kv_bytes: float) -> float:
        """KV cache of one token of full context over the whole model (sliding layers excluded).

        GQA: 2 x full layers x KV heads x head dim x bytes. MLA: full layers x (kv_lora_rank +
        qk_rope_head_dim) x bytes (one latent vector, no separate K and V).
        """
        if self.is_mla:
            return self.full_layers * (self.kv_lora_rank + self.qk_rope_head_dim) * kv_bytes
        return 2 * self.full_layers * self.kv_heads * self.head_dim * kv_bytes

    def estimated_params(self) -> int:
        """Parameter count recomputed from the architecture (norms and biases ignored)."""
        return (
            self.layers * self.attention_params_per_layer
            + self.dense_mlp_params
            + self.expert_params
            + self.shared_expert_params
            + self.router_params
            + self.embedding_params
        )


def _hf(repo: str) -> str:
    return f"https://huggingface.co/{repo}/blob/main/config.json"


def _llama(
    name: str,
    repo: str,
    *,
    layers: int,
    hidden: int,
    heads: int,
    kv: int,
    inter: int,
    vocab: int,
    max_pos: int,
    params: int,
    head_dim: int = 128,
    tie: bool = False,
    aliases: tuple[str, ...] = (),
    sliding_window: int = 0,
    full_attention_layers: int | None = None,
) -> ModelSpec:
    return ModelSpec(
        name=name,
        hf_id=repo,
        layers=layers,
        hidden_size=hidden,
        attention_heads=heads,
        kv_heads=kv,
        head_dim=head_dim,
        vocab_size=vocab,
        max_positions=max_pos,
        intermediate_size=inter,
        params=params,
        tie_word_embeddings=tie,
        source=_hf(repo),
        aliases=aliases,
        sliding_window=sliding_window,
        full_attention_layers=full_attention_layers,
    )


_L3_VOCAB = 128256
_QWEN25_VOCAB = 152064
_QWEN3_VOCAB = 151936

_MODEL_LIST: tuple[ModelSpec, ...] = (
    # Llama 2 (4K context, multi-head attention on 7b/13b, GQA on 70b)
    _llama(
        "llama-2-7b",
        "meta-llama/Llama-2-7b-hf",
        layers=32,
        hidden=4096,
        heads=32,
        kv=32,
        inter=11008,
        vocab=32000,
        max_pos=4096,
        params=6_738_415_616,
        aliases=("meta-llama/Llama-2-7b-chat-hf", "llama-2-7b-hf"),
    ),
    _llama(
        "llama-2-13b",
        "meta-llama/Llama-2-13b-hf",
        layers=40,
        hidden=5120,
        heads=40,
        kv=40,
        inter=13824,
        vocab=32000,
        max_pos=4096,
        params=13_015_864_320,
        aliases=("meta-llama/Llama-2-13b-chat-hf", "llama-2-13b-hf"),
    ),
    _llama(
        "llama-2-70b",
        "meta-llama/Llama-2-70b-hf",
        layers=80,
        hidden=8192,
        heads=64,
        kv=8,
        inter=28672,
        vocab=32000,
        max_pos=4096,
        params=68_976_648_192,
        aliases=("meta-llama/Llama-2-70b-chat-hf", "llama-2-70b-hf"),
    ),
    # Llama 3.x
    _llama(
        "llama-3-8b",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        layers=32,
        hidden=4096,
        heads=32,
        kv=8,
        inter=14336,
        vocab=_L3_VOCAB,
        max_pos=8192,
        params=8_030_261_248,
    ),
    _llama(
        "llama-3.1-8b",
        "meta-llama/Llama-3.1-8B-Instruct",
        layers=32,
        hidden=4096,
        heads=32,
        kv=8,
        inter=14336,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=8_030_261_248,
    ),
    _llama(
        "llama-3.1-70b",
        "meta-llama/Llama-3.1-70B-Instruct",
        layers=80,
        hidden=8192,
        heads=64,
        kv=8,
        inter=28672,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=70_553_706_496,
    ),
    _llama(
        "llama-3.1-405b",
        "meta-llama/Llama-3.1-405B-Instruct",
        layers=126,
        hidden=16384,
        heads=128,
        kv=8,
        inter=53248,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=405_853_388_800,
    ),
    _llama(
        "llama-3.2-1b",
        "meta-llama/Llama-3.2-1B-Instruct",
        layers=16,
        hidden=2048,
        heads=32,
        kv=8,
        inter=8192,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=1_235_814_400,
        head_dim=64,
        tie=True,
    ),
    _llama(
        "llama-3.2-3b",
        "meta-llama/Llama-3.2-3B-Instruct",
        layers=28,
        hidden=3072,
        heads=24,
        kv=8,
        inter=8192,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=3_212_749_824,
        tie=True,
    ),
    _llama(
        "llama-3.3-70b",
        "meta-llama/Llama-3.3-70B-Instruct",
        layers=80,
        hidden=8192,
        heads=64,
        kv=8,
        inter=28672,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=70_553_706_496,
    ),
    # Mistral / Mixtral
    _llama(
        "mistral-7b",
        "mistralai/Mistral-7B-Instruct-v0.3",
        layers=32,
        hidden=4096,
        heads=32,
        kv=8,
        inter=14336,
        vocab=32768,
        max_pos=32768,
        params=7_248_023_552,
    ),
    _llama(
        "mistral-small-24b",
        "mistralai/Mistral-Small-24B-Instruct-2501",
        layers=40,
        hidden=5120,
        heads=32,
        kv=8,
        inter=32768,
        vocab=131072,
        max_pos=32768,
        params=23_572_403_200,
    ),
    ModelSpec(
        name="mixtral-8x7b",
        hf_id="mistralai/Mixtral-8x7B-Instruct-v0.1",
        layers=32,
        hidden_size=4096,
        attention_heads=32,
        kv_heads=8,
        head_dim=128,
        vocab_size=32000,
        max_positions=32768,
        intermediate_size=0,
        params=46_702_792_704,
        experts=8,
        experts_per_token=2,
        moe_intermediate_size=14336,
        source=_hf("mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ),
    ModelSpec(
        name="mixtral-8x22b",
        hf_id="mistralai/Mixtral-8x22B-Instruct-v0.1",
        layers=56,
        hidden_size=6144,
        attention_heads=48,
        kv_heads=8,
        head_dim=128,
        vocab_size=32768,
        max_positions=65536,
        intermediate_size=0,
        params=140_620_634_112,
        experts=8,
        experts_per_token=2,
        moe_intermediate_size=16384,
        source=_hf("mistralai/Mixtral-8x22B-Instruct-v0.1"),
    ),
    # Qwen 2.5 / 3
    _llama(
        "qwen2.5-7b",
        "Qwen/Qwen2.5-7B-Instruct",
        layers=28,
        hidden=3584,
        heads=28,
        kv=4,
        inter=18944,
        vocab=_QWEN25_VOCAB,
        max_pos=32768,
        params=7_615_616_512,
    ),
    _llama(
        "qwen2.5-14b",
        "Qwen/Qwen2.5-14B-Instruct",
        layers=48,
        hidden=5120,
        heads=40,
        kv=8,
        inter=13824,
        vocab=_QWEN25_VOCAB,
        max_pos=32768,
        params=14_770_033_664,
    ),
    _llama(
        "qwen2.5-32b",
        "Qwen/Qwen2.5-32B-Instruct",
        layers=64,
        hidden=5120,
        heads=40,
        kv=8,
        inter=27648,
        vocab=_QWEN25_VOCAB,
        max_pos=32768,
        params=32_763_876_352,
    ),
    _llama(
        "qwen2.5-72b",
        "Qwen/Qwen2.5-72B-Instruct",
        layers=80,
        hidden=8192,
        heads=64,
        kv=8,
        inter=29568,
        vocab=_QWEN25_VOCAB,
        max_pos=32768,
        params=72_706_203_648,
    ),
    _llama(
        "qwen3-8b",
        "Qwen/Qwen3-8B",
        layers=36,
        hidden=4096,
        heads=32,
        kv=8,
        inter=12288,
        vocab=_QWEN3_VOCAB,
        max_pos=40960,
        params=8_190_735_360,
    ),
    _llama(
        "qwen3-32b",
        "Qwen/Qwen3-32B",
        layers=64,
        hidden=5120,
        heads=64,
        kv=8,
        inter=25600,
        vocab=_QWEN3_VOCAB,
        max_pos=40960,
        params=32_762_123_264,
    ),
    ModelSpec(
        name="qwen3-30b-a3b",
        hf_id="Qwen/Qwen3-30B-A3B",
        layers=48,
        hidden_size=2048,
        attention_heads=32,
        kv_heads=4,
        head_dim=128,
        vocab_size=_QWEN3_VOCAB,
        max_positions=40960,
        intermediate_size=0,
        params=30_532_122_624,
        experts=128,
        experts_per_token=8,
        moe_intermediate_size=768,
        source=_hf("Qwen/Qwen3-30B-A3B"),
    ),
    # Gemma (head_dim differs from hidden / heads)
    _llama(
        "gemma-2-9b",
        "google/gemma-2-9b-it",
        layers=42,
        hidden=3584,
        heads=16,
        kv=8,
        inter=14336,
        vocab=256000,
        max_pos=8192,
        params=9_241_705_984,
        head_dim=256,
        tie=True,
        sliding_window=4096,
        full_attention_layers=21,
    ),
    _llama(
        "gemma-2-27b",
        "google/gemma-2-27b-it",
        layers=46,
        hidden=4608,
        heads=32,
        kv=16,
        inter=36864,
        vocab=256000,
        max_pos=8192,
        params=27_227_128_320,
        tie=True,
        sliding_window=4096,
        full_attention_layers=23,
    ),
    # text_config of the multimodal checkpoint; params include the 0.4B vision tower.
    _llama(
        "gemma-3-27b",
        "google/gemma-3-27b-it",
        layers=62,
        hidden=5376,
        heads=32,
        kv=16,
        inter=21504,
        vocab=262208,
        max_pos=131072,
        params=27_432_406_640,
        tie=True,
        sliding_window=1024,
        full_attention_layers=10,
    ),
    # DeepSeek-R1 distills (Qwen 2.5 and Llama 3 architectures, 128K context)
    _llama(
        "deepseek-r1-distill-qwen-7b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
        layers=28,
        hidden=3584,
        heads=28,
        kv=4,
        inter=18944,
        vocab=_QWEN25_VOCAB,
        max_pos=131072,
        params=7_615_616_512,
    ),
    _llama(
        "deepseek-r1-distill-llama-8b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
        layers=32,
        hidden=4096,
        heads=32,
        kv=8,
        inter=14336,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=8_030_261_248,
    ),
    _llama(
        "deepseek-r1-distill-qwen-32b",
        "deepseek-ai/DeepSeek-R1-Distill-Qwen-32B",
        layers=64,
        hidden=5120,
        heads=40,
        kv=8,
        inter=27648,
        vocab=_QWEN25_VOCAB,
        max_pos=131072,
        params=32_763_876_352,
    ),
    _llama(
        "deepseek-r1-distill-llama-70b",
        "deepseek-ai/DeepSeek-R1-Distill-Llama-70B",
        layers=80,
        hidden=8192,
        heads=64,
        kv=8,
        inter=28672,
        vocab=_L3_VOCAB,
        max_pos=131072,
        params=70_553_706_496,
    ),
    # gpt-oss: experts ship in MXFP4, attention, router and embeddings in BF16.
    ModelSpec(
        name="gpt-oss-20b",
        hf_id="openai/gpt-oss-20b",
        layers=24,
        hidden_size=2880,
        attention_heads=64,
        kv_heads=8,
        head_dim=64,
        vocab_size=201088,
        max_positions=131072,
        intermediate_size=0,
        params=20_914_757_184,
        experts=32,
        experts_per_token=4,
        moe_intermediate_size=2880,
        native_dtype="mxfp4",
        quant_method="mxfp4",
        source=_hf("openai/gpt-oss-20b"),
        sliding_window=128,
        full_attention_layers=12,
        quantized=("experts",),
    ),
    ModelSpec(
        name="gpt-oss-120b",
        hf_id="openai/gpt-oss-120b",
        layers=36,
        hidden_size=2880,
        attention_heads=64,
        kv_heads=8,
        head_dim=64,
        vocab_size=201088,
        max_positions=131072,
        intermediate_size=0,
        params=116_829_156_672,
        experts=128,
        experts_per_token=4,
        moe_intermediate_size=2880,
        native_dtype="mxfp4",
        quant_method="mxfp4",
        source=_hf("openai/gpt-oss-120b"),
        sliding_window=128,
        full_attention_layers=18,
        quantized=("experts",),
    ),
)

MODELS: dict[str, ModelSpec] = {m.name: m for m in _MODEL_LIST}

_LOOKUP: dict[str, ModelSpec] = {}
for _m in _MODEL_LIST:
    for _key in (_m.name, _m.hf_id, *_m.aliases):
        _LOOKUP[_key.lower()] = _m


def get_model(name_or_hf_id: str) -> ModelSpec:
    """A catalog model by name (``llama-2-7b``), Hugging Face id or alias; case-insensitive."""
    found = _LOOKUP.get(str(name_or_hf_id).strip().lower())
    if found is not None:
        return found
    close = difflib.get_close_matches(str(name_or_hf_id).lower(), list(_LOOKUP), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ConfigError("model", [_unknown_model_problem(name_or_hf_id, hint)])


def _unknown_model_problem(value: str, hint: str) -> Problem:
    return Problem(
        "model",
        "is not in the model catalog",
        f"{hint}Use a catalog name ({', '.join(sorted(MODELS)[:4])}, ...; "
        "`eks-llm-stack size --list-models` lists all) or the path to the model's config.json",
        value,
    )
