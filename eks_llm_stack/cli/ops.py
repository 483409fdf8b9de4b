"""``eks-llm-stack preflight`` and ``eks-llm-stack ephemeral {up,smoke,down,list,reap}``.

boto3 and the profile models are imported inside the handlers so that ``--help`` stays fast.
Exit codes: 0 success, 1 a check or a teardown found problems, 2 bad input (printed as ``error:``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    pre = sub.add_parser(
        "preflight", help="check quotas, offerings, reservations, secrets, VPC and bootstrap before a deploy"
    )
    pre.add_argument("-p", "--profile", default="default", help="profile name or YAML path (default: default)")
    pre.add_argument("--width", type=int, default=None, help="table width in characters (default: 160)")
    pre.set_defaults(func=_preflight)

    eph = sub.add_parser("ephemeral", help="throw-away clusters for CI: up, smoke, down, list, reap")
    verbs = eph.add_subparsers(dest="verb", metavar="VERB", required=True)

    p = verbs.add_parser("up", help="deploy every stack under a unique name, wait until the first model is ready")
    p.add_argument("-p", "--profile", default="ci-ephemeral", help="an ephemeral profile (default: ci-ephemeral)")
    p.add_argument(
        "--ttl", default=None, help="lifetime before 'reap' removes it, e.g. 90m, 4h, 2d (default: the profile's ttl)"
    )
    p.add_argument("--name", default=None, help="cluster name, 1-20 of [a-z0-9-] (default: eph-<MMDDhhmm>-<random>)")
    p.add_argument(
        "--kubeconfig", type=Path, default=None, help="where to write the kubeconfig (default: ./kubeconfig-<name>)"
    )
    p.add_argument("--workdir", type=Path, default=Path("."), help="where to write stack outputs (default: .)")
    p.set_defaults(func=_up)

    p = verbs.add_parser("smoke", help="run the benchmark's baseline scenario against the cluster's model")
    p.add_argument("name")
    p.add_argument(
        "-p", "--profile", default="ci-ephemeral", help="the profile the cluster was made from (default: ci-ephemeral)"
    )
    p.add_argument("--model", default=None, help="model to test (default: the profile's first model)")
    p.add_argument(
        "--output", type=Path, default=Path("bench-report"), help="report directory (default: ./bench-report)"
    )
    p.set_defaults(func=_smoke)

    p = verbs.add_parser("down", help="delete the stacks in reverse order, then delete or report anything left behind")
    p.add_argument("name")
    p.set_defaults(func=_down)

    p = verbs.add_parser("list", help="every ephemeral cluster with its age, expiry and state")
    p.set_defaults(func=_list)

    p = verbs.add_parser("reap", help="tear down every ephemeral cluster past its expiry")
    p.add_argument("--dry-run", action="store_true", help="only list what would be torn down")
    p.set_defaults(func=_reap)


def _aws(region: str | None = None) -> Any:
    from ..ops.aws import Aws

    return Aws.from_env(region)


def _preflight(args: argparse.Namespace) -> int:
    from ..config import load_profile
    from ..ops.preflight import render, run_preflight
    from ..ops.requirements import requirements_of

    profile = load_profile(args.profile)
    report = run_preflight(_aws(profile.region), requirements_of(profile))
    print(render(report, width=args.width), end="")
    return report.exit_code


def _up(args: argparse.Namespace) -> int:
    from ..config import load_profile
    from ..ops.ephemeral import SubprocessRunner, up

    profile = load_profile(args.profile)
    result = up(
        _aws(profile.region), profile, runner=SubprocessRunner(), name=args.name, ttl=args.ttl,
        kubeconfig=args.kubeconfig, workdir=args.workdir,
    )  # fmt: skip
    # The last line is machine-readable for CI: NAME, then the API endpoint.
    print(f"{result.name} {result.endpoint}")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from ..config import load_profile
    from ..ops.ephemeral import EphemeralError, bench_via_cli, first_model, smoke

    profile = load_profile(args.profile)
    model = args.model or first_model(profile)
    if not model:
        raise EphemeralError(f"profile '{profile.name}' serves no model; pass --model NAME")
    report = smoke(_aws(profile.region), args.name, model=model, harness=bench_via_cli, output_dir=args.output)
    print(f"smoke test passed; report in {report}")
    return 0


def _print_down(report: Any) -> None:
    for stack in report.deleted_stacks:
        print(f"deleted stack {stack}")
    for stack in report.failed_stacks:
        print(f"FAILED to delete stack {stack}")
    for item in report.reported:
        print(f"left behind: {item}")
    print(f"{report.name}: " + ("clean" if report.clean else "NOT clean, see above"))


def _down(args: argparse.Namespace) -> int:
    from ..ops.ephemeral import down

    report = down(_aws(), args.name)
    _print_down(report)
    return 0 if report.clean else 1


def _list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ..ops.ephemeral import find_clusters, list_rows, render_rows

    rows = list_rows(find_clusters(_aws()), datetime.now(UTC))
    if not rows:
        print("no ephemeral clusters")
        return 0
    print(render_rows(("NAME", "AGE", "EXPIRES", "STATE"), rows), end="")
    return 0


def _reap(args: argparse.Namespace) -> int:
    from ..ops.ephemeral import reap

    report = reap(_aws(), dry_run=args.dry_run)
    for down_report in report.downs:
        _print_down(down_report)
    verb = "would reap" if args.dry_run else "reaped"
    print(
        f"{verb} {len(report.expired)}: {', '.join(report.expired) or '-'}; kept {len(report.kept)}; untouched {len(report.untouched)}"
    )
    return 0 if report.clean else 1
