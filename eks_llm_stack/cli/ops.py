"""``eks-llm-stack preflight``, ``eks-llm-stack verify`` and ``eks-llm-stack ephemeral {up,smoke,down,list,reap}``.

boto3 and the profile models are imported inside the handlers so that ``--help`` stays fast.
Exit codes: 0 success, 1 a check or a teardown found problems, 2 bad input (printed as ``error:``),
4 AWS could not be used — no or expired credentials, an unreachable endpoint, throttling that
outlasted the retries (one ``error:`` line with the fix, never a traceback).
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
    pre.add_argument(
        "--qualifier",
        default=None,
        help="CDK bootstrap qualifier the deploy uses; its toolkit stack must have been bootstrapped with it "
        "(default: $EKS_LLM_STACK_BOOTSTRAP_QUALIFIER, else not checked)",
    )
    pre.add_argument(
        "--toolkit-stack-name",
        default=None,
        help="the bootstrap's toolkit stack (default: CDKToolkit-<qualifier> with a qualifier, else CDKToolkit)",
    )
    pre.add_argument(
        "--permissions-boundary",
        default=None,
        help="IAM policy name the bootstrap must carry as --custom-permissions-boundary "
        "(default: $EKS_LLM_STACK_PERMISSIONS_BOUNDARY, else not checked)",
    )
    pre.set_defaults(func=_preflight)

    ver = sub.add_parser(
        "verify",
        help="check a live cluster against its profile: Helm releases, CRDs, GPU devices, DCGM, each model",
    )
    ver.add_argument("-p", "--profile", default="default", help="profile name or YAML path (default: default)")
    ver.add_argument(
        "--kubeconfig", type=Path, default=None, help="kubeconfig to use (default: $KUBECONFIG, else ~/.kube/config)"
    )
    ver.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    ver.add_argument(
        "--assembly",
        type=Path,
        default=None,
        help="a synthesized cloud assembly (cdk.out) to read the Helm releases from (default: synthesize the profile)",
    )
    ver.add_argument(
        "--via",
        choices=("plan", "service"),
        default="plan",
        help="plan: a model behind a load balancer is asked through it; service: every model through its Service "
        "(default: plan)",
    )
    ver.add_argument("--timeout", type=float, default=10.0, help="seconds per request (default: 10)")
    ver.add_argument(
        "--completion-timeout", type=float, default=120.0, help="seconds for each model's completion (default: 120)"
    )
    ver.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    ver.add_argument("--width", type=int, default=None, help="table width in characters (default: 200)")
    ver.set_defaults(func=_verify)

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
    p.add_argument(
        "--workdir",
        type=Path,
        default=Path("."),
        help="where to write stack outputs and <name>-deployment.json (default: .)",
    )
    p.add_argument(
        "--admin-arn",
        action="append",
        default=None,
        help="IAM role/user ARN given cluster-admin through an EKS access entry, e.g. the CI role; repeatable "
        "(default: $EKS_LLM_STACK_ADMIN_ARN, else none)",
    )
    p.add_argument(
        "--runner-cidr",
        action="append",
        default=None,
        help="egress CIDR of this runner, let through to the private-by-default API endpoint; repeatable",
    )
    p.add_argument(
        "--qualifier",
        default=None,
        help="CDK bootstrap qualifier to deploy through (toolkit stack CDKToolkit-<qualifier>) "
        "(default: $EKS_LLM_STACK_BOOTSTRAP_QUALIFIER, else the default bootstrap)",
    )
    p.add_argument(
        "--permissions-boundary",
        default=None,
        help="IAM policy name set as permissions boundary on every role the stacks create "
        "(default: $EKS_LLM_STACK_PERMISSIONS_BOUNDARY, else none)",
    )
    p.add_argument("--dry-run", action="store_true", help="check the profile, name and account; deploy nothing")
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
    p.add_argument(
        "--kubeconfig",
        type=Path,
        default=None,
        help="where to write the kubeconfig; never inside --output, which is uploaded (default: a temporary file)",
    )
    p.add_argument("--dry-run", action="store_true", help="find the cluster and say what would run; run nothing")
    p.set_defaults(func=_smoke)

    p = verbs.add_parser("down", help="delete the stacks in reverse order, then delete or report anything left behind")
    p.add_argument("name")
    p.add_argument(
        "--deployment-id",
        default=None,
        help="the deployment to delete (printed by 'up', in <workdir>/<name>-deployment.json); "
        "needed when the name has several (default: the name's only one)",
    )
    p.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    p.set_defaults(func=_down)

    p = verbs.add_parser("list", help="every ephemeral cluster with its age, expiry and state")
    p.set_defaults(func=_list)

    p = verbs.add_parser("reap", help="tear down every ephemeral cluster past its expiry (dry run unless --yes)")
    p.add_argument("--yes", action="store_true", help="delete what is expired (default: only report it)")
    p.add_argument("--dry-run", action="store_true", help="only report what would be torn down (the default)")
    p.add_argument(
        "--region",
        action="append",
        default=None,
        help="region to scan; repeatable (default: AWS_REGION / AWS_DEFAULT_REGION)",
    )
    p.set_defaults(func=_reap)


def _aws_access(handler: Any) -> Any:
    """Run an ops handler; an AWS access failure becomes one ``error:`` line and exit code 4."""
    import functools

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        import sys

        from ..ops.aws import AwsAccessError, aws_errors

        try:
            what = " ".join(
                str(w) for w in ("eks-llm-stack", getattr(args, "command", ""), getattr(args, "verb", "")) if w
            )
            with aws_errors(what):
                return int(handler(args) or 0)
        except AwsAccessError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return AwsAccessError.exit_code

    return run


def _aws(region: str | None = None) -> Any:
    from ..ops.aws import Aws

    return Aws.from_env(region)


@_aws_access
def _preflight(args: argparse.Namespace) -> int:
    import os

    from ..config import load_profile
    from ..ops.ephemeral.up import BOUNDARY_ENV, QUALIFIER_ENV
    from ..ops.preflight import Bootstrap, render, run_preflight
    from ..ops.requirements import requirements_of

    profile = load_profile(args.profile)
    bootstrap = Bootstrap(
        qualifier=args.qualifier or os.environ.get(QUALIFIER_ENV) or None,
        stack_name=args.toolkit_stack_name or None,
        permissions_boundary=args.permissions_boundary or os.environ.get(BOUNDARY_ENV) or None,
    )
    report = run_preflight(_aws(profile.region), requirements_of(profile), bootstrap)
    print(render(report, width=args.width), end="")
    return report.exit_code


def _verify(args: argparse.Namespace) -> int:
    import sys

    from ..config import load_profile
    from ..ops.verify import (
        KubeAccessError,
        KubeApi,
        VerifyOptions,
        assembly_templates,
        expectations,
        load_kubeconfig,
        releases_of,
        render,
        run_verify,
        synthesized_releases,
        to_json,
    )
    from ..ops.verify.forward import KubectlForwarder
    from ..plan import plan_platform

    profile = load_profile(args.profile)
    plan = plan_platform(profile)
    if args.assembly is not None:
        templates = assembly_templates(args.assembly)
        if not templates:
            print(
                f"error: {args.assembly} holds no *.template.json -- fix: pass the cdk.out of 'cdk synth'",
                file=sys.stderr,
            )
            return 2
        releases = releases_of(templates, args.assembly)
    else:
        releases = synthesized_releases(profile)
    try:
        api = KubeApi(load_kubeconfig(args.kubeconfig, args.context), timeout=args.timeout)
        report = run_verify(
            api,
            expectations(plan, releases),
            forward=KubectlForwarder(kubeconfig=api.target.kubeconfig, context=api.target.context),
            options=VerifyOptions(via=args.via, timeout=args.timeout, completion_timeout=args.completion_timeout),
            deploy_hint=f"cdk deploy --all -c profile={args.profile}",
        )
    except KubeAccessError as exc:
        print(f"error: eks-llm-stack verify: {exc}", file=sys.stderr)
        return KubeAccessError.exit_code
    print(to_json(report) if args.json else render(report, width=args.width), end="")
    return report.exit_code


@_aws_access
def _up(args: argparse.Namespace) -> int:
    import os

    from ..config import load_profile
    from ..ops.ephemeral import SubprocessRunner, up
    from ..ops.ephemeral.up import ADMIN_ARN_ENV, BOUNDARY_ENV, QUALIFIER_ENV

    profile = load_profile(args.profile)
    path = Path(args.profile)
    dirs = [path.parent] if path.suffix in (".yaml", ".yml") else []
    admins = args.admin_arn or [a for a in os.environ.get(ADMIN_ARN_ENV, "").split(",") if a]
    result = up(
        _aws(profile.region), profile, runner=SubprocessRunner(), name=args.name, ttl=args.ttl,
        kubeconfig=args.kubeconfig, workdir=args.workdir, profile_ref=args.profile, profile_dirs=dirs,
        admin_arns=admins, runner_cidrs=args.runner_cidr or (),
        qualifier=args.qualifier or os.environ.get(QUALIFIER_ENV, ""),
        permissions_boundary=args.permissions_boundary or os.environ.get(BOUNDARY_ENV, ""), dry_run=args.dry_run,
    )  # fmt: skip
    # The last line is machine-readable for CI: NAME, the API endpoint, the deployment id.
    print(f"{result.name} {result.endpoint or '-'} {result.deployment_id}")
    return 0


@_aws_access
def _smoke(args: argparse.Namespace) -> int:
    from ..config import load_profile
    from ..ops.ephemeral import EphemeralError, bench_via_cli, first_model, smoke

    profile = load_profile(args.profile)
    model = args.model or first_model(profile)
    if not model:
        raise EphemeralError(f"profile '{profile.name}' serves no model; pass --model NAME")
    if args.dry_run:
        from ..ops.ephemeral import find_cluster

        cluster = find_cluster(_aws(profile.region), args.name)
        if cluster is None:
            raise EphemeralError(f"no ephemeral cluster named '{args.name}' (see 'eks-llm-stack ephemeral list')")
        print(f"dry run: would run the baseline scenario against '{model}' on {args.name}; report in {args.output}")
        return 0
    report = smoke(
        _aws(profile.region), args.name, model=model, harness=bench_via_cli, output_dir=args.output,
        kubeconfig=args.kubeconfig,
    )  # fmt: skip
    print(f"smoke test passed; report in {report}")
    return 0


def _print_down(report: Any) -> None:
    for item in report.would_delete:
        print(f"would delete {item}")
    for stack in report.skipped_stacks:
        print(f"NOT deleted (re-check refused) stack {stack}")
    for stack in report.deleted_stacks:
        print(f"deleted stack {stack}")
    for stack in report.failed_stacks:
        print(f"FAILED to delete stack {stack}")
    for item in report.reported:
        print(f"left behind: {item}")
    if report.dry_run:
        print(f"{report.name}: dry run, nothing deleted")
    else:
        print(f"{report.name}: " + ("clean" if report.clean else "NOT clean, see above"))


@_aws_access
def _down(args: argparse.Namespace) -> int:
    from ..ops.ephemeral import down

    report = down(_aws(), args.name, deployment_id=args.deployment_id, dry_run=args.dry_run)
    _print_down(report)
    return 0 if report.clean else 1


@_aws_access
def _list(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ..ops.ephemeral import find_clusters, list_rows, render_rows

    rows = list_rows(find_clusters(_aws()), datetime.now(UTC))
    if not rows:
        print("no ephemeral clusters")
        return 0
    print(render_rows(("NAME", "AGE", "EXPIRES", "STATE"), rows), end="")
    return 0


@_aws_access
def _reap(args: argparse.Namespace) -> int:
    from ..ops.ephemeral import reap

    dry_run = args.dry_run or not args.yes
    report = reap(_aws(), regions=args.region or (), dry_run=dry_run)
    for down_report in report.downs:
        _print_down(down_report)
    verb = "would reap (dry run; --yes to delete)" if dry_run else "reaped"
    print(
        f"{verb} {len(report.expired)}: {', '.join(report.expired) or '-'}; kept {len(report.kept)}; "
        f"untouched {len(report.untouched)}; ignored {len(report.ignored)}"
    )
    return 0 if report.clean else 1
