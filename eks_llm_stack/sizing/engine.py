"""The sizing engine: from a model to an instance type, parallelism, vLLM arguments and a price.

Pure and fast (no I/O but an optional ``config.json``, price file or bench summary read, a few
milliseconds per call), so the serving charts call it at synth time. The model it applies is
documented, with worked examples, in ``docs/sizing.md``:

* weights per part (embeddings and router 16 bit; attention, MLP, experts and shared experts
  in the checkpoint's format, with its scales: :mod:`.memory`);
* KV cache per sequence: full-attention layers keep the whole sequence, sliding-window layers
  their window; GQA stores K and V of ``ceil(kv_heads / TP)`` heads, MLA one latent vector;
* per-GPU budget: GPU memory x ``gpu_memory_utilization`` holds the weights, the activation
  peak of the profile run, non-torch memory (NCCL) and the KV cache; the CUDA context and the
  CUDA graphs live outside that fraction (vLLM captures graphs after sizing the KV cache), so
  ``1 - gpu_memory_utilization`` of the GPU must hold them;
* validity: vLLM's divisibility rules (:mod:`.parallel`), the GPU's capabilities for the
  weight and KV formats, host memory for the shard, EFA between nodes;
* choice: one node before several; the cheapest hourly price; ties go to fewer GPUs, then the
  newer generation.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import FAMILIES, INSTANCES, InstanceType, ModelSpec, get_instance, resolve_model
from ..catalog.instances import DEFAULT_REGION
from ..conventions import HOST_MEMORY_RESERVE_GIB
from ..errors import ConfigError, Problem, Problems, collecting
from .cost import token_cost
from .memory import (
    KV_BLOCK_TOKENS,
    kv_bytes_per_sequence_per_gpu,
    kv_bytes_per_token_per_gpu,
    per_gpu_weight_bytes,
    weight_breakdown,
    weight_bytes,
)
from .parallel import TP_SIZES, check_pp, check_tp

GIB = 1024**3

#: Weight dtypes a request may ask for; ``None`` means the checkpoint's own format.
DTYPES: tuple[str, ...] = ("bf16", "fp16", "fp8", "int8", "int4")
KV_CACHE_DTYPES: tuple[str, ...] = ("auto", "fp8")
#: ``capacity-block``: EC2 Capacity Blocks (Karpenter capacity type ``reserved``).
CAPACITY_TYPES: tuple[str, ...] = ("on-demand", "spot", "capacity-block")

# Runtime overhead per GPU besides weights and KV cache. vLLM measures these at start-up
# ("Memory profiling takes ... model weights take X GiB; non_torch_memory takes Y GiB; PyTorch
# activation peak memory takes Z GiB") and gives the KV cache what is left of
# gpu_memory_utilization x total; these constants stand in for that profile at synth time.
#: CUDA context: created before vLLM's baseline snapshot, so outside the utilization budget.
CUDA_CONTEXT_GIB = 1.0
#: Non-torch memory when GPUs talk to each other (NCCL communicator buffers), inside the budget.
DISTRIBUTED_GIB = 0.5
#: CUDA graphs for decode batch sizes: captured after the KV cache is allocated, so outside the
#: budget; calibrate against "Graph capturing finished ... took X GiB".
CUDA_GRAPHS_GIB = 0.75
#: Tokens per forward pass during the profile run; emitted as --max-num-batched-tokens.
MAX_NUM_BATCHED_TOKENS = 8192
#: vLLM's default --max-num-seqs; the engine never proposes more unless concurrency asks for it.
MAX_NUM_SEQS_CAP = 256
#: Host memory kept for the OS, kubelet and the vLLM process besides the weights being loaded
#: (the same reserve the vLLM chart keeps out of the pod's memory request).
HOST_RESERVE_GIB = HOST_MEMORY_RESERVE_GIB
#: Largest pipeline-parallel group (nodes) the engine considers.
MAX_NODES = 8
DEFAULT_GPU_MEMORY_UTILIZATION = 0.90
#: Context length when the request does not name one (capped at the model's own limit).
DEFAULT_MAX_MODEL_LEN = 4096

_FP8_TYPES = ", ".join(sorted({i.family for i in INSTANCES.values() if i.gpu.fp8}))


@dataclass(frozen=True, kw_only=True)
class SizingRequest:
    """What to size. Only ``model`` is required."""

    #: Catalog name, Hugging Face id, path to a ``config.json``, or a :class:`ModelSpec`.
    model: str | ModelSpec
    #: Weight dtype. Default ``None``: the checkpoint's own format (bf16 for most models).
    dtype: str | None = None
    #: KV cache dtype, ``auto`` (default: the activation dtype, 16 bit) or ``fp8``.
    kv_cache_dtype: str = "auto"
    #: Longest sequence (prompt + output). Default ``None``: min(model limit, 4096).
    max_model_len: int | None = None
    #: Sequences one replica must hold at full length at once. Default 1.
    concurrency: int = 1
    #: ``on-demand`` (default), ``spot`` or ``capacity-block``; spot excludes multi-node plans;
    #: spot and capacity-block need ``prices``.
    capacity: str = "on-demand"
    #: Instance types or families to choose from. Default empty: the whole catalog (types
    #: without a price for the capacity type and region are left out).
    instance_types: tuple[str, ...] = ()
    #: Pin the tensor-parallel size. Default ``None``: the engine chooses.
    tensor_parallel_size: int | None = None
    #: Pin the pipeline-parallel size (= nodes). Default ``None``: the engine chooses.
    pipeline_parallel_size: int | None = None
    #: Pin the instance type. Default ``None``: the engine chooses.
    instance_type: str | None = None
    #: Fraction of GPU memory vLLM may use, in (0, 1). Default ``None``: vLLM's 0.90, lowered
    #: on small GPUs so that the CUDA context and graphs fit in the rest.
    gpu_memory_utilization: float | None = None
    #: Replicas to price. Default 1; concurrency is per replica.
    replicas: int = 1
    #: Region whose catalog on-demand prices apply. Default us-east-1.
    region: str = DEFAULT_REGION
    #: USD per hour by instance type (or family, per instance of it) for ``capacity``; given
    #: prices win over the catalog's. Default none.
    prices: Mapping[str, float] = field(default_factory=dict)
    #: Where ``prices`` come from (a file path, "profile"), for the plan's price_source.
    price_source: str | None = None
    #: A ``bench run`` output directory (``summary.json``): measured throughput for the plan's
    #: cost per token instead of the roofline estimate.
    throughput_from: str | Path | None = None

    def __post_init__(self) -> None:
        with collecting("sizing request") as p:
            p.check(
                self.dtype is None or self.dtype in DTYPES,
                "dtype",
                self.dtype,
                "is not a supported weight dtype",
                f"use one of {', '.join(DTYPES)} (or omit it for the checkpoint's own)",
            )
            p.check(
                self.kv_cache_dtype in KV_CACHE_DTYPES,
                "kv_cache_dtype",
                self.kv_cache_dtype,
                "is not a supported KV cache dtype",
                f"use one of {', '.join(KV_CACHE_DTYPES)}",
            )
            p.check(
                self.capacity in CAPACITY_TYPES,
                "capacity",
                self.capacity,
                "is not a capacity type",
                f"use one of {', '.join(CAPACITY_TYPES)}",
            )
            for name in ("max_model_len", "tensor_parallel_size", "pipeline_parallel_size"):
                value = getattr(self, name)
                if value is not None:
                    _positive_int(p, name, value)
            _positive_int(p, "concurrency", self.concurrency)
            _positive_int(p, "replicas", self.replicas)
            u = self.gpu_memory_utilization
            p.check(
                u is None
                or (isinstance(u, (int, float)) and not isinstance(u, bool) and math.isfinite(u) and 0 < u < 1),
                "gpu_memory_utilization",
                u,
                "must be a fraction strictly between 0 and 1 (the CUDA context and graphs need the rest)",
                "use e.g. 0.90 (vLLM's default), or leave it out",
            )
            p.check(
                isinstance(self.instance_types, tuple),
                "instance_types",
                self.instance_types,
                "must be a tuple",
                "pass a tuple of instance types or families, e.g. ('g6e', 'p5.48xlarge')",
            )
            for key, value in dict(self.prices or {}).items():
                p.check(
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and value > 0,
                    f"prices.{key}",
                    value,
                    "must be a positive price in USD per hour",
                    "give the instance's $/hour for the capacity type, e.g. 43.26",
                )
            p.check(
                self.capacity != "capacity-block" or bool(self.prices),
                "capacity",
                self.capacity,
                "has no offline prices (Capacity Block prices change and are not in the catalog)",
                "give the prices with --price-source FILE (instance type: USD per hour), or use on-demand",
            )


def _positive_int(p: Problems, name: str, value: Any) -> None:
    p.check(
        isinstance(value, int) and not isinstance(value, bool) and value > 0,
        name,
        value,
        "must be a positive whole number",
        f"give {name} as an integer >= 1",
    )


@dataclass(frozen=True, kw_only=True)
class MemoryBudget:
    """Where one GPU's memory goes (the most loaded GPU of the plan), in GiB."""

    gpu_memory_gib: float
    gpu_memory_utilization: float
    #: gpu_memory_gib x gpu_memory_utilization: what vLLM may use.
    usable_gib: float
    #: Left outside vLLM's share: gpu_memory_gib x (1 - utilization); holds context and graphs.
    headroom_gib: float
    weights_gib: float
    cuda_context_gib: float
    distributed_gib: float
    activation_gib: float
    cuda_graphs_gib: float
    #: Inside the budget: distributed + activation.
    runtime_overhead_gib: float
    #: Outside the budget: CUDA context + CUDA graphs.
    outside_budget_gib: float
    #: usable - weights - runtime overhead: the KV cache vLLM will allocate.
    kv_cache_gib: float
    kv_bytes_per_token_model: float
    kv_bytes_per_token_gpu: float
    #: KV bytes of one max_model_len sequence on this GPU (sliding-window layers keep less).
    kv_bytes_per_sequence_gpu: float
    #: Tokens of full context the KV cache holds (full-attention layers' rate).
    kv_capacity_tokens: int
    kv_required_tokens: int
    #: KV cache the requested concurrency x max_model_len needs on this GPU.
    kv_required_gib: float
    host_memory_gib: float
    host_required_gib: float


