"""``ephemeral up``: deploy every stack under a unique name and wait until the first model is ready."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..aws import Aws, error_code, wait_until
from ..requirements import refuse_for_ephemeral
from .clusters import find_cluster
from .kubeconfig import write_kubeconfig
from .names import EphemeralError, check_name, cluster_name_for, ephemeral_tags, iso, new_name, parse_ttl
from .runner import DEFAULT_TIMEOUTS, Runner, Timeouts, cdk_command


@dataclass(frozen=True, kw_only=True)
class UpResult:
    name: str
    cluster_name: str
    endpoint: str
    kubeconfig: Path
    expires_at: datetime
    model: str | None


def deploy_argv(profile_name: str, name: str, tags: Mapping[str, str], outputs_file: Path) -> list[str]:
    argv = [
        cdk_command(), "deploy", "--all",
        "--require-approval", "never",
        "--progress", "events",
        "-c", f"profile={profile_name}",
        "-c", f"name={name}",
        "--outputs-file", str(outputs_file),
    ]  # fmt: skip
    for key, value in tags.items():
        # Stack tags: CloudFormation copies them to every taggable resource of the stack.
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


def first_model(profile: Any) -> str | None:
    models = getattr(profile, "models", ()) or ()
    return str(models[0].name) if models else None


def up(
    aws: Aws,
    profile: Any,
    *,
    runner: Runner,
    name: str | None = None,
    ttl: str | None = None,
    kubeconfig: Path | None = None,
    workdir: Path = Path("."),
    now: datetime | None = None,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> UpResult:
    refuse_for_ephemeral(profile)
    now = now or datetime.now(UTC)
    name = check_name(name) if name else new_name(now)
    expires = now + parse_ttl(ttl or profile.ttl)
    if find_cluster(aws, name):
        raise EphemeralError(
            f"an ephemeral cluster named '{name}' exists already; pick another --name or run 'ephemeral down {name}'"
        )
    tags = ephemeral_tags(name, expires)
    workdir.mkdir(parents=True, exist_ok=True)
    progress(f"deploying ephemeral cluster '{name}' (profile {profile.name}), expires {iso(expires)}")
    result = runner.run(
        deploy_argv(profile.name, name, tags, workdir / f"{name}-outputs.json"), timeout=timeouts.deploy
    )
    if result.returncode != 0:
        raise EphemeralError(
            f"cdk deploy of '{name}' failed (exit {result.returncode}); its partial stacks are tagged, "
            f"remove them with 'eks-llm-stack ephemeral down {name}'"
        )
    cluster_name = cluster_name_for(name)
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
    )
