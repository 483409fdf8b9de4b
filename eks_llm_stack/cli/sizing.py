"""``eks-llm-stack size`` and ``eks-llm-stack cost``: the sizing engine and the token cost formula."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from ..sizing import CAPACITY_TYPES, DTYPES, KV_CACHE_DTYPES

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
    s.add_argument(
        "--gpu-memory-utilization", type=float, default=None, help="in (0, 1); default 0.90, lower on small GPUs"
    )
    s.add_argument("--replicas", type=int, default=1)
    s.add_argument("--region", default=None, help="region of the catalog's on-demand prices (default us-east-1)")
    s.add_argument(
        "--price-source", default=None, help="YAML/JSON file of USD/hour by instance type (spot, Capacity Block, ...)"
    )
    s.add_argument(
        "--throughput-from", default=None, help="a 'bench run' output directory: measured throughput for the cost"
    )
    s.add_argument(
        "--emit-pool", action="store_true", help="print the profile fragment (GPU pool, FSx) the plan needs and exit"
    )
    s.add_argument("--list-models", action="store_true", help="list the model catalog and exit")
    s.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    s.set_defaults(func=_size)

    c = sub.add_parser("cost", help="minutes and dollars per 1M generated tokens")
    c.add_argument("--instance", required=True, help="instance type (its catalog price is the default $/hour)")
    c.add_argument("--tokens-per-second", type=float, default=None, help="measured output tokens/s of the whole test")
    c.add_argument("--throughput-from", default=None, help="a 'bench run' output directory (its best level's tokens/s)")
    c.add_argument("--price-source", default=None, help="YAML/JSON file of USD/hour by instance type")
    c.add_argument("--hourly-usd", type=float, default=None, help="price per hour (default: catalog on-demand price)")
    c.add_argument("--capacity", choices=CAPACITY_TYPES, default="on-demand")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_cost)

    cat = sub.add_parser("catalog", help="the GPU instance catalog")
    csub = cat.add_subparsers(dest="catalog_command", required=True)
    r = csub.add_parser("refresh", help="rebuild the catalog snapshot from Karpenter's generated EC2 data")
    r.add_argument(
        "--instance-types-json", default=None, help="derived-gpu-efa-instance-types.json (default: vendored)"
    )
    r.add_argument("--prices-json", default=None, help="derived-on-demand-prices.json (default: vendored)")
    r.add_argument("--out", default=None, help="where to write (default: the package's gpu-instances.json)")
    r.add_argument("--check", action="store_true", help="exit 1 if the snapshot differs, write nothing")
    r.set_defaults(func=_catalog_refresh)


def _size(args: argparse.Namespace) -> int:
    from ..catalog import MODELS
    from ..errors import ConfigError, Problem
    from ..sizing import SizingRequest, size

    if args.list_models:
        return _list_models(MODELS, args.json)
    if not args.model:
        raise ConfigError(
            "size", [Problem("model", "is required", "name a catalog model (see --list-models) or a config.json path")]
        )
    prices: dict[str, float] = {}
    capacity, region = args.capacity, args.region
    if args.price_source:
        from ..sizing.prices import load_price_file

        prices, file_capacity, file_region = load_price_file(args.price_source)
        capacity = file_capacity if file_capacity and args.capacity == "on-demand" else capacity
        region = region or file_region
    request = SizingRequest(
        model=args.model,
        dtype=args.dtype,
        kv_cache_dtype=args.kv_cache_dtype,
        max_model_len=args.max_model_len,
        concurrency=args.concurrency,
        capacity=capacity,
        instance_type=args.instance_type,
        instance_types=tuple(t.strip() for t in args.instance_types.split(",") if t.strip()),
        tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size,
        gpu_memory_utilization=args.gpu_memory_utilization,
        replicas=args.replicas,
        region=region or "us-east-1",
        prices=prices,
        price_source=args.price_source,
        throughput_from=args.throughput_from,
    )
    plan = size(request)
    if args.emit_pool:
        from ..sizing.pool import profile_fragment_yaml

        print(profile_fragment_yaml(plan), end="")
        return 0
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
    from rich.table import Table

    from .console import console

    t = Table(title="model catalog")
    for col in ("name", "Hugging Face id", "params (B)", "max positions", "weights"):
        t.add_column(col)
    for name, hf, params, pos, dtype in rows:
        t.add_row(name, hf, f"{params:.2f}", str(pos), dtype)
    console().print(t)
    return 0


def _print_plan(plan: object) -> None:
    from rich.table import Table

    from ..sizing import Plan
    from .console import console

    assert isinstance(plan, Plan)
    con = console()
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
    from ..catalog import get_instance
    from ..errors import ConfigError, Problem
    from ..sizing.cost import token_cost

    inst = get_instance(args.instance)
    hourly: float | None = args.hourly_usd
    source = "--hourly-usd"
    if hourly is None and args.price_source:
        from ..sizing.prices import load_price_file

        prices, _capacity, _region = load_price_file(args.price_source)
        hourly = prices.get(inst.name, prices.get(inst.family))
        source = f"{args.price_source}"
    if hourly is None and args.capacity == "on-demand":
        hourly, source = inst.on_demand_usd, f"{inst.price_source} ({inst.price_date})"
    if hourly is None:
        raise ConfigError(
            "cost",
            [
                Problem(
                    "hourly_usd",
                    f"no {args.capacity} price for {inst.name} in the catalog",
                    "pass --hourly-usd or --price-source FILE (spot and Capacity Block prices change and are not "
                    f"offline), e.g. from `aws ec2 describe-spot-price-history --instance-types {inst.name}`",
                )
            ],
        )
    tokens_per_second = args.tokens_per_second
    throughput_source = "--tokens-per-second"
    if args.throughput_from:
        from ..sizing.calibration import measured_throughput

        tokens_per_second, _conc, throughput_source = measured_throughput(Path(args.throughput_from))
    if tokens_per_second is None:
        raise ConfigError(
            "cost",
            [
                Problem(
                    "tokens_per_second",
                    "is required",
                    "pass --tokens-per-second X or --throughput-from BENCH_DIR (a 'bench run' output directory)",
                )
            ],
        )
    tc = token_cost(hourly, tokens_per_second)
    out = {
        "instance_type": inst.name,
        "capacity": args.capacity,
        "hourly_usd": tc.hourly_usd,
        "price_source": source,
        "tokens_per_second": tc.tokens_per_second,
        "throughput_source": throughput_source,
        "minutes_per_1m_tokens": tc.minutes_per_1m_tokens,
        "usd_per_1m_tokens": tc.usd_per_1m_tokens,
    }
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    from rich.table import Table

    from .console import console

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
    console().print(t)
    return 0


def _catalog_refresh(args: argparse.Namespace) -> int:
    import json as _json

    from ..catalog.refresh import INSTANCE_TYPES_JSON, PRICES_JSON, SNAPSHOT, build_snapshot, write_snapshot

    snap = build_snapshot(
        Path(args.instance_types_json) if args.instance_types_json else INSTANCE_TYPES_JSON,
        Path(args.prices_json) if args.prices_json else PRICES_JSON,
    )
    out = Path(args.out) if args.out else SNAPSHOT
    if args.check:
        current = _json.loads(out.read_text(encoding="utf-8")) if out.is_file() else None
        if current != snap:
            print(f"{out} is out of date: run 'eks-llm-stack catalog refresh'")
            return 1
        print(f"{out} is current ({len(snap['instances'])} instance types)")
        return 0
    write_snapshot(snap, out)
    print(f"wrote {out}: {len(snap['instances'])} instance types, prices generated {snap['price_generated']}")
    return 0