@dataclass(frozen=True, kw_only=True)
class ThroughputEstimate:
    """Decode throughput: measured (``measured`` True, from a bench summary) or UPPER BOUNDS
    from a memory-bandwidth roofline."""

    single_stream_tokens_per_s: float
    batch: int
    batch_tokens_per_s: float
    usd_per_1m_tokens_at_bound: float
    basis: str
    measured: bool = False


@dataclass(frozen=True, kw_only=True)
class RunnerUp:
    """A configuration that was considered and not chosen, and why."""

    instance_type: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    hourly_usd: float
    fits: bool
    why: str


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The engine's answer. ``to_json()`` is what ``eks-llm-stack size --json`` prints."""

    model: str
    hf_id: str
    dtype: str
    kv_cache_dtype: str
    instance_type: str
    gpu: str
    tensor_parallel_size: int
    pipeline_parallel_size: int
    nodes: int
    gpus_per_node: int
    replicas: int
    max_model_len: int
    concurrency: int
    max_num_seqs: int
    #: Weights of the whole model, GiB.
    weights_gib: float
    #: KV cache for concurrency sequences of max_model_len over all GPUs of a replica (sliding
    #: layers at their window; MLA latents and replicated KV heads counted on every GPU), GiB.
    kv_cache_gib: float
    #: KV cache vLLM will allocate over all GPUs of a replica, GiB.
    kv_cache_allocated_gib: float
    hourly_usd: float
    hourly_usd_per_replica: float
    capacity: str
    price_source: str
    placement_group: bool
    vllm_args: tuple[str, ...]
    memory: MemoryBudget
    throughput_estimate: ThroughputEstimate
    expert_parallel: bool = False
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
    region: str = DEFAULT_REGION
    efa_interfaces: int = 0
    runners_up: tuple[RunnerUp, ...] = ()
    warnings: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["vllm_args"] = list(self.vllm_args)
        out["runners_up"] = [asdict(r) for r in self.runners_up]
        out["warnings"] = list(self.warnings)
        out["notes"] = list(self.notes)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)


