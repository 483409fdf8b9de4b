"""Build and synthesize the platform for a profile: CloudFormation to ``cdk.out``, manifests to YAML.

``app.py`` (run by the CDK CLI) and the test suite both go through :func:`build`, so the
tests exercise exactly what ``cdk synth`` produces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App

from .charts.render import write_manifests
from .config import Profile, load_profile, validate_profile
from .config.ephemeral import context_problems
from .config.profile import read_profile_data
from .errors import ConfigError
from .stacks import LlmPlatform, build_platform

#: Context keys read by the app (``cdk synth -c key=value``).
CONTEXT_PROFILE = "profile"
CONTEXT_NAME = "name"
CONTEXT_EXPIRES_AT = "expires_at"
CONTEXT_DEPLOYMENT_ID = "deployment_id"
#: Comma-separated IAM ARNs added to ``cluster.admins`` (``ephemeral up --admin-arn``: the CI role).
CONTEXT_ADMIN_ARNS = "admin_arns"
CONTEXT_MANIFESTS_DIR = "manifests_dir"
CONTEXT_NAG = "nag"
#: Comma-separated CIDRs of CI runners, merged into ``cluster.endpoint.runner_cidrs``.
CONTEXT_RUNNER_CIDRS = "runner_cidrs"
DEFAULT_PROFILE = "default"
#: Where ``make synth`` writes the manifests (``-c manifests_dir=dist/manifests``).
DEFAULT_MANIFESTS_DIR = "dist/manifests"


@dataclass(frozen=True)
class Built:
    app: App
    profile: Profile
    platform: LlmPlatform


def resolve_profile(
    name_or_path: str,
    *,
    name_override: str | None = None,
    runner_cidrs: str | None = None,
    admin_arns: str | None = None,
) -> Profile:
    """Load a profile; ``name_override`` (an ephemeral environment's name) replaces its prefix, and
    ``runner_cidrs`` (comma-separated, the CI runner's egress) is added to ``cluster.endpoint.runner_cidrs``,
    and ``admin_arns`` (comma-separated, the CI role of ``ephemeral up --admin-arn``) to ``cluster.admins``.

    The overrides are applied to the file's own data before validation, so every rule sees
    the final values (and the cluster is named after the override too).
    """
    if not name_override and not runner_cidrs and not admin_arns:
        return load_profile(name_or_path)
    data, subject = read_profile_data(name_or_path)
    if name_override:
        data["prefix"] = name_override
        cluster = data.get("cluster")
        if isinstance(cluster, dict):
            cluster.pop("name", None)
        subject = f"{subject} with name '{name_override}'"
    if runner_cidrs:
        cluster = data.setdefault("cluster", {})
        if isinstance(cluster, dict):
            endpoint = cluster.setdefault("endpoint", {})
            if isinstance(endpoint, dict):
                extra = [c.strip() for c in str(runner_cidrs).split(",") if c.strip()]
                endpoint["runner_cidrs"] = [*(endpoint.get("runner_cidrs") or []), *extra]
    if admin_arns:
        cluster = data.setdefault("cluster", {})
        if isinstance(cluster, dict):
            # Validated with the profile's own admins (ARN form) below.
            extra = [a.strip() for a in str(admin_arns).split(",") if a.strip()]
            cluster["admins"] = [*(cluster.get("admins") or []), *extra]
    return validate_profile(data, subject=subject)


def build(
    profile: Profile | str | None = None,
    *,
    app: App | None = None,
    context: dict[str, Any] | None = None,
    expires_at: str | None = None,
    deployment_id: str | None = None,
) -> Built:
    """Build the app for ``profile`` (a Profile, a profile name, or None: from the ``profile`` context)."""
    # cfn-lint runs over every template in the test suite; the built-in validator would repeat
    # it at every synth (about 2 s and 260 MiB on this kind of machine).
    app = app or App(context=context or {}, builtin_cloud_formation_validation=False)
    if not isinstance(profile, Profile):
        name = profile or app.node.try_get_context(CONTEXT_PROFILE) or DEFAULT_PROFILE
        profile = resolve_profile(
            str(name),
            name_override=app.node.try_get_context(CONTEXT_NAME),
            runner_cidrs=app.node.try_get_context(CONTEXT_RUNNER_CIDRS),
            admin_arns=app.node.try_get_context(CONTEXT_ADMIN_ARNS),
        )
    expires_at = expires_at or app.node.try_get_context(CONTEXT_EXPIRES_AT)
    deployment_id = deployment_id or app.node.try_get_context(CONTEXT_DEPLOYMENT_ID)
    problems = context_problems(ephemeral=profile.ephemeral, expires_at=expires_at, deployment_id=deployment_id)
    if problems:
        raise ConfigError(f"profile '{profile.name}'", problems)
    platform = build_platform(app, profile, expires_at=expires_at, deployment_id=deployment_id)
    if str(app.node.try_get_context(CONTEXT_NAG)).lower() != "false":
        # AwsSolutions rules as a synth-time gate: findings not acknowledged on their resource, with a
        # reason, are errors of `cdk synth` (and of the test suite).
        from .gates.nag import add_nag_checks

        add_nag_checks(app)
    return Built(app=app, profile=profile, platform=platform)


def write_chart_manifests(built: Built, out_dir: Path) -> list[Path]:
    """Render every chart of the platform to ``out_dir/<chart>.yaml`` (tokens become placeholders)."""
    written: list[Path] = []
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.yaml"):
        old.unlink()
    for name, chart, stack in built.platform.charts.entries:
        written += _write_one(name, chart, stack, out_dir)
    return written


def _write_one(name: str, chart: Any, stack: Any, out_dir: Path) -> list[Path]:
    tmp = out_dir / f".{name}"
    paths = write_manifests([(name, chart)], tmp, resolver=stack)
    final = []
    for p in paths:
        target = out_dir / p.name
        p.replace(target)
        final.append(target)
    tmp.rmdir()
    return final


def synthesize_app(profile: str | None = None, manifests_dir: str | None = None) -> Built:
    """What ``cdk synth`` runs: build, synthesize to the CLI's output directory, write manifests.

    Every CLI command runs the app (``cdk ls`` and ``cdk diff`` too, often for another profile), so
    the manifests go into that command's own cloud assembly (``<outdir>/manifests``) unless an
    output is chosen: ``manifests_dir`` here or ``-c manifests_dir=...`` (``make synth`` passes
    ``dist/manifests``). A ``cdk ls`` or ``cdk diff`` therefore never overwrites ``dist/manifests``.
    """
    built = build(profile)
    chosen = manifests_dir or built.app.node.try_get_context(CONTEXT_MANIFESTS_DIR)
    out = Path(chosen) if chosen else Path(built.app.outdir) / "manifests"
    write_chart_manifests(built, out)
    if built.profile.observability.enabled:
        from .monitoring.dashboards import write_dashboards

        # Beside the manifests: dashboards/*.json, importable into any Grafana.
        write_dashboards(out.parent / "dashboards")
    built.app.synth()
    return built
