"""``eks-llm-stack bench run``, ``bench report`` and ``simulate``."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, Problem, Problems
from .console import console as table_console

if TYPE_CHECKING:
    from ..bench.workload import LevelSpec

_CLOSED_LOOP_DEFAULT_REQUESTS = 100


def tcp_port(text: str) -> int:
    """An argparse type: a TCP port, 1-65535 (argparse turns the error into one usage line)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number; give 1-65535, e.g. 8000") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is outside 1-65535; give a port such as 8000")
    return port


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
    run.add_argument("--arrival", choices=("poisson", "gamma", "constant"), help="open-loop arrivals (default poisson)")
    run.add_argument(
        "--burstiness",
        type=float,
        help="gamma arrivals: shape of the inter-arrival times (1 = Poisson, below 1 burstier; default 1)",
    )
    run.add_argument("--requests", type=int, help="requests per level (closed loop default 100 without --duration)")
    run.add_argument("--duration", type=float, help="seconds per level")
    run.add_argument(
        "--warmup", type=int, default=0, help="requests per level sent first and left out of its figures (default 0)"
    )
    run.add_argument(
        "--ramp",
        type=float,
        help="closed loop: spread the first requests of each level over this many seconds (default 0: all at once)",
    )
    run.add_argument("--prompt-tokens", help="N, uniform:LO:HI, normal:MEAN:SD or choice:A,B,C (default 128)")
    run.add_argument("--output-tokens", help="as --prompt-tokens (default 128)")
    run.add_argument("--dataset", type=Path, help="ShareGPT JSON or JSONL of prompts")
    run.add_argument(
        "--shared-prefix",
        metavar="GROUPSxPROMPTS",
        help="synthetic prompts sharing a prefix: GROUPS groups x PROMPTS each, e.g. 8x16 (with --prefix-tokens)",
    )
    run.add_argument(
        "--prefix-tokens", type=int, default=512, help="--shared-prefix: tokens of each group's prefix (default 512)"
    )
    run.add_argument(
        "--trace",
        type=Path,
        help="replay a timestamped trace (JSONL: timestamp_s, prompt or prompt_tokens, output_tokens) open loop",
    )
    run.add_argument(
        "--sessions",
        type=Path,
        help="multi-turn chat sessions from ShareGPT JSON (every user turn is a turn); with --concurrency USERS",
    )
    run.add_argument(
        "--synthetic-sessions",
        metavar="SESSIONSxTURNS",
        help="synthetic multi-turn sessions, e.g. 32x5 (user messages of --prompt-tokens, default 64); "
        "with --concurrency USERS",
    )
    run.add_argument(
        "--think-time",
        help="sessions: seconds a user waits between an answer and the next turn: S, uniform:LO:HI, exp:MEAN "
        "or normal:MEAN:SD (default 0; seeded by --seed)",
    )
    run.add_argument("--max-turns", type=int, help="sessions: turns per session at most (default: all)")
    run.add_argument("--max-sessions", type=int, help="--sessions: use the first N conversations (default: all)")
    run.add_argument("--instance", help="EC2 instance type whose on-demand price costs the tokens")
    run.add_argument("--hourly-usd", type=float, help="price per hour to cost the tokens with")
    run.add_argument("--slo-ttft-ms", type=float, default=500.0, help="goodput TTFT limit (default 500)")
    run.add_argument("--slo-itl-ms", type=float, default=50.0, help="goodput ITL limit (default 50)")
    run.add_argument("--slo-e2e-ms", type=float, help="goodput end-to-end limit (default: none)")
    run.add_argument("--spot-hourly-usd", type=float, help="also cost the tokens at this spot price per hour")
    run.add_argument(
        "--capacity-block-hourly-usd", type=float, help="also cost the tokens at this Capacity Block price per hour"
    )
    run.add_argument(
        "--max-error-rate",
        type=float,
        default=5.0,
        help="percent of failed requests (any level) above which the run exits 3 (default 5)",
    )
    run.add_argument(
        "--no-preflight", action="store_true", help="skip the request that checks URL, model, key and streaming"
    )
    run.add_argument(
        "--sla-sweep",
        choices=("concurrency", "rate"),
        help="find the highest concurrency or rate meeting the SLOs by bisection over --sweep-range",
    )
    run.add_argument("--sweep-range", help="LO:HI of the SLA sweep, e.g. 1:256 (concurrency) or 0.5:50 (rate)")
    run.add_argument(
        "--slo-attainment",
        type=float,
        default=90.0,
        help="SLA sweep: percent of requests that must meet every SLO for a load to pass (default 90)",
    )
    run.add_argument(
        "--barrier",
        help="HOST:PORT where harness 0 of a --shard run meets the others before every level",
    )
    run.add_argument(
        "--barrier-timeout", type=float, default=300.0, help="seconds to wait for the other harnesses (default 300)"
    )
    run.add_argument(
        "--shard",
        help="I/N: this process is harness I of N sharing the load (rate / N, or its share of the concurrency)",
    )
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

    merge = bsub.add_parser(
        "merge",
        help="combine the results of several harness processes (--shard I/N) into one run",
        description="Percentiles come from the pooled raw samples; loads add up.",
    )
    merge.add_argument("dirs", nargs="+", type=Path, metavar="DIR")
    merge.add_argument("--out", type=Path, required=True, help="directory of the merged run")
    merge.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="first wait up to SECONDS until every DIR holds a finished run (harness 0 of a multi-pod Job)",
    )
    merge.add_argument("--no-plots", action="store_true")
    merge.set_defaults(func=_merge)

    sim = sub.add_parser("simulate", help="serve a vLLM-compatible simulator with known timings")
    sim.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sim.add_argument("--port", type=tcp_port, default=8000, help="port (default 8000)")
    sim.add_argument("--model", default="simulated-model", help="model name served (default simulated-model)")
    sim.add_argument("--ttft-ms", type=float, default=50.0, help="time to first token (default 50)")
    sim.add_argument("--itl-ms", type=float, default=10.0, help="time between tokens (default 10)")
    sim.add_argument("--tokens-per-chunk", type=int, default=1, help="tokens per streamed chunk (default 1)")
    sim.add_argument(
        "--prefill-ms-per-1k-tokens",
        type=float,
        default=0.0,
        help="extra TTFT per 1000 prompt tokens, like a real prefill (default 0)",
    )
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
    from ..bench.harness import Target
    from ..bench.results import Price
    from ..bench.workload import (
        SCENARIOS,
        LengthSpec,
        LevelSpec,
        load_dataset,
        load_trace,
        scenario_levels,
        shard_trace,
        shared_prefix_prompts,
    )

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
        for n, v in (
            ("--scenario", args.scenario),
            ("--concurrency", args.concurrency),
            ("--rate", args.rate),
            ("--sla-sweep", args.sla_sweep),
            ("--trace", args.trace),
        )
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
    sweep_range: tuple[float, float] | None = None
    if args.sla_sweep is not None:
        try:
            lo_text, hi_text = str(args.sweep_range).split(":")
            sweep_range = (float(lo_text), float(hi_text))
            if not 0 < sweep_range[0] < sweep_range[1]:
                raise ValueError
            if args.sla_sweep == "concurrency" and not all(x == int(x) for x in sweep_range):
                raise ValueError
        except ValueError:
            p.add(
                "--sweep-range",
                "must be LO:HI with 0 < LO < HI (whole numbers for concurrency)",
                "e.g. --sla-sweep concurrency --sweep-range 1:256",
                args.sweep_range,
            )
        if args.requests is None and args.duration is None:
            p.add(
                "--sla-sweep", "each trial level needs a bound", "add --requests N and/or --duration S", args.sla_sweep
            )
        if not 0 < args.slo_attainment <= 100:
            p.add("--slo-attainment", "must be a percentage above 0", "e.g. --slo-attainment 90", args.slo_attainment)
    if args.burstiness is not None and (args.arrival != "gamma" or not args.burstiness > 0):
        p.add(
            "--burstiness",
            "needs --arrival gamma and a positive value",
            "e.g. --arrival gamma --burstiness 0.5",
            args.burstiness,
        )
    if not 0 <= args.max_error_rate <= 100:
        p.add(
            "--max-error-rate", "must be a percentage between 0 and 100", "e.g. --max-error-rate 5", args.max_error_rate
        )
    for flag, value in (
        ("--spot-hourly-usd", args.spot_hourly_usd),
        ("--capacity-block-hourly-usd", args.capacity_block_hourly_usd),
    ):
        if value is not None and not value > 0:
            p.add(flag, "must be a positive price", "e.g. 0.45", value)
    shard = (0, 1)
    if args.shard is not None:
        try:
            i_text, n_text = str(args.shard).split("/")
            shard = (int(i_text), int(n_text))
            if not (shard[1] >= 1 and 0 <= shard[0] < shard[1]):
                raise ValueError
        except ValueError:
            p.add(
                "--shard", "must be I/N with 0 <= I < N", "e.g. --shard 0/2 for the first of two harnesses", args.shard
            )
            shard = (0, 1)
    if args.arrival is not None and args.rate is None:
        p.add("--arrival", "only applies to an open loop", "add --rate R, or drop --arrival", args.arrival)
    if args.rate is not None and args.requests is None and args.duration is None:
        p.add("--rate", "an open loop needs a bound", "add --duration S (and/or --requests N)", args.rate)
    if args.ramp is not None and not (args.ramp >= 0 and args.ramp < 3600):
        p.add("--ramp", "must be between 0 and 3600 seconds", "pass a time in seconds, e.g. --ramp 1.5", args.ramp)
    if args.ramp and args.rate is not None:
        p.add("--ramp", "only applies to a closed loop", "drop --ramp (an open loop is paced by --rate)", args.ramp)
    if args.warmup is not None and args.warmup < 0:
        p.add("--warmup", "must be 0 or more", "pass how many requests to leave out per level, e.g. 128", args.warmup)
    for flag, value in (
        ("--requests", args.requests),
        ("--duration", args.duration),
        ("--timeout", args.timeout),
        ("--slo-ttft-ms", args.slo_ttft_ms),
        ("--slo-itl-ms", args.slo_itl_ms),
        ("--slo-e2e-ms", args.slo_e2e_ms),
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
    trace_times: tuple[float, ...] = ()
    if args.dataset is not None:
        try:
            prompts = load_dataset(args.dataset)
        except ConfigError as exc:
            p.extend(exc, "--dataset")
    whole_trace: tuple[float, ...] = ()
    if args.trace is not None:
        try:
            prompts, whole_trace = load_trace(args.trace, seed=args.seed)
        except ConfigError as exc:
            p.extend(exc, "--trace")
        else:
            # Each harness replays its own disjoint part of the trace, on the trace's clock.
            prompts, trace_times = shard_trace(prompts, whole_trace, *shard)
            if not trace_times:
                p.add(
                    "--trace / --shard",
                    f"the trace has {len(whole_trace)} requests: harness {shard[0]} of {shard[1]} gets none",
                    "use at most as many harnesses as the trace has requests",
                    (str(args.trace), args.shard),
                )
    if args.shared_prefix is not None:
        try:
            g_text, m_text = str(args.shared_prefix).lower().split("x")
            groups, per_group = int(g_text), int(m_text)
            if groups < 1 or per_group < 1 or args.prefix_tokens < 1:
                raise ValueError
        except ValueError:
            p.add(
                "--shared-prefix",
                "must be GROUPSxPROMPTS with positive numbers (and --prefix-tokens positive)",
                "e.g. --shared-prefix 8x16 --prefix-tokens 1024",
                args.shared_prefix,
            )
        else:
            if args.dataset is not None or args.trace is not None:
                p.add(
                    "--shared-prefix", "is a dataset of its own", "drop --dataset/--trace, or this", args.shared_prefix
                )
            suffix = prompt.values[0] if prompt is not None and prompt.kind == "fixed" else 128
            prompts = shared_prefix_prompts(
                groups=groups,
                per_group=per_group,
                prefix_tokens=args.prefix_tokens,
                suffix_tokens=suffix,
                seed=args.seed,
            )
    sessions, think = _sessions_from_args(args, p, prompt=prompt, output=output, shard=shard)
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
    if shard[1] > 1 and args.sla_sweep is not None:
        p.add(
            "--sla-sweep / --shard",
            "an SLA sweep picks each next level from its own results, so the harnesses would diverge",
            "run the sweep in one harness, then the load it finds with --shard",
            (args.sla_sweep, args.shard),
        )
    if shard[1] > 1 and concurrency and min(concurrency) < shard[1]:
        p.add(
            "--concurrency / --shard",
            f"a level below {shard[1]} leaves a harness without users",
            "use levels of at least N, or fewer harnesses",
            (args.concurrency, args.shard),
        )
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
        if args.ramp and spec.concurrency is not None:
            kw["ramp_s"] = args.ramp
        if prompt is not None:
            kw["prompt"] = prompt
        if output is not None:
            kw["output"] = output
        if args.burstiness is not None:
            kw["burstiness"] = args.burstiness
        return shard_level(dataclasses.replace(spec, **kw), *shard)

    if args.scenario:
        levels = tuple(
            bounded(s)
            for s in scenario_levels(
                args.scenario, prompt=prompt, output=output, dataset_size=len(prompts) if prompts else None
            )
        )
    elif concurrency and sessions:
        # A session level is bounded by its set (every session once) and/or --duration.
        levels = tuple(bounded(LevelSpec(concurrency=c, requests=None, think_time=think)) for c in concurrency)
    elif concurrency:
        default = None if (args.requests or args.duration) else _CLOSED_LOOP_DEFAULT_REQUESTS
        levels = tuple(bounded(LevelSpec(concurrency=c, requests=default)) for c in concurrency)
    elif args.sla_sweep:
        levels = ()
    elif args.trace is not None:
        span = trace_times[-1] if trace_times and trace_times[-1] > 0 else 1.0
        # The whole trace's rate; shard_level (in bounded) takes this harness's share of it.
        levels = (
            dataclasses.replace(
                bounded(LevelSpec(rate=len(whole_trace) / span, arrival="trace")),
                trace_offsets_s=trace_times,
                requests=len(trace_times),
                duration_s=None,
            ),
        )
    else:
        levels = (bounded(LevelSpec(rate=args.rate, arrival=args.arrival or "poisson")),)

    def sweep_level(x: float) -> LevelSpec:
        if args.sla_sweep == "concurrency":
            return bounded(LevelSpec(concurrency=int(x)))
        return bounded(LevelSpec(rate=x, arrival=args.arrival or "poisson"))

    target = Target(
        url=args.url,
        model=args.model,
        api=args.api,
        timeout_s=args.timeout,
        ignore_eos=not args.no_ignore_eos,
        api_key=api_key,
    )
    prices = {"on_demand": price.hourly_usd} if price else {}
    if args.spot_hourly_usd:
        prices["spot"] = args.spot_hourly_usd
    if args.capacity_block_hourly_usd:
        prices["capacity_block"] = args.capacity_block_hourly_usd
    return {
        "target": target,
        "levels": levels,
        "prompts": prompts,
        "price": price,
        "prices": prices,
        "shard": shard,
        "seed": args.seed + 7919 * shard[0],
        "sweep": (args.sla_sweep, sweep_range, sweep_level) if args.sla_sweep else None,
        "sessions": sessions,
    }


def _sessions_from_args(
    args: argparse.Namespace, p: Problems, *, prompt: Any, output: Any, shard: tuple[int, int]
) -> tuple[Any, Any]:
    """The multi-turn sessions of this harness (its shard of the set) and the think time, or (None, None)."""
    from ..bench.sessions import load_sessions, shard_sessions, synthetic_sessions
    from ..bench.workload import LengthSpec, ThinkTime

    source = [n for n, v in (("--sessions", args.sessions), ("--synthetic-sessions", args.synthetic_sessions)) if v]
    if not source:
        for flag, value in (
            ("--think-time", args.think_time),
            ("--max-turns", args.max_turns),
            ("--max-sessions", args.max_sessions),
        ):
            if value is not None:
                p.add(flag, "only applies to a session run", "add --sessions FILE or --synthetic-sessions NxT", value)
        return None, None
    if len(source) > 1:
        p.add("--sessions / --synthetic-sessions", "both give the sessions", "pass one of them", source)
    if args.concurrency is None or args.rate is not None or args.scenario or args.sla_sweep or args.trace:
        p.add(
            source[0],
            "sessions run with a number of chat users",
            "pass --concurrency USERS (e.g. --concurrency 4,16), and no --rate/--scenario/--sla-sweep/--trace",
            args.concurrency,
        )
    for flag, value in (("--dataset", args.dataset), ("--shared-prefix", args.shared_prefix)):
        if value is not None:
            p.add(flag, "sessions bring their own prompts", f"drop {flag}, or the sessions", value)
    for flag, value, fix in (
        ("--requests", args.requests, "a level runs every session once: size the set (SESSIONSxTURNS, --max-sessions)"),
        ("--warmup", args.warmup or None, "leave it out: sessions have no warm-up requests"),
    ):
        if value is not None:
            p.add(flag, "does not apply to a session run", fix + ", or bound the level with --duration S", value)
    for flag, value in (("--max-turns", args.max_turns), ("--max-sessions", args.max_sessions)):
        if value is not None and value < 1:
            p.add(flag, "must be at least 1", f"e.g. {flag} 8, or leave it out for all", value)
    think = ThinkTime.parse(args.think_time, "--think-time", p) if args.think_time else ThinkTime()
    sessions = None
    if args.sessions is not None:
        try:
            sessions = load_sessions(args.sessions, max_turns=args.max_turns, max_sessions=args.max_sessions)
        except ConfigError as exc:
            p.extend(exc, "--sessions")
    elif args.synthetic_sessions is not None:
        try:
            n_text, t_text = str(args.synthetic_sessions).lower().split("x")
            count, turns = int(n_text), int(t_text)
            if count < 1 or turns < 1:
                raise ValueError
        except ValueError:
            p.add(
                "--synthetic-sessions",
                "must be SESSIONSxTURNS with positive numbers",
                "e.g. --synthetic-sessions 32x5",
                args.synthetic_sessions,
            )
        else:
            if args.max_sessions is not None:
                p.add(
                    "--max-sessions",
                    "only applies to --sessions FILE",
                    "size SESSIONSxTURNS instead",
                    args.max_sessions,
                )
            sessions = synthetic_sessions(
                count=count,
                turns=min(turns, args.max_turns or turns),
                user=prompt or LengthSpec(values=(64,)),
                output=output or LengthSpec(values=(128,)),
                seed=args.seed,
            )
    if sessions is not None:
        whole = len(sessions)
        sessions = shard_sessions(sessions, *shard)
        if not sessions:
            p.add(
                f"{source[0]} / --shard",
                f"the set has {whole} sessions: harness {shard[0]} of {shard[1]} gets none",
                "use at most as many harnesses as sessions",
                args.shard,
            )
    return sessions or None, think


def shard_level(spec: LevelSpec, index: int, count: int) -> LevelSpec:
    """Harness ``index`` of ``count``'s part of a level: 1/count of the rate, of the requests and of
    the users (the remainder going to the lowest indexes), the same duration."""
    if count == 1:
        return spec

    def part(n: int) -> int:
        return n // count + (1 if index < n % count else 0)

    kw: dict[str, Any] = {}
    if spec.concurrency is not None:
        kw["concurrency"] = part(spec.concurrency)
    if spec.rate is not None:
        kw["rate"] = spec.rate / count
    if spec.requests is not None:
        kw["requests"] = max(1, part(spec.requests))
    if spec.warmup:
        kw["warmup"] = part(spec.warmup)
    return dataclasses.replace(spec, **kw)


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
    import signal

    from rich.console import Console

    from ..bench.harness import RunState, run_levels
    from ..bench.metrics import Slo
    from ..bench.plots import render_plots
    from ..bench.preflight import check_url, prefix_cache_counters, prefix_cache_report, preflight
    from ..bench.progress import LiveProgress, error_lines, knee_line, summary_table
    from ..bench.report import write_report
    from ..bench.results import ResultWriter, build_summary, run_metadata
    from ..bench.sessions import session_lines

    plan = plan_from_args(args)
    check_url(plan["target"].url)
    started = dt.datetime.now(dt.UTC)
    out_dir: Path = args.out or Path("bench-results") / started.strftime("%Y%m%dT%H%M%SZ")
    console = Console(stderr=True)
    state = RunState()
    # Before any load: the results directory must be writable and the server must answer.
    writer = ResultWriter(out_dir, state.origin_ns)
    try:
        server = None if args.no_preflight else asyncio.run(preflight(plan["target"]))
        slo = Slo(ttft_ms=args.slo_ttft_ms, itl_ms=args.slo_itl_ms, e2e_ms=args.slo_e2e_ms)
        meta = run_metadata(
            state,
            started=started,
            server=server,
            dataset=args.dataset or args.trace or args.sessions,
            shard=plan["shard"],
        )

        def summary(interrupted: bool) -> dict[str, Any]:
            return build_summary(
                state,
                target=plan["target"],
                levels=plan["levels"],
                slo=slo,
                price=plan["price"],
                prices=plan["prices"],
                scenario=args.scenario,
                interrupted=interrupted,
                started_at=started,
                metadata=meta,
            )

        interrupted = False
        barrier = _barrier(args, plan)
        sweep_result: dict[str, Any] = {}

        async def sweep(plan: dict[str, Any], done: Any) -> None:
            from ..bench.harness import run_level
            from ..bench.sweep import bisect

            kind, (lo, hi), make = plan["sweep"]

            async def run_one(x: float) -> dict[str, Any]:
                spec = make(x)
                plan["levels"] = (*plan["levels"], spec)
                i = len(plan["levels"]) - 1
                live.start_level(spec)
                await run_level(
                    plan["target"], spec, level=i, state=state, prompts=plan["prompts"], seed=plan["seed"], on_done=done
                )
                doc = summary(False)
                writer.write_summary(doc)
                return doc["levels"][-1]

            sweep_result.update(
                await bisect(run_one, lo=lo, hi=hi, integer=kind == "concurrency", attainment=args.slo_attainment / 100)
            )
            sweep_result["kind"] = kind

        with LiveProgress(console, enabled=not args.no_progress) as live:

            def done(record: Any) -> None:
                writer.on_done(record)
                live.on_done(record)

            async def go() -> bool:
                task = asyncio.current_task()
                loop = asyncio.get_running_loop()
                stopped: list[int] = []

                def stop(sig: int) -> None:
                    stopped.append(sig)
                    if task is not None:
                        task.cancel()

                for sig in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(sig, stop, sig)
                before = await prefix_cache_counters(plan["target"])
                meta["prefix_cache"] = prefix_cache_report(before, None)
                try:
                    if plan["sweep"]:
                        await sweep(plan, done)
                        return False
                    if plan["sessions"]:
                        from ..bench.sessions import run_session_levels

                        await run_session_levels(
                            plan["target"],
                            plan["levels"],
                            plan["sessions"],
                            state=state,
                            seed=plan["seed"],
                            on_done=done,
                            on_level=live.start_level,
                            on_level_done=lambda i: (writer.write_summary(summary(False)), None)[1],
                            before_level=barrier.before_level if barrier else None,
                        )
                        return False
                    await run_levels(
                        plan["target"],
                        plan["levels"],
                        state=state,
                        prompts=plan["prompts"],
                        seed=plan["seed"],
                        on_done=done,
                        on_level=live.start_level,
                        on_level_done=lambda i: (writer.write_summary(summary(False)), None)[1],
                        before_level=barrier.before_level if barrier else None,
                    )
                except asyncio.CancelledError:
                    if not stopped:
                        raise
                    return True
                finally:
                    for sig in (signal.SIGTERM, signal.SIGINT):
                        loop.remove_signal_handler(sig)
                    meta["prefix_cache"] = prefix_cache_report(before, await prefix_cache_counters(plan["target"]))
                    if barrier is not None:
                        meta["barrier_starts_unix_ns"] = list(barrier.starts)
                        await barrier.close()
                return False

            try:
                interrupted = asyncio.run(go())
            except KeyboardInterrupt:
                interrupted = True
        final = summary(interrupted)
        if sweep_result:
            final["sla_sweep"] = sweep_result
        final["metadata"]["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        paths = writer.write_summary(final)
    finally:
        writer.close()
    if not args.no_plots and final["levels"]:
        paths += render_plots([(out_dir.name, final)], out_dir)
        paths.append(write_report(out_dir, final, [p for p in paths if p.suffix == ".png"]))
    table_console().print(summary_table(final, title=f"{plan['target'].model} ({plan['target'].api})"))
    for line in [*error_lines(final), *session_lines(final)]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(knee_line(final), markup=False, highlight=False, soft_wrap=True)
    if sweep_result:
        console.print(_sweep_line(sweep_result), markup=False, highlight=False, soft_wrap=True)
    console.print(f"results: {', '.join(str(p) for p in paths)}")
    if args.upload_s3:
        keys = upload_results(out_dir, args.upload_s3)
        console.print(f"uploaded {len(keys)} files to {args.upload_s3}")
    if interrupted:
        console.print("interrupted: results hold what was measured until the signal")
        return 130
    if not any(lv["completed"] for lv in final["levels"]):
        return 1
    worst = max((lv.get("error_rate") or 0.0 for lv in final["levels"]), default=0.0)
    if worst * 100 > args.max_error_rate:
        console.print(
            f"error rate {worst * 100:.1f} % is above --max-error-rate {args.max_error_rate:g} %: exit 3",
            markup=False,
            highlight=False,
        )
        return 3
    return 0


def _sweep_line(result: dict[str, Any]) -> str:
    target = f"{result['attainment_target'] * 100:g} % of requests within every SLO"
    if result.get("reached"):
        return (
            f"SLA sweep: highest {result['kind']} meeting the SLOs is {result['best']:g} ({target}); "
            f"{result['first_missing']:g} misses - reached, after {len(result['trials'])} levels"
        )
    return f"SLA sweep: limit not reached - {result['why']} ({target})"


def _barrier(args: argparse.Namespace, plan: dict[str, Any]) -> Any:
    """The start barrier of a sharded run (``--barrier``), or None."""
    if not getattr(args, "barrier", None):
        return None
    from ..bench.barrier import Barrier

    index, count = plan["shard"]
    return Barrier(args.barrier, index=index, count=count, timeout_s=args.barrier_timeout)


# -- bench report ---------------------------------------------------------------------------------


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..bench.plots import render_plots
    from ..bench.progress import comparison_table, summary_table
    from ..bench.results import load_summary
    from ..bench.sessions import session_lines

    docs = [load_summary(d) for d in args.dirs]
    labels: list[str] = []
    for d in args.dirs:
        label = d.resolve().name or str(d)
        labels.append(label if label not in labels else f"{label}#{len(labels) + 1}")
    runs = list(zip(labels, docs, strict=True))
    console = Console()
    for label, doc in runs:
        console.print(summary_table(doc, title=label))
        for line in session_lines(doc):
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if len(runs) > 1:
        console.print(comparison_table(runs))
    if not args.no_plots:
        out = args.out or (args.dirs[0] if len(runs) == 1 else args.dirs[0] / "compare")
        paths = render_plots(runs, out)
        console.print(f"plots: {', '.join(str(p) for p in paths)}")
    return 0


def _merge(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    from ..bench.merge import merge_runs
    from ..bench.plots import render_plots
    from ..bench.progress import error_lines, knee_line, summary_table
    from ..bench.report import write_report
    from ..bench.results import REQUESTS, SUMMARY, write_csv
    from ..bench.sessions import session_lines

    if args.wait is not None:
        from ..bench.merge import wait_for_parts

        if not args.wait > 0:
            raise ConfigError(
                "bench merge", [Problem("--wait", "must be a positive number of seconds", "e.g. --wait 600", args.wait)]
            )
        wait_for_parts(args.dirs, timeout_s=args.wait)
    merged, records, origin = merge_runs(args.dirs)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / SUMMARY).write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    with (out / REQUESTS).open("w", encoding="utf-8") as f:
        for r in sorted(records, key=lambda r: r.sent_ns):
            f.write(json.dumps(r.to_json(origin), separators=(",", ":")) + "\n")
    write_csv(out / "summary.csv", merged["levels"])
    paths = [out / SUMMARY, out / REQUESTS, out / "summary.csv"]
    if not args.no_plots and merged["levels"]:
        paths += render_plots([(out.name, merged)], out)
        paths.append(write_report(out, merged, [p for p in paths if p.suffix == ".png"]))
    console = Console(stderr=True)
    table_console().print(summary_table(merged, title=f"merged: {len(args.dirs)} harnesses"))
    for line in [*error_lines(merged), *session_lines(merged), knee_line(merged)]:
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"results: {', '.join(str(p) for p in paths)}")
    return 0


# -- simulate -------------------------------------------------------------------------------------


def _simulate(args: argparse.Namespace) -> int:
    import asyncio

    from ..bench.simulator import SimulatorConfig, serve

    config = SimulatorConfig(
        model=args.model,
        ttft_ms=args.ttft_ms,
        itl_ms=args.itl_ms,
        tokens_per_chunk=args.tokens_per_chunk,
        prefill_ms_per_1k_tokens=args.prefill_ms_per_1k_tokens,
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
