"""``eks-llm-stack bench run``, ``bench report`` and ``simulate``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError, Problems

_CLOSED_LOOP_DEFAULT_REQUESTS = 100


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    bench = sub.add_parser("bench", help="load-test an OpenAI-compatible model server and report the results")
    bsub = bench.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])

    run = bsub.add_parser(
        "run",
        help="run a load test; results go to --out DIR",
        description="Closed loop (--concurrency, a sweep) or open loop (--rate), or a --scenario.",
    )
    run.add_argument("--url", required=True, help="base URL of the server, e.g. http://vllm.models.svc:8000")
    run.add_argument("--model", required=True, help="model name to send")
    run.add_argument(
        "--api", choices=("completions", "chat"), default="completions", help="OpenAI API to use (default completions)"
    )
    run.add_argument("--scenario", help="baseline | saturation | production | dataset | long-context")
    run.add_argument("--concurrency", help="closed loop: comma-separated levels, e.g. 1,5,10,20,50,100")
    run.add_argument("--rate", type=float, help="open loop: mean arrivals per second")
    run.add_argument("--arrival", choices=("poisson", "constant"), help="open-loop arrivals (default poisson)")
    run.add_argument("--requests", type=int, help="requests per level (closed loop default 100 without --duration)")
    run.add_argument("--duration", type=float, help="seconds per level")
    run.add_argument(
        "--warmup", type=int, default=0, help="requests per level sent first and left out of its figures (default 0)"
    )
    run.add_argument("--prompt-tokens", help="N, uniform:LO:HI, normal:MEAN:SD or choice:A,B,C (default 128)")
    run.add_argument("--output-tokens", help="as --prompt-tokens (default 128)")
    run.add_argument("--dataset", type=Path, help="ShareGPT JSON or JSONL of prompts")
    run.add_argument("--instance", help="EC2 instance type whose on-demand price costs the tokens")
    run.add_argument("--hourly-usd", type=float, help="price per hour to cost the tokens with")
    run.add_argument("--slo-ttft-ms", type=float, default=500.0, help="goodput TTFT limit (default 500)")
    run.add_argument("--slo-itl-ms", type=float, default=50.0, help="goodput ITL limit (default 50)")
    run.add_argument("--timeout", type=float, default=600.0, help="per-request timeout in seconds (default 600)")
    run.add_argument("--seed", type=int, default=0, help="seed of prompts, lengths and arrivals (default 0)")
    run.add_argument("--no-ignore-eos", action="store_true", help="let the model stop early (default: ignore_eos)")
    run.add_argument("--api-key-env", help="environment variable holding a bearer token for the server")
    run.add_argument("--out", type=Path, help="results directory (default bench-results/<UTC time>)")
    run.add_argument(
        "--upload-s3",
        help="also upload the results to s3://BUCKET/PREFIX (credentials from the environment, e.g. EKS pod identity)",
    )
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--no-progress", action="store_true", help="no live progress display")
    run.set_defaults(func=_run)

    report = bsub.add_parser("report", help="re-render one run's table and plots, or compare several runs")
    report.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    report.add_argument("--out", type=Path, help="where plots go (default: DIR for one run, DIR/compare for several)")
    report.add_argument("--no-plots", action="store_true")
    report.set_defaults(func=_report)

    sim = sub.add_parser("simulate", help="serve a vLLM-compatible simulator with known timings")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sim.add_argument("--model", default="simulated-model", help="model name served (default simulated-model)")
    sim.add_argument("--ttft-ms", type=float, default=50.0, help="time to first token (default 50)")
    sim.add_argument("--itl-ms", type=float, default=10.0, help="time between tokens (default 10)")
    sim.add_argument("--tokens-per-chunk", type=int, default=1, help="tokens per streamed chunk (default 1)")
    sim.add_argument("--max-concurrency", type=int, help="requests generating at once; more queue (default: no limit)")
    sim.add_argument("--error-rate", type=float, default=0.0, help="share answered with HTTP 500 (default 0)")
    sim.add_argument("--disconnect-rate", type=float, default=0.0, help="share cut mid-stream (default 0)")
    sim.add_argument("--malformed-rate", type=float, default=0.0, help="share with a malformed SSE event (default 0)")
    sim.add_argument("--stall-rate", type=float, default=0.0, help="share never answered (default 0)")
    sim.add_argument("--seed", type=int, help="seed of the fault draws (default: random)")
    sim.set_defaults(func=_simulate)


# -- bench run ------------------------------------------------------------------------------------


def plan_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Validate the options of ``bench run`` (every problem at once) and return what to run."""
    from .harness import Target
    from .results import Price
    from .workload import SCENARIOS, LengthSpec, LevelSpec, load_dataset, scenario_levels

    p = Problems("bench run")
    if not str(args.url).startswith(("http://", "https://")):
        p.add(
            "--url",
            "must be an http:// or https:// URL",
            "pass the server's base URL, e.g. http://127.0.0.1:8000",
            args.url,
        )
    chosen = [
        n
        for n, v in (("--scenario", args.scenario), ("--concurrency", args.concurrency), ("--rate", args.rate))
        if v is not None
    ]
    if len(chosen) != 1:
        p.add(
            " / ".join(chosen) or "--scenario/--concurrency/--rate",
            "exactly one way to set the load is needed" if not chosen else "these set the load in different ways",
            "pass one of --scenario NAME, --concurrency 1,5,10 (closed loop) or --rate R (open loop)",
        )
    if args.scenario is not None and args.scenario not in SCENARIOS:
        p.add("--scenario", "is not a known scenario", f"use one of {', '.join(SCENARIOS)}", args.scenario)
    concurrency: tuple[int, ...] = ()
    if args.concurrency is not None:
        try:
            concurrency = tuple(int(x) for x in str(args.concurrency).split(","))
            if any(c < 1 for c in concurrency):
                raise ValueError
        except ValueError:
            p.add(
                "--concurrency",
                "must be positive integers separated by commas",
                "e.g. --concurrency 1,5,10,20",
                args.concurrency,
            )
    if args.rate is not None and not args.rate > 0:
        p.add("--rate", "must be a positive number of requests per second", "e.g. --rate 5", args.rate)
    if args.arrival is not None and args.rate is None:
        p.add("--arrival", "only applies to an open loop", "add --rate R, or drop --arrival", args.arrival)
    if args.rate is not None and args.requests is None and args.duration is None:
        p.add("--rate", "an open loop needs a bound", "add --duration S (and/or --requests N)", args.rate)
    if args.warmup is not None and args.warmup < 0:
        p.add("--warmup", "must be 0 or more", "pass how many requests to leave out per level, e.g. 128", args.warmup)
    for flag, value in (
        ("--requests", args.requests),
        ("--duration", args.duration),
        ("--timeout", args.timeout),
        ("--slo-ttft-ms", args.slo_ttft_ms),
        ("--slo-itl-ms", args.slo_itl_ms),
    ):
        if value is not None and not value > 0:
            p.add(flag, "must be positive", f"pass a positive {flag[2:]}, or leave it out for the default", value)
    prompt = LengthSpec.parse(args.prompt_tokens, "--prompt-tokens", p) if args.prompt_tokens else None
    output = LengthSpec.parse(args.output_tokens, "--output-tokens", p) if args.output_tokens else None
    if args.instance and args.hourly_usd is not None:
        p.add("--instance / --hourly-usd", "both give a price", "pass one of them", (args.instance, args.hourly_usd))
    if args.hourly_usd is not None and not args.hourly_usd > 0:
        p.add("--hourly-usd", "must be a positive price", "e.g. --hourly-usd 1.212", args.hourly_usd)
    if args.scenario == "dataset" and args.dataset is None:
        p.add("--dataset", "is required by the dataset scenario", "pass --dataset FILE (ShareGPT JSON or JSONL)")
    if args.upload_s3 is not None and not _s3_parts(args.upload_s3):
        p.add("--upload-s3", "is not an S3 URI", "pass s3://BUCKET/PREFIX", args.upload_s3)
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            p.add(
                "--api-key-env",
                "names an unset or empty environment variable",
                "export it, or drop the option",
                args.api_key_env,
            )
    prompts = None
    if args.dataset is not None:
        try:
            prompts = load_dataset(args.dataset)
        except ConfigError as exc:
            p.extend(exc, "--dataset")
    price = None
    if args.instance:
        try:
            from ..catalog import get_instance
        except ImportError:
            p.add(
                "--instance",
                "the instance catalog is not available in this installation",
                "pass --hourly-usd PRICE instead",
                args.instance,
            )
        else:
            try:
                inst = get_instance(args.instance)
                if inst.on_demand_usd is None:
                    p.add(
                        "--instance",
                        f"{inst.name} has no on-demand price in the catalog (Capacity Blocks only)",
                        "pass --hourly-usd PRICE instead",
                        args.instance,
                    )
                else:
                    price = Price(hourly_usd=inst.on_demand_usd, source=f"instance {args.instance} (catalog on-demand)")
            except ConfigError as exc:
                p.extend(exc, "--instance")
    elif args.hourly_usd is not None and args.hourly_usd > 0:
        price = Price(hourly_usd=args.hourly_usd, source="--hourly-usd")
    p.raise_if_any()

    def bounded(spec: LevelSpec) -> LevelSpec:
        kw: dict[str, Any] = {}
        if args.requests is not None:
            kw["requests"] = args.requests
        if args.duration is not None:
            kw["duration_s"] = args.duration
            if args.requests is None:
                kw["requests"] = None
        if args.warmup:
            kw["warmup"] = args.warmup
        if prompt is not None:
            kw["prompt"] = prompt
        if output is not None:
            kw["output"] = output
        return dataclasses.replace(spec, **kw)

    if args.scenario:
        levels = tuple(
            bounded(s)
            for s in scenario_levels(
                args.scenario, prompt=prompt, output=output, dataset_size=len(prompts) if prompts else None
            )
        )
    elif concurrency:
        default = None if (args.requests or args.duration) else _CLOSED_LOOP_DEFAULT_REQUESTS
        levels = tuple(bounded(LevelSpec(concurrency=c, requests=default)) for c in concurrency)
    else:
        levels = (bounded(LevelSpec(rate=args.rate, arrival=args.arrival or "poisson")),)
    target = Target(
        url=args.url,
        model=args.model,
        api=args.api,
        timeout_s=args.timeout,
        ignore_eos=not args.no_ignore_eos,
        api_key=api_key,
    )
    return {"target": target, "levels": levels, "prompts": prompts, "price": price}


