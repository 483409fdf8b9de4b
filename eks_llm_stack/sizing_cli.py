"""``eks-llm-stack size`` and ``eks-llm-stack cost``: the sizing engine and the token cost formula."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    from .sizing import CAPACITY_TYPES, DTYPES, KV_CACHE_DTYPES

    s = sub.add_parser("size", help="size a model: instance type, parallelism, vLLM arguments and price")
    s.add_argument("model", nargs="?", help="catalog name, Hugging Face id, or path to a config.json")
    s.add_argument("--dtype", choices=DTYPES, default=None, help="weight dtype (default: the checkpoint's own)")
    s.add_argument("--kv-cache-dtype", choices=KV_CACHE_DTYPES, default="auto")
    s.add_argument("--max-model-len", type=int, default=None, help="default: min(model limit, 4096)")
    s.add_argument("--concurrency", type=int, default=1, help="full-length sequences one replica holds (default 1)")
    s.add_argument("--capacity", choices=CAPACITY_TYPES, default="on-demand")
    s.add_argument("--instance-type", default=None, help="pin the instance type")
    s.add_argument("--instance-types", default="", help="comma-separated types or families to choose from")
    s.add_argument("--tensor-parallel-size", type=int, default=None)
    s.add_argument("--pipeline-parallel-size", type=int, default=None)
    s.add_argument("--gpu-memory-utilization", type=float, default=0.90)
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--list-models", action="store_true", help="list the model catalog and exit")
    s.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    s.set_defaults(func=_size)

    c = sub.add_parser("cost", help="minutes and dollars per 1M generated tokens")
    c.add_argument("--instance", required=True, help="instance type (its catalog price is the default $/hour)")
    c.add_argument("--tokens-per-second", type=float, required=True, help="measured output tokens/s of the whole test")
    c.add_argument("--hourly-usd", type=float, default=None, help="price per hour (default: catalog on-demand price)")
    c.add_argument("--capacity", choices=CAPACITY_TYPES, default="on-demand")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cost)


def _size(args: argparse.Namespace) -> int:
    from .catalog import MODELS
    from .errors import ConfigError, Problem
    from .sizing import SizingRequest, size

    if args.list_models:
        return _list_models(MODELS, args.json)
    if not args.model:
        raise ConfigError(
            "size", [Problem("model", "is required", "name a catalog model (see --list-models) or a config.json path")]
        )
    request = SizingRequest(
        model=args.model,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        max_model_len=args.max_model_len,
        concurrency=args.concurrency,
        capacity=args.capacity,
        instance_type=args.instance_type,
        instance_types=tuple(t.strip() for t in args.instance_types.split(",") if t.strip()),
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        replicas=args.replicas,
    )
    plan = size(request)
    if args.json:
        print(plan.to_json())
        return 0
    _print_plan(plan)
    return 0


def _list_models(models: dict, as_json: bool) -> int:
    rows = [(m.name, m.hf_id, m.params / 1e9, m.max_positions, m.native_dtype) for m in models.values()]
    if as_json:
        print(
            json.dumps(
                [dict(zip(("name", "hf_id", "params_b", "max_positions", "dtype"), r, strict=True)) for r in rows],
                indent=2,
            )
        )
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title="model catalog")
    for col in ("name", "Hugging Face id", "params (B)", "max positions", "weights"):
        t.add_column(col)
    for name, hf, params, pos, dtype in rows:
        t.add_row(name, hf, f"{params:.2f}", str(pos), dtype)
    Console().print(t)
    return 0


def _print_plan(plan: object) -> None:
    from rich.console import Console
    from rich.table import Table

    from .sizing import Plan

    assert isinstance(plan, Plan)
    con = Console()
    m = plan.memory
    head = Table(title=f"{plan.model} ({plan.dtype}, KV {plan.kv_cache_dtype}) - recommended", show_header=False)
    head.add_column("what")
    head.add_column("value")
    head.add_row("instance type", f"{plan.instance_type} ({plan.gpu})")
    head.add_row("tensor / pipeline parallel", f"{plan.tensor_parallel_size} / {plan.pipeline_parallel_size}")
    head.add_row("nodes x GPUs per node", f"{plan.nodes} x {plan.gpus_per_node}")
    head.add_row("replicas", str(plan.replicas))
    head.add_row("max-model-len / max-num-seqs", f"{plan.max_model_len} / {plan.max_num_seqs}")
    head.add_row("price", f"${plan.hourly_usd:.4f}/h ({plan.capacity}; {plan.price_source})")
    head.add_row("vLLM arguments", " ".join(plan.vllm_args))
    con.print(head)

    mem = Table(title="memory budget per GPU (GiB)")
    mem.add_column("line")
    mem.add_column("GiB", justify="right")
    for label, value in (
        (f"GPU memory x {m.gpu_memory_utilization:g}", m.usable_gib),
        ("weights (this GPU's shard)", -m.weights_gib),
        ("CUDA context", -m.cuda_context_gib),
        ("NCCL buffers", -m.distributed_gib),
        ("activation peak", -m.activation_gib),
        ("CUDA graphs", -m.cuda_graphs_gib),
        ("= KV cache", m.kv_cache_gib),
        (f"KV needed: {plan.concurrency} x {plan.max_model_len} tokens", m.kv_required_gib),
        ("headroom outside vLLM", m.headroom_gib),
    ):
        mem.add_row(label, f"{value:.2f}")
    con.print(mem)
    con.print(
        f"weights {plan.weights_gib:.2f} GiB in all; KV cache {m.kv_bytes_per_token_model / 1024:.1f} KiB per token "
        f"({m.kv_bytes_per_token_gpu / 1024:.1f} KiB on each GPU); {m.kv_capacity_tokens} tokens fit; "
        f"host memory {m.host_required_gib:.1f} of {m.host_memory_gib:g} GiB needed to load"
    )
    est = plan.throughput_estimate
    con.print(
        f"[bold]estimate, not a measurement:[/bold] decode <= {est.single_stream_tokens_per_s:.0f} tok/s for one "
        f"stream, <= {est.batch_tokens_per_s:.0f} tok/s at batch {est.batch} "
        f"(>= ${est.usd_per_1m_tokens_at_bound:.3f} per 1M tokens). {est.basis}"
    )
    if plan.runners_up:
        ru = Table(title="runners-up")
        for col in ("instance type", "TP", "PP", "$/h", "fits", "why not"):
            ru.add_column(col)
        for r in plan.runners_up:
            ru.add_row(
                r.instance_type,
                str(r.tensor_parallel_size),
                str(r.pipeline_parallel_size),
                f"{r.hourly_usd:.3f}",
                "yes" if r.fits else "no",
                r.why,
            )
        con.print(ru)
    for w in plan.warnings:
        con.print(f"[yellow]warning:[/yellow] {w}")
    for n in plan.notes:
        con.print(f"note: {n}")


def _cost(args: argparse.Namespace) -> int:
    from .catalog import get_instance
    from .errors import ConfigError, Problem
    from .sizing.cost import token_cost

    inst = get_instance(args.instance)
    if args.hourly_usd is None and args.capacity == "spot":
        raise ConfigError(
            "cost",
            [
                Problem(
                    "hourly_usd",
                    "is required with --capacity spot",
                    "spot prices change every few minutes and are not in the offline catalog; pass the current one, "
                    f"e.g. from `aws ec2 describe-spot-price-history --instance-types {inst.name}`",
                )
            ],
        )
    hourly = inst.on_demand_usd if args.hourly_usd is None else args.hourly_usd
    source = f"{inst.price_source} ({inst.price_date})" if args.hourly_usd is None else "--hourly-usd"
    tc = token_cost(hourly, args.tokens_per_second)
    out = {
        "instance_type": inst.name,
        "capacity": args.capacity,
        "hourly_usd": tc.hourly_usd,
        "price_source": source,
        "tokens_per_second": tc.tokens_per_second,
        "minutes_per_1m_tokens": tc.minutes_per_1m_tokens,
        "usd_per_1m_tokens": tc.usd_per_1m_tokens,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"cost of 1M generated tokens on {inst.name}")
    for col in ("$/hour", "tokens/s", "minutes per 1M", "$ per 1M", "price source"):
        t.add_column(col)
    t.add_row(
        f"{tc.hourly_usd:.4f}",
        f"{tc.tokens_per_second:g}",
        f"{tc.minutes_per_1m_tokens:.2f}",
        f"{tc.usd_per_1m_tokens:.4f}",
        source,
    )
    Console(file=sys.stdout).print(t)
    return 0