# ------------------------------------------------------------------------------ the model


def _activation_bytes(model: ModelSpec, tp: int) -> float:
    mlp = model.experts_per_token * model.moe_intermediate_size if model.is_moe else model.intermediate_size
    mlp = max(mlp, model.intermediate_size) + model.shared_expert_intermediate_size
    hidden_states = MAX_NUM_BATCHED_TOKENS * (4 * model.hidden_size + 2 * mlp / tp) * 2.0
    logits = MAX_NUM_SEQS_CAP * (model.vocab_size / tp) * 4.0
    return hidden_states + logits


def _utilization(request: SizingRequest, inst: InstanceType) -> float:
    if request.gpu_memory_utilization is not None:
        return float(request.gpu_memory_utilization)
    # vLLM's default, lowered (in steps of 0.01) where 10 % of the GPU cannot hold the CUDA
    # context and graphs, which live outside the fraction.
    outside = CUDA_CONTEXT_GIB + CUDA_GRAPHS_GIB
    fit = math.floor((1 - outside / inst.gpu.memory_gib) * 100) / 100
    return min(DEFAULT_GPU_MEMORY_UTILIZATION, max(fit, 0.05))


def capability_problem(model: ModelSpec, dtype: str, kv_dtype: str, inst: InstanceType) -> str | None:
    """Why ``inst``'s GPU cannot run these weight and KV formats in vLLM, or ``None``."""
    gpu = inst.gpu
    cc = gpu.compute_capability
    if dtype == "fp8" and not gpu.fp8:
        return f"{gpu.name} (compute capability {cc}) has no FP8 tensor cores (FP8 needs 8.9+)"
    if kv_dtype == "fp8" and not gpu.fp8:
        return f"{gpu.name} (compute capability {cc}) has no FP8 support for an fp8 KV cache"
    if dtype == "mxfp4" and not gpu.mxfp4:
        return f"{gpu.name} (compute capability {cc}) cannot run MXFP4 weights (vLLM needs 8.0+)"
    if dtype in ("int4", "int8") and gpu.compute_capability_tuple < (7, 5):
        return f"{gpu.name} (compute capability {cc}) has no AWQ/GPTQ kernels (7.5+)"
    if model.is_mla and gpu.compute_capability_tuple < (8, 0):
        return f"{gpu.name} (compute capability {cc}) has no MLA attention backend in vLLM (8.0+)"
    return None


@dataclass(frozen=True)
class _Candidate:
    inst: InstanceType
    tp: int
    pp: int
    memory: MemoryBudget
    seqs_fit: int
    problem: str | None
    hourly: float
    expert_parallel: bool
    util: float

    @property
    def node_gpus(self) -> int:
        return self.inst.gpu_count * self.pp

    def key(self) -> tuple[Any, ...]:
        gpu = self.inst.gpu
        return (
            round(self.hourly, 6),
            self.node_gpus,
            -self.inst.generation,
            tuple(-x for x in gpu.compute_capability_tuple),
            -self.tp,
            self.inst.name,
        )