def _s3_parts(uri: str) -> tuple[str, str] | None:
    if not uri.startswith("s3://"):
        return None
    bucket, _, prefix = uri[5:].partition("/")
    return (bucket, prefix.strip("/")) if bucket else None


def upload_results(out_dir: Path, uri: str) -> list[str]:
    """Upload every file of ``out_dir`` under the S3 URI; returns the keys written."""
    import boto3

    parts = _s3_parts(uri)
    assert parts is not None  # validated with the other options
    bucket, prefix = parts
    s3 = boto3.client("s3")
    keys = []
    for path in sorted(out_dir.iterdir()):
        if path.is_file():
            key = f"{prefix}/{path.name}" if prefix else path.name
            s3.upload_file(str(path), bucket, key)
            keys.append(key)
    return keys


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from rich.console import Console

    from .harness import RunState, run_levels
    from .metrics import Slo
    from .plots import render_plots
    from .progress import LiveProgress, summary_table
    from .results import build_summary, write_results

    plan = plan_from_args(args)
    started = dt.datetime.now(dt.UTC)
    out_dir: Path = args.out or Path("bench-results") / started.strftime("%Y%m%dT%H%M%SZ")
    console = Console(stderr=True)
    state = RunState()
    interrupted = False
    with LiveProgress(console, enabled=not args.no_progress) as live:
        try:
            asyncio.run(
                run_levels(
                    plan["target"],
                    plan["levels"],
                    state=state,
                    prompts=plan["prompts"],
                    seed=args.seed,
                    on_done=live.on_done,
                    on_level=live.start_level,
                )
            )
        except KeyboardInterrupt:
            interrupted = True
    summary = build_summary(
        state,
        target=plan["target"],
        levels=plan["levels"],
        slo=Slo(ttft_ms=args.slo_ttft_ms, itl_ms=args.slo_itl_ms),
        price=plan["price"],
        scenario=args.scenario,
        interrupted=interrupted,
        started_at=started,
    )
    paths = write_results(out_dir, summary, state)
    if not args.no_plots and summary["levels"]:
        paths += render_plots([(out_dir.name, summary)], out_dir)
    Console(width=None if sys.stdout.isatty() else 160).print(
        summary_table(summary, title=f"{plan['target'].model} ({plan['target'].api})")
    )
    if summary["knee"]:
        console.print(f"knee: level {summary['knee']['level']} - {summary['knee_definition']}")
    console.print(f"results: {', '.join(str(p) for p in paths)}")
    if args.upload_s3:
        keys = upload_results(out_dir, args.upload_s3)
        console.print(f"uploaded {len(keys)} files to {args.upload_s3}")
    if interrupted:
        console.print("interrupted: results hold what was measured until Ctrl-C")
        return 130
    return 0 if any(lv["completed"] for lv in summary["levels"]) else 1


