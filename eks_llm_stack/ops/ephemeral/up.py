"""``ephemeral up``: deploy every stack under a new name and wait until the first model is ready.

Before anything is deployed, ``up`` makes sure it cannot land on something it did not make:
the name must map to stack names that do not exist at all (whoever made them, tagged or not),
and must not be the prefix of a shipped or user profile (``llm``, ``llm-prod``, ...). Then it
draws a random deployment id, which the app writes as a tag and a stack output and which
``down`` and ``reap`` require before they delete anything.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ...config import Profile, list_profiles, load_profile
from ...config.profile import PROFILE_DIR
from ...errors import ConfigError, EksLlmStackError, Problem
from ...naming import stack_prefix_of
from ..aws import Aws, error_code, wait_until
from ..requirements import refuse_for_ephemeral
from .kubeconfig import write_kubeconfig
from .names import (
    EphemeralError,
    check_name,
    cluster_name_for,
    ephemeral_tags,
    iso,
    new_deployment_id,
    new_name,
    parse_ttl,
    stack_names_for,
)
from .runner import DEFAULT_TIMEOUTS, Runner, Timeouts, cdk_command

#: Environment variables ``up`` reads when the matching option is not given.
ADMIN_ARN_ENV = "EKS_LLM_STACK_ADMIN_ARN"
QUALIFIER_ENV = "EKS_LLM_STACK_BOOTSTRAP_QUALIFIER"
BOUNDARY_ENV = "EKS_LLM_STACK_PERMISSIONS_BOUNDARY"


@dataclass(frozen=True, kw_only=True)
class UpResult:
    name: str
    cluster_name: str
    endpoint: str
    kubeconfig: Path | None
    expires_at: datetime
    model: str | None
    deployment_id: str
    dry_run: bool = False


def deploy_argv(
    profile_ref: str,
    name: str,
    tags: Mapping[str, str],
    outputs_file: Path,
    *,
    expires_at: str = "",
    deployment_id: str = "",
    admin_arns: Sequence[str] = (),
    runner_cidrs: Sequence[str] = (),
    qualifier: str = "",
    permissions_boundary: str = "",
) -> list[str]:
    argv = [
        cdk_command(), "deploy", "--all",
        "--require-approval", "never",
        "--progress", "events",
        "-c", f"profile={profile_ref}",
        "-c", f"name={name}",
    ]  # fmt: skip
    if expires_at:
        argv += ["-c", f"expires_at={expires_at}"]
    if deployment_id:
        argv += ["-c", f"deployment_id={deployment_id}"]
    if admin_arns:
        argv += ["-c", f"admin_arns={','.join(admin_arns)}"]
    if runner_cidrs:
        argv += ["-c", f"runner_cidrs={','.join(runner_cidrs)}"]
    if qualifier:
        # A bootstrap of its own, whose execution role is bounded to ephemeral stacks (docs/ci-ephemeral-clusters.md).
        argv += [
            "-c",
            f"@aws-cdk/core:bootstrapQualifier={qualifier}",
            "--toolkit-stack-name",
            f"CDKToolkit-{qualifier}",
        ]
    if permissions_boundary:
        # Every role the stacks create carries the boundary, which the bounded execution role requires.
        argv += ["-c", f'@aws-cdk/core:permissionsBoundary={{"name":"{permissions_boundary}"}}']
    argv += ["--outputs-file", str(outputs_file)]
    for key, value in tags.items():
        # The CDK CLI's --tags replace the stack tags the app computed, so pass the whole set
        # (the same function computes both): CloudFormation copies them to every taggable resource.
        argv += ["--tags", f"{key}={value}"]
    return argv


def model_ready_probe(runner: Runner, kubeconfig: Path, model: str) -> Callable[[], tuple[bool, str]]:
    """A probe: is a Deployment named ``model`` (any namespace) ready with at least one replica?"""

    def probe() -> tuple[bool, str]:
        import json

        result = runner.run(
            ["kubectl", "--kubeconfig", str(kubeconfig), "get", "deployments", "--all-namespaces",
             "--field-selector", f"metadata.name={model}", "-o", "json"],
            capture=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            return False, "API not answering yet"
        items = json.loads(result.stdout or "{}").get("items", [])
        if not items:
            return False, "deployment not created yet"
        status = items[0].get("status", {})
        ready, wanted = status.get("readyReplicas", 0) or 0, status.get("replicas", 0) or 0
        return ready >= 1, f"{ready}/{wanted} replicas ready"

    return probe


def first_model(profile: Profile) -> str | None:
    return profile.models[0].name if profile.models else None


def known_prefixes(extra_dirs: Sequence[Path] = ()) -> dict[str, str]:
    """Stack prefix -> profile, for every profile shipped in ``config/`` and in ``extra_dirs``."""
    found: dict[str, str] = {}
    for directory in (PROFILE_DIR, *extra_dirs):
        for profile_name in list_profiles(directory):
            try:
                prefix = load_profile(profile_name, directory).prefix
            except EksLlmStackError:
                continue  # a broken profile deploys nothing; 'profile validate' reports it
            found.setdefault(stack_prefix_of(prefix), f"{directory / profile_name}.yaml (prefix '{prefix}')")
    return found


def existing_stacks(aws: Aws, name: str) -> list[str]:
    """The stacks of ``name`` that exist in any live state, whoever made them and however they are tagged."""
    cfn = aws.client("cloudformation")
    found = []
    for stack in stack_names_for(name):
        try:
            status = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        except Exception as exc:
            if error_code(exc) == "ValidationError" and "does not exist" in str(exc):
                continue
            raise
        if status != "DELETE_COMPLETE":
            found.append(f"{stack} ({status})")
    return found


def check_name_is_free(aws: Aws, name: str, profile: Profile, profile_dirs: Sequence[Path] = ()) -> None:
    """Refuse a name whose stacks exist, or that is the prefix of a shipped or user profile."""
    prefixes = known_prefixes(profile_dirs)
    prefixes.setdefault(stack_prefix_of(profile.prefix), f"profile '{profile.name}' (prefix '{profile.prefix}')")
    owner = prefixes.get(stack_prefix_of(name))
    if owner:
        raise ConfigError(
            "ephemeral cluster",
            [
                Problem(
                    "--name",
                    f"is the prefix of {owner}: its stacks are that platform's, not a throw-away cluster's",
                    "pick a name of its own, e.g. ci-<run id> (or leave --name out for a generated one)",
                    name,
                )
            ],
        )
    existing = existing_stacks(aws, name)
    if existing:
        raise EphemeralError(
            f"stacks of '{name}' exist already: {', '.join(existing)}; 'ephemeral up' deploys only where nothing "
            f"exists. Pick another --name, or remove an earlier ephemeral cluster of that name with "
            f"'eks-llm-stack ephemeral down {name}'"
        )


def up(
    aws: Aws,
    profile: Profile,
    *,
    runner: Runner,
    name: str | None = None,
    ttl: str | None = None,
    kubeconfig: Path | None = None,
    workdir: Path = Path("."),
    profile_ref: str | None = None,
    profile_dirs: Sequence[Path] = (),
    admin_arns: Sequence[str] = (),
    runner_cidrs: Sequence[str] = (),
    qualifier: str = "",
    permissions_boundary: str = "",
    dry_run: bool = False,
    now: datetime | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
    deployment_id: str | None = None,
) -> UpResult:
    """Deploy ``profile`` as ephemeral cluster ``name``; ``dry_run`` checks everything and deploys nothing.

    ``profile_ref`` is what the app is given as ``-c profile=`` (default: the profile's name);
    ``profile_dirs`` are further directories whose profiles' prefixes are refused as names;
    ``admin_arns`` get cluster-admin through an EKS access entry (the CI role, so it can wait
    for the model and run the smoke test).
    """
    refuse_for_ephemeral(profile)
    now = now or datetime.now(UTC)
    name = check_name(name) if name else new_name(now)
    expires = now + parse_ttl(ttl or profile.ttl, profile.max_ttl)
    check_name_is_free(aws, name, profile, profile_dirs)
    deployment_id = deployment_id or new_deployment_id()
    tags = ephemeral_tags(name, expires, deployment_id, profile_name=profile.name, user_tags=profile.tags)
    argv = deploy_argv(
        profile_ref or profile.name,
        name,
        tags,
        workdir / f"{name}-outputs.json",
        expires_at=iso(expires),
        deployment_id=deployment_id,
        admin_arns=admin_arns,
        runner_cidrs=runner_cidrs,
        qualifier=qualifier,
        permissions_boundary=permissions_boundary,
    )
    cluster_name = cluster_name_for(name)
    if dry_run:
        progress(f"dry run: would deploy '{name}' (deployment {deployment_id}), expires {iso(expires)}:")
        progress("  " + " ".join(argv))
        return UpResult(
            name=name, cluster_name=cluster_name, endpoint="", kubeconfig=None, expires_at=expires,
            model=first_model(profile), deployment_id=deployment_id, dry_run=True,
        )  # fmt: skip
    workdir.mkdir(parents=True, exist_ok=True)
    # Written before the deploy, so a job that dies half-way still knows what to tear down.
    (workdir / f"{name}-deployment.json").write_text(
        json.dumps({"name": name, "deployment_id": deployment_id, "expires_at": iso(expires)}) + "\n"
    )
    progress(
        f"deploying ephemeral cluster '{name}' (profile {profile.name}, deployment {deployment_id}), expires {iso(expires)}"
    )
    result = runner.run(argv, timeout=timeouts.deploy)
    if result.returncode != 0:
        raise EphemeralError(
            f"cdk deploy of '{name}' failed (exit {result.returncode}); its partial stacks are tagged, "
            f"remove them with 'eks-llm-stack ephemeral down {name} --deployment-id {deployment_id}'"
        )
    eks = aws.client("eks")

    def cluster_probe() -> tuple[bool, str]:
        try:
            status = eks.describe_cluster(name=cluster_name)["cluster"]["status"]
        except Exception as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
            return False, "not found yet"
        if status == "FAILED":
            raise EphemeralError(f"EKS cluster {cluster_name} is FAILED; run 'eks-llm-stack ephemeral down {name}'")
        return status == "ACTIVE", status

    waits: dict[str, Any] = {"interval": timeouts.interval, "progress": progress}
    if sleep is not None:
        waits["sleep"] = sleep
    wait_until(f"EKS cluster {cluster_name} to be ACTIVE", cluster_probe, timeout=timeouts.cluster, **waits)
    kubeconfig = kubeconfig or workdir / f"kubeconfig-{name}"
    cluster = write_kubeconfig(aws, cluster_name, kubeconfig)
    progress(f"kubeconfig written to {kubeconfig}")
    model = first_model(profile)
    if model:
        wait_until(
            f"model '{model}' to be ready",
            model_ready_probe(runner, kubeconfig, model),
            timeout=timeouts.model,
            **waits,
        )
    else:
        progress("the profile serves no model; not waiting for one")
    progress(f"ready: {name}  endpoint {cluster['endpoint']}  kubeconfig {kubeconfig}  expires {iso(expires)}")
    return UpResult(
        name=name,
        cluster_name=cluster_name,
        endpoint=cluster["endpoint"],
        kubeconfig=kubeconfig,
        expires_at=expires,
        model=model,
        deployment_id=deployment_id,
    )