def _evaluate(
    model: ModelSpec,
    dtype: str,
    request: SizingRequest,
    inst: InstanceType,
    tp: int,
    pp: int,
    max_len: int,
    hourly: float,
    expert_parallel: bool,
) -> _Candidate:
    gpu = inst.gpu
    kv_dtype = request.kv_cache_dtype
    util = _utilization(request, inst)
    weights = per_gpu_weight_bytes(model, dtype, tp, pp) / GIB
    distributed = DISTRIBUTED_GIB if tp * pp > 1 else 0.0
    activation = _activation_bytes(model, tp) / GIB
    inside = distributed + activation
    outside = CUDA_CONTEXT_GIB + CUDA_GRAPHS_GIB
    usable = gpu.memory_gib * util
    kv_gib = usable - weights - inside
    kv_bytes = 1.0 if kv_dtype == "fp8" else 2.0
    per_tok_gpu = kv_bytes_per_token_per_gpu(model, kv_bytes, tp, pp)
    per_seq_gpu = kv_bytes_per_sequence_per_gpu(model, kv_bytes, tp, pp, max_len)
    kv_avail = max(kv_gib, 0.0) * GIB
    # Whole blocks of 16 tokens, as vLLM's paged allocator hands them out.
    block_bytes = per_tok_gpu * KV_BLOCK_TOKENS if per_tok_gpu else 1.0
    capacity_tokens = int(kv_avail // block_bytes) * KV_BLOCK_TOKENS if per_tok_gpu else 0
    seqs_fit = int(kv_avail // per_seq_gpu) if per_seq_gpu else 0
    required_tokens = request.concurrency * max_len
    emb, body = weight_bytes(model, dtype)
    host_required = (emb + body) / pp / GIB + HOST_RESERVE_GIB
    memory = MemoryBudget(
        gpu_memory_gib=gpu.memory_gib,
        gpu_memory_utilization=util,
        usable_gib=usable,
        headroom_gib=gpu.memory_gib - usable,
        weights_gib=weights,
        cuda_context_gib=CUDA_CONTEXT_GIB,
        distributed_gib=distributed,
        activation_gib=activation,
        cuda_graphs_gib=CUDA_GRAPHS_GIB,
        runtime_overhead_gib=inside,
        outside_budget_gib=outside,
        kv_cache_gib=max(kv_gib, 0.0),
        kv_bytes_per_token_model=model.kv_bytes_per_token(kv_bytes),
        kv_bytes_per_token_gpu=per_tok_gpu,
        kv_bytes_per_sequence_gpu=per_seq_gpu,
        kv_capacity_tokens=capacity_tokens,
        kv_required_tokens=required_tokens,
        kv_required_gib=request.concurrency * per_seq_gpu / GIB,
        host_memory_gib=inst.memory_gib,
        host_required_gib=host_required,
    )
    problem = capability_problem(model, dtype, kv_dtype, inst)
    if problem is None:
        if pp > 1 and not inst.efa_supported:
            problem = f"{inst.name} has no EFA, needed for pipeline parallel across nodes"
        elif pp > 1 and request.capacity == "spot":
            problem = "multi-node on spot: one interruption stops the whole pipeline group"
        elif outside > gpu.memory_gib - usable + 1e-9:
            problem = (
                f"CUDA context and graphs ({outside:.2f} GiB) do not fit outside the {util:.2f} utilization "
                f"({gpu.memory_gib - usable:.2f} GiB of {gpu.memory_gib:.2f} GiB); lower --gpu-memory-utilization"
            )
        elif weights + inside >= usable:
            problem = (
                f"weights {weights:.2f} GiB + overhead {inside:.2f} GiB per GPU exceed "
                f"{usable:.2f} GiB ({util:.2f} of {gpu.memory_gib:.2f} GiB)"
            )
        elif seqs_fit < 1:
            problem = f"KV cache holds {capacity_tokens} tokens per replica, less than one {max_len}-token sequence"
        elif host_required > inst.memory_gib:
            problem = f"host memory {inst.memory_gib:g} GiB < {host_required:.1f} GiB to load the shard"
    return _Candidate(inst, tp, pp, memory, seqs_fit, problem, hourly, expert_parallel, util)


def _shortfall(c: _Candidate, concurrency: int, max_len: int) -> str:
    return (
        f"KV cache holds {c.memory.kv_capacity_tokens} tokens, "
        f"{concurrency} x {max_len} = {concurrency * max_len} needed (fits {c.seqs_fit} sequences)"
    )


def _price(inst: InstanceType, request: SizingRequest) -> tuple[float | None, str]:
    """USD per hour of one instance for the request's capacity type and region, and its source."""
    given = dict(request.prices or {})
    for key in (inst.name, inst.family):
        if key in given:
            return float(given[key]), f"{request.price_source or 'given prices'} ({request.capacity})"
    if request.capacity == "capacity-block" or (request.capacity == "spot" and given):
        return None, ""
    usd = inst.price(request.region)
    if usd is None:
        return None, ""
    return usd, f"{inst.price_source.replace(DEFAULT_REGION, request.region)} ({inst.price_date})"


def _pool(request: SizingRequest, p: Problems) -> list[InstanceType]:
    if request.instance_type is not None:
        try:
            return [get_instance(request.instance_type)]
        except ConfigError as err:
            p.extend(err)
            return []
    if not request.instance_types:
        return list(INSTANCES.values())
    chosen: list[InstanceType] = []
    for idx, name in enumerate(request.instance_types):
        key = str(name).strip().lower()
        if key in FAMILIES:
            chosen += [i for i in INSTANCES.values() if i.family == key]
            continue
        try:
            chosen.append(get_instance(key))
        except ConfigError as err:
            p.extend(err, prefix=f"instance_types[{idx}]")
    seen: dict[str, InstanceType] = {i.name: i for i in chosen}
    return list(seen.values())


def _tp_label(model: ModelSpec) -> str:
    if model.is_mla:
        return f"{model.attention_heads} heads (MLA)"
    return f"{model.attention_heads} heads, {model.kv_heads} KV heads"


def size(request: SizingRequest) -> Plan:
    """The cheapest configuration that serves ``request``, or ``ConfigError`` saying why none does."""
    model = resolve_model(request.model)
    p = Problems(f"sizing {model.name}")
    dtype = request.dtype or model.native_dtype
    if model.native_dtype not in ("bf16", "fp16") and request.dtype not in (None, model.native_dtype):
        p.add(
            "dtype",
            f"{model.name} ships pre-quantized {model.native_dtype} weights",
            f"omit --dtype (or use {model.native_dtype}); a different format needs a different checkpoint",
            request.dtype,
        )
    max_len = request.max_model_len or min(model.max_positions, DEFAULT_MAX_MODEL_LEN)
    if max_len > model.max_positions:
        p.add(
            "max_model_len",
            f"exceeds {model.name}'s limit of {model.max_positions} positions",
            f"use --max-model-len {model.max_positions} or less",
            max_len,
        )
    tp_fixed, pp_fixed = request.tensor_parallel_size, request.pipeline_parallel_size
    if tp_fixed is not None:
        verdict = check_tp(model, tp_fixed, dtype)
        if not verdict.ok:
            ok = [t for t in TP_SIZES if check_tp(model, t, dtype).ok]
            p.add(
                "tensor_parallel_size",
                f"is invalid for {model.name}: {verdict.why}",
                f"use one of {', '.join(map(str, ok)) or '(none of 1, 2, 4, 8)'}",
                tp_fixed,
            )
    if pp_fixed is not None:
        why = check_pp(model, pp_fixed)
        if why or pp_fixed > MAX_NODES:
            p.add(
                "pipeline_parallel_size",
                why or f"exceeds the {MAX_NODES} nodes the engine plans",
                f"use at most {min(MAX_NODES, model.layers)}",
                pp_fixed,
            )
    pool = _pool(request, p)
    if request.instance_type is not None and pool:
        inst = pool[0]
        if tp_fixed is not None and tp_fixed > inst.gpu_count:
            p.add(
                "tensor_parallel_size",
                f"exceeds the {inst.gpu_count} GPUs of {inst.name}",
                f"use at most {inst.gpu_count}, or a larger instance",
                tp_fixed,
            )
        if pp_fixed is not None and pp_fixed > 1 and not inst.efa_supported:
            p.add(
                "pipeline_parallel_size",
                f"needs EFA across nodes and {inst.name} has none",
                "use an EFA-capable type (g5/g6/g6e 8xlarge and up, g7e 8xlarge and up, p4d, p4de, p5*, p6-*)",
                pp_fixed,
            )
        if _price(inst, request)[0] is None:
            p.add(
                "instance_type",
                f"{inst.name} has no {request.capacity} price in {request.region} in the catalog",
                "give its price with --price-source FILE, or choose another type / region",
                inst.name,
            )
        reason = capability_problem(model, dtype, request.kv_cache_dtype, inst)
        if reason:
            p.add("instance_type", reason, "choose a GPU that supports the format, or another checkpoint", inst.name)
    if pool and dtype == "fp8" and not any(i.gpu.fp8 for i in pool):
        p.add(
            "dtype",
            f"fp8 needs FP8 tensor cores and {', '.join(sorted({i.gpu.name for i in pool}))} have none",
            f"use an FP8-capable type ({_FP8_TYPES}), or --dtype int8 / int4 / bf16",
            dtype,
        )
    if pool and request.kv_cache_dtype == "fp8" and not any(i.gpu.fp8 for i in pool):
        p.add(
            "kv_cache_dtype",
            f"an fp8 KV cache needs an FP8-capable GPU; {', '.join(sorted({i.gpu.name for i in pool}))} are not",
            f"use --kv-cache-dtype auto, or an FP8-capable type ({_FP8_TYPES})",
            "fp8",
        )
    p.raise_if_any()

    explicit = request.instance_type is not None or tp_fixed is not None or pp_fixed is not None
    candidates: list[_Candidate] = []
    max_pp = min(MAX_NODES, model.layers)
    for inst in pool:
        hourly, _src = _price(inst, request)
        if hourly is None:
            continue
        tps = [tp_fixed] if tp_fixed is not None else [t for t in TP_SIZES if t <= inst.gpu_count]
        for tp in tps:
            if tp > inst.gpu_count:
                continue
            verdict = check_tp(model, tp, dtype)
            if not verdict.ok:
                continue
            pps = [pp_fixed] if pp_fixed is not None else list(range(1, max_pp + 1))
            for pp in pps:
                if pp > 1 and tp != inst.gpu_count:
                    continue  # multi-node plans use whole nodes
                if pp > 1 and pp_fixed is None and not inst.efa_supported:
                    break
                cand = _evaluate(model, dtype, request, inst, tp, pp, max_len, hourly * pp, verdict.expert_parallel)
                candidates.append(cand)
                if pp_fixed is None and cand.problem is None and cand.seqs_fit >= request.concurrency:
                    break  # more nodes of the same type only cost more

    # Preference tiers: one node before several (multi-node adds a placement group, an NCCL launch and
    # inter-node latency, so it is the answer only when no single node will do); within a tier
    # the cheapest wins. An explicit pin that runs but cannot hold the concurrency is served
    # with a lowered --max-num-seqs rather than refused.
    runnable = [c for c in candidates if c.problem is None]
    tiers = [
        [c for c in runnable if c.pp == 1 and c.seqs_fit >= request.concurrency],
        [c for c in runnable if c.pp == 1] if explicit else [],
        [c for c in runnable if c.pp > 1 and c.seqs_fit >= request.concurrency],
        [c for c in runnable if c.pp > 1] if explicit else [],
    ]
    tier = next((t for t in tiers if t), None)
    if tier is None:
        raise _no_fit(model, dtype, request, max_len, candidates, pool)
    warnings: list[str] = []
    if all(c.seqs_fit >= request.concurrency for c in tier):
        ranked = sorted(tier, key=_Candidate.key)
    else:
        ranked = sorted(tier, key=lambda c: (-c.seqs_fit, *c.key()))
        best = ranked[0]
        warnings.append(
            f"{_shortfall(best, request.concurrency, max_len)}: --max-num-seqs lowered to {best.seqs_fit}; "
            f"requests beyond that queue. Fix: --kv-cache-dtype fp8, a shorter --max-model-len, more replicas "
            f"or a larger instance"
        )
    ranked += sorted((c for c in runnable if c not in ranked and c.seqs_fit >= request.concurrency), key=_Candidate.key)

    chosen = ranked[0]
    return _plan(model, dtype, request, max_len, chosen, ranked[1:], candidates, warnings)


def _no_fit(
    model: ModelSpec,
    dtype: str,
    request: SizingRequest,
    max_len: int,
    candidates: list[_Candidate],
    pool: list[InstanceType],
) -> ConfigError:
    p = Problems(f"sizing {model.name}")
    runnable = [c for c in candidates if c.problem is None]
    if runnable:
        best = max(runnable, key=lambda c: (c.seqs_fit, -c.hourly))
        longest = max(runnable, key=lambda c: c.memory.kv_capacity_tokens // request.concurrency)
        max_len_fit = longest.memory.kv_capacity_tokens // request.concurrency // KV_BLOCK_TOKENS * KV_BLOCK_TOKENS
        p.add(
            "concurrency",
            f"{request.concurrency} sequences x {max_len} tokens of KV cache fit no instance in the selection",
            f"the largest concurrency that fits is {best.seqs_fit} ({best.inst.name}, TP {best.tp}, "
            f"PP {best.pp}); or keep {request.concurrency} with --max-model-len {max_len_fit} or less, "
            "--kv-cache-dtype fp8, or more replicas",
            request.concurrency,
        )
    elif not candidates:
        priced = [i for i in pool if _price(i, request)[0] is not None]
        if not priced:
            p.add(
                "capacity",
                f"no instance type of the selection has a {request.capacity} price in {request.region}",
                "give prices with --price-source FILE, or choose another region / capacity type",
                request.capacity,
            )
        else:
            reasons = sorted({check_tp(model, t, dtype).why for t in TP_SIZES if not check_tp(model, t, dtype).ok})
            p.add(
                "model",
                f"no valid tensor-parallel size for {_tp_label(model)} on the selected instance types: "
                + "; ".join(reasons[:3]),
                "choose instance types with a GPU count vLLM can split this model over",
                model.name,
            )
    else:
        reasons = sorted({c.problem or "" for c in candidates})
        emb, body = weight_bytes(model, dtype)
        need = (emb + body) / GIB
        fixes = []
        if dtype in ("bf16", "fp16"):
            fixes.append("quantize (--dtype fp8 on FP8-capable GPUs, int8 or int4)")
        if request.capacity == "spot":
            fixes.append("--capacity on-demand (multi-node plans are not offered on spot)")
        if (
            request.instance_type
            or request.instance_types
            or request.tensor_parallel_size
            or request.pipeline_parallel_size
        ):
            fixes.append("drop the instance / parallelism pins and let the engine choose")
        fixes.append("a larger --gpu-memory-utilization, if the GPU runs nothing else")
        p.add(
            "model",
            f"{model.name} in {dtype} ({need:.1f} GiB of weights) fits no configuration: " + "; ".join(reasons[:4]),
            "; or ".join(fixes),
            model.name,
        )
    return ConfigError(p.subject, p.problems)


def _why(loser: _Candidate, chosen: _Candidate) -> str:
    if loser.pp > 1 and chosen.pp == 1:
        return f"needs {loser.pp} nodes (${loser.hourly:.3f}/h); a single node is preferred when one holds the model"
    if loser.hourly > chosen.hourly + 1e-9:
        more = loser.hourly - chosen.hourly
        return f"costs ${more:.3f}/h more ({more / chosen.hourly:.0%})"
    if loser.node_gpus > chosen.node_gpus:
        return f"same price, {loser.node_gpus - chosen.node_gpus} more GPUs"
    if loser.inst.generation < chosen.inst.generation:
        return "same price and GPUs, older generation"
    return "same price, GPUs and generation; smaller tensor-parallel size"


def vllm_args(
    model: ModelSpec,
    dtype: str,
    request: SizingRequest,
    chosen: _Candidate,
    max_len: int,
    max_num_seqs: int,
) -> tuple[str, ...]:
    """The ``vllm serve`` arguments of a plan; every one is in vLLM 0.29.0's serve-args.json."""
    args = [
        "--tensor-parallel-size",
        str(chosen.tp),
        "--pipeline-parallel-size",
        str(chosen.pp),
        "--max-model-len",
        str(max_len),
        "--max-num-seqs",
        str(max_num_seqs),
        # vLLM refuses --max-num-seqs above --max-num-batched-tokens.
        "--max-num-batched-tokens",
        str(max(MAX_NUM_BATCHED_TOKENS, max_num_seqs)),
        "--gpu-memory-utilization",
        f"{chosen.util:g}",
    ]
    if model.quant_method:
        # Pre-quantized: vLLM reads quantization_config and picks the fastest kernel (Marlin
        # for AWQ/GPTQ); naming the method (--quantization awq) would force the slow one.
        pass
    elif dtype == "fp8":
        args += ["--quantization", "fp8"]
    elif dtype == "bf16" and not chosen.inst.gpu.bf16:
        args += ["--dtype", "float16"]
    elif dtype == "bf16":
        args += ["--dtype", "bfloat16"]
    elif dtype == "fp16":
        args += ["--dtype", "float16"]
    if request.kv_cache_dtype == "fp8":
        args += ["--kv-cache-dtype", "fp8"]
    if chosen.expert_parallel:
        args += ["--enable-expert-parallel"]
    return tuple(args)


def _measured(request: SizingRequest) -> tuple[float, int, str] | None:
    if request.throughput_from is None:
        return None
    from .calibration import measured_throughput

    return measured_throughput(Path(request.throughput_from))


def _plan(
    model: ModelSpec,
    dtype: str,
    request: SizingRequest,
    max_len: int,
    chosen: _Candidate,
    others: list[_Candidate],
    candidates: list[_Candidate],
    warnings: list[str],
) -> Plan:
    inst, tp, pp = chosen.inst, chosen.tp, chosen.pp
    if chosen.seqs_fit >= request.concurrency:
        max_num_seqs = max(request.concurrency, min(MAX_NUM_SEQS_CAP, chosen.seqs_fit))
    else:
        max_num_seqs = chosen.seqs_fit
    runners: list[RunnerUp] = []
    seen = {inst.name}
    for c in others:
        if c.inst.name in seen:
            continue
        seen.add(c.inst.name)
        runners.append(
            RunnerUp(
                instance_type=c.inst.name,
                tensor_parallel_size=c.tp,
                pipeline_parallel_size=c.pp,
                hourly_usd=c.hourly,
                fits=True,
                why=_why(c, chosen),
            )
        )
        if len(runners) == 3:
            break
    cheaper = sorted(
        (
            c
            for c in candidates
            if c.hourly < chosen.hourly and c.inst.name not in seen and (c.problem or c.seqs_fit < request.concurrency)
        ),
        key=_Candidate.key,
    )
    for c in cheaper:
        if c.inst.name in seen:
            continue
        seen.add(c.inst.name)
        why = c.problem or _shortfall(c, request.concurrency, max_len)
        runners.append(
            RunnerUp(
                instance_type=c.inst.name,
                tensor_parallel_size=c.tp,
                pipeline_parallel_size=c.pp,
                hourly_usd=c.hourly,
                fits=False,
                why=why,
            )
        )
        if len(runners) == 6:
            break

    emb, body = weight_bytes(model, dtype)
    weights_total = emb + body
    kv_model = model.kv_bytes_per_token(1.0 if request.kv_cache_dtype == "fp8" else 2.0)
    hourly_replica = chosen.hourly
    _, price_src = _price(inst, request)
    batch = max_num_seqs if max_num_seqs > 0 else 1
    measured = _measured(request)
    if measured is not None:
        tps, level_concurrency, where = measured
        estimate = ThroughputEstimate(
            single_stream_tokens_per_s=tps / max(level_concurrency, 1),
            batch=level_concurrency,
            batch_tokens_per_s=tps,
            usd_per_1m_tokens_at_bound=token_cost(hourly_replica, tps).usd_per_1m_tokens,
            basis=f"MEASURED: {tps:.1f} output tokens/s at concurrency {level_concurrency} ({where})",
            measured=True,
        )
    else:
        # Roofline: each decode step reads the active weights once and every sequence's KV cache.
        bw = inst.gpu.memory_bandwidth_gbps * 1e9
        active_bytes = weights_total * model.active_params / max(model.params, 1)
        single = bw * tp / active_bytes
        kv_read = batch * kv_model * max_len / 2
        batch_tps = batch * bw * tp * pp / (active_bytes + kv_read)
        estimate = ThroughputEstimate(
            single_stream_tokens_per_s=single,
            batch=batch,
            batch_tokens_per_s=batch_tps,
            usd_per_1m_tokens_at_bound=token_cost(hourly_replica, batch_tps).usd_per_1m_tokens,
            basis=(
                f"UPPER BOUND from a memory-bandwidth roofline ({inst.gpu.memory_bandwidth_gbps:g} GB/s per "
                f"{inst.gpu.name}; weights read once per step, KV at half of max-model-len); "
                "measured throughput (`size --throughput-from BENCH_DIR`) always wins"
            ),
        )
    notes: list[str] = []
    if dtype in ("int8", "int4") and not model.quant_method:
        notes.append(
            f"serve a pre-quantized {dtype} checkpoint of {model.hf_id} (AWQ/GPTQ or compressed-tensors); "
            "vLLM reads the method from its config.json"
        )
    if dtype == "fp8" and not model.quant_method:
        notes.append("--quantization fp8 quantizes the BF16 checkpoint at load time (dynamic FP8 W8A8)")
    if model.quant_method:
        notes.append(
            f"pre-quantized checkpoint ({model.quant_method}): vLLM reads its quantization_config and picks the "
            "kernel itself, so no --quantization is passed"
        )
    if chosen.expert_parallel:
        notes.append(
            f"--enable-expert-parallel: the expert width {model.moe_intermediate_size} cannot be split over TP {tp} "
            f"under the checkpoint's quantization blocks/groups, so each GPU holds {model.experts // tp} whole experts"
        )
    if model.sliding_window and model.window_layers:
        notes.append(
            f"{model.window_layers} of {model.layers} layers use a {model.sliding_window}-token sliding window and "
            "keep only that much KV cache per sequence"
        )
    if pp > 1:
        notes.append(
            f"{pp} nodes in one EFA cluster placement group; vLLM runs pipeline stages across "
            "nodes (LeaderWorkerSet, native multi-node launch over EFA)"
        )
    if request.capacity == "spot" and not request.prices:
        notes.append(
            "hourly_usd is the on-demand price (an upper bound for spot): spot prices move every few minutes and "
            "are not in the offline catalog; give them with --price-source FILE"
        )
    if dtype == "bf16" and not inst.gpu.bf16:
        notes.append(f"{inst.gpu.name} has no BF16: vLLM serves the weights in float16 (--dtype float16)")
    if chosen.util < DEFAULT_GPU_MEMORY_UTILIZATION and request.gpu_memory_utilization is None:
        notes.append(
            f"--gpu-memory-utilization {chosen.util:g}: on a {inst.gpu.memory_gib:.1f} GiB GPU 10 % cannot hold "
            "the CUDA context and graphs"
        )
    if tp < inst.gpu_count:
        notes.append(f"uses {tp} of {inst.name}'s {inst.gpu_count} GPUs ({_tp_label(model)})")
    return Plan(
        model=model.name,
        hf_id=model.hf_id,
        dtype=dtype,
        kv_cache_dtype=request.kv_cache_dtype,
        instance_type=inst.name,
        gpu=inst.gpu.name,
        tensor_parallel_size=tp,
        pipeline_parallel_size=pp,
        nodes=pp,
        gpus_per_node=tp,
        replicas=request.replicas,
        max_model_len=max_len,
        concurrency=request.concurrency,
        max_num_seqs=max_num_seqs,
        weights_gib=weights_total / GIB,
        kv_cache_gib=request.concurrency * chosen.memory.kv_bytes_per_sequence_gpu * tp * pp / GIB,
        kv_cache_allocated_gib=chosen.memory.kv_cache_gib * tp * pp,
        hourly_usd=hourly_replica * request.replicas,
        hourly_usd_per_replica=hourly_replica,
        capacity=request.capacity,
        price_source=price_src,
        placement_group=pp > 1,
        vllm_args=vllm_args(model, dtype, request, chosen, max_len, max_num_seqs),
        memory=chosen.memory,
        throughput_estimate=estimate,
        expert_parallel=chosen.expert_parallel,
        gpu_memory_utilization=chosen.util,
        region=request.region,
        efa_interfaces=inst.max_efa_interfaces if pp > 1 else 0,
        runners_up=tuple(runners),
        warnings=tuple(warnings),
        notes=tuple(notes),
    )


__all__ = [
    "CAPACITY_TYPES",
    "DTYPES",
    "KV_CACHE_DTYPES",
    "MemoryBudget",
    "Plan",
    "Problem",
    "RunnerUp",
    "SizingRequest",
    "ThroughputEstimate",
    "capability_problem",
    "kv_bytes_per_token_per_gpu",
    "size",
    "vllm_args",
    "weight_breakdown",
    "weight_bytes",
]