# -- bench report ---------------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .plots import render_plots
    from .progress import comparison_table, summary_table
    from .results import load_summary

    docs = [load_summary(d) for d in args.dirs]
    labels: list[str] = []
    for d in args.dirs:
        label = d.resolve().name or str(d)
        labels.append(label if label not in labels else f"{label}#{len(labels) + 1}")
    runs = list(zip(labels, docs, strict=True))
    console = Console()
    for label, doc in runs:
        console.print(summary_table(doc, title=label))
    if len(runs) > 1:
        console.print(comparison_table(runs))
    if not args.no_plots:
        out = args.out or (args.dirs[0] if len(runs) == 1 else args.dirs[0] / "compare")
        paths = render_plots(runs, out)
        console.print(f"plots: {', '.join(str(p) for p in paths)}")
    return 0


# -- simulate -------------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from .simulator import SimulatorConfig, serve

    config = SimulatorConfig(
        model=args.model,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        tokens_per_chunk=args.tokens_per_chunk,
        max_concurrency=args.max_concurrency,
        error_rate=args.error_rate,
        disconnect_rate=args.disconnect_rate,
        malformed_rate=args.malformed_rate,
        stall_rate=args.stall_rate,
        seed=args.seed,
    )
    try:
        asyncio.run(serve(config, args.host, args.port))
    except KeyboardInterrupt:
        return 0
    return 0
