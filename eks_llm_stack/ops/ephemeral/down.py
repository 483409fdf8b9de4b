"""Ephemeral clusters: ``up``, ``smoke``, ``down``, ``list`` and ``reap``.

An ephemeral cluster is the set of CloudFormation stacks tagged

* ``eks-llm-stack:ephemeral=true``
* ``eks-llm-stack:name=<name>``
* ``eks-llm-stack:expires-at=<UTC ISO-8601>``

and everything those stacks, the cluster's controllers and Karpenter created. ``down`` and
``reap`` find what to delete by those tags only: a resource that lacks
``eks-llm-stack:ephemeral=true`` is never deleted, whatever its name, and a resource that only
carries the cluster's Kubernetes tags (``kubernetes.io/cluster/<cluster>``, ...) is *reported*
for a person to look at, never deleted. Deletion is idempotent: every step first looks at what
is there, so a second run, or a run after a half-finished one, picks up where the last stopped.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from ...errors import ConfigError, EksLlmStackError, Problem
from ..aws import Aws, error_code, paginate, wait_until
from ..requirements import refuse_for_ephemeral

TAG_EPHEMERAL = "eks-llm-stack:ephemeral"
TAG_NAME = "eks-llm-stack:name"
TAG_EXPIRES = "eks-llm-stack:expires-at"

#: Stack suffixes in deploy order; ``down`` deletes them in reverse.
STACK_ORDER = ("Network", "Data", "Platform", "Serving")

#: Tags by which controllers and Karpenter mark what they create for a cluster ({c} = cluster name).
#: Resources with these tags but without the ephemeral tag are reported, never deleted.
CLUSTER_TAGS = (
    ("kubernetes.io/cluster/{c}", None),
    ("eks:eks-cluster-name", "{c}"),
    ("karpenter.sh/discovery", "{c}"),
    ("elbv2.k8s.aws/cluster", "{c}"),
    ("cluster.k8s.amazonaws.com/name", "{c}"),
    ("KubernetesCluster", "{c}"),
)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_TTL = re.compile(r"^(\d+)([mhd])$")
_REPO_ROOT = Path(__file__).resolve().parents[3]


class EphemeralError(EksLlmStackError):
    """An ephemeral-cluster command could not do what was asked."""


# --- names, tags, times ---------------------------------------------------------------------


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            "ephemeral cluster",
            [
                Problem(
                    "--name",
                    "is not a usable cluster name (it becomes the prefix of every stack and resource)",
                    "use 1-20 lowercase letters, digits or '-', starting with a letter, e.g. ci-pr-123",
                    name,
                )
            ],
        )
    return name


def new_name(now: datetime, token: str | None = None) -> str:
    """A unique name such as ``eph-11211420-3fa``: time to the minute plus random hex."""
    return f"eph-{now:%m%d%H%M}-{token or secrets.token_hex(2)[:3]}"


def parse_ttl(ttl: str) -> timedelta:
    m = _TTL.match(ttl)
    if not m or int(m.group(1)) == 0:
        raise ConfigError(
            "ephemeral cluster",
            [Problem("--ttl", "is not a duration", "write a whole number of minutes, hours or days: 90m, 4h, 2d", ttl)],
        )
    return timedelta(seconds=int(m.group(1)) * {"m": 60, "h": 3600, "d": 86400}[m.group(2)])


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def cluster_name_for(name: str) -> str:
    """The EKS cluster of an ephemeral environment (the app names it ``<prefix>-cluster``)."""
    return f"{name}-cluster"


def ephemeral_tags(name: str, expires_at: datetime) -> dict[str, str]:
    return {TAG_EPHEMERAL: "true", TAG_NAME: name, TAG_EXPIRES: iso(expires_at)}


def _tags(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or ()}


def owned_by(tags: Mapping[str, str], name: str) -> bool:
    """The one test for "ours to delete": both the ephemeral flag and this cluster's name."""
    return tags.get(TAG_EPHEMERAL) == "true" and tags.get(TAG_NAME) == name


def cluster_tagged(tags: Mapping[str, str], cluster: str) -> bool:
    for key, value in CLUSTER_TAGS:
        k = key.format(c=cluster)
        if k in tags and (value is None or tags[k] == value.format(c=cluster)):
            return True
    return False


# --- finding clusters -----------------------------------------------------------------------


@dataclass(frozen=True)
class StackRef:
    name: str
    stack_id: str
    status: str
    tags: Mapping[str, str]
    created: datetime

    @property
    def order(self) -> int:
        suffix = self.name.rsplit("-", 1)[-1]
        return STACK_ORDER.index(suffix) if suffix in STACK_ORDER else len(STACK_ORDER)


@dataclass(frozen=True)
class EphemeralCluster:
    name: str
    stacks: tuple[StackRef, ...]

    @property
    def expires_at(self) -> datetime | None:
        """The latest expiry of its stacks (None if any stack lacks a valid one): never reap early."""
        times = [parse_iso(s.tags.get(TAG_EXPIRES)) for s in self.stacks]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    @property
    def created_at(self) -> datetime:
        return min(s.created for s in self.stacks)

    @property
    def state(self) -> str:
        statuses = sorted({s.status for s in self.stacks})
        busy = [s for s in statuses if s.endswith("_IN_PROGRESS")]
        failed = [s for s in statuses if s.endswith("_FAILED") or "ROLLBACK" in s]
        if busy or failed:
            return ",".join(busy + failed)
        return (
            f"ready ({len(self.stacks)} stacks)"
            if len(self.stacks) == len(STACK_ORDER)
            else f"partial ({len(self.stacks)} stacks)"
        )

    def expired(self, now: datetime) -> bool:
        expires = self.expires_at
        return expires is not None and expires <= now


def ephemeral_stacks(aws: Aws) -> list[StackRef]:
    """Every live top-level stack that carries the ephemeral flag."""
    out = []
    for s in paginate(aws.client("cloudformation"), "describe_stacks", "Stacks"):
        tags = _tags(s.get("Tags"))
        # Nested stacks go with their parent; deleting one directly would corrupt the parent.
        if tags.get(TAG_EPHEMERAL) != "true" or not tags.get(TAG_NAME) or s.get("ParentId"):
            continue
        if s["StackStatus"] == "DELETE_COMPLETE":
            continue
        out.append(StackRef(s["StackName"], s["StackId"], s["StackStatus"], tags, s["CreationTime"]))
    return out


def find_clusters(aws: Aws) -> list[EphemeralCluster]:
    groups: dict[str, list[StackRef]] = {}
    for stack in ephemeral_stacks(aws):
        groups.setdefault(stack.tags[TAG_NAME], []).append(stack)
    return [EphemeralCluster(n, tuple(sorted(s, key=lambda x: x.order))) for n, s in sorted(groups.items())]


def find_cluster(aws: Aws, name: str) -> EphemeralCluster | None:
    return next((c for c in find_clusters(aws) if c.name == name), None)


# --- running commands -----------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str = ""


class Runner(Protocol):
    """Runs an external command (the CDK CLI, kubectl); faked in tests."""

    def run(self, argv: Sequence[str], *, capture: bool = False, timeout: float | None = None) -> CommandResult: ...


class SubprocessRunner:
    """Runs commands for real; streamed output unless ``capture``."""

    def run(self, argv: Sequence[str], *, capture: bool = False, timeout: float | None = None) -> CommandResult:
        try:
            done = subprocess.run(list(argv), capture_output=capture, text=True, timeout=timeout, check=False)
        except FileNotFoundError:
            raise EphemeralError(f"'{argv[0]}' is not installed or not on PATH") from None
        except subprocess.TimeoutExpired:
            raise EphemeralError(f"'{' '.join(argv[:3])} ...' did not finish within {timeout:.0f}s") from None
        return CommandResult(done.returncode, done.stdout or "")


def cdk_command() -> str:
    """The pinned CDK CLI of this checkout, else one on PATH."""
    local = _REPO_ROOT / "node_modules" / ".bin" / "cdk"
    return str(local) if local.exists() else "cdk"


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


# --- kubeconfig -----------------------------------------------------------------------------


def kubeconfig_yaml(cluster: Mapping[str, Any], region: str) -> str:
    import yaml

    name = cluster["name"]
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": cluster["endpoint"],
                    "certificate-authority-data": cluster["certificateAuthority"]["data"],
                },
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1beta1",
                        "command": "aws",
                        "args": ["eks", "get-token", "--cluster-name", name, "--region", region, "--output", "json"],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def write_kubeconfig(aws: Aws, cluster_name: str, path: Path) -> dict[str, Any]:
    cluster = aws.client("eks").describe_cluster(name=cluster_name)["cluster"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(kubeconfig_yaml(cluster, aws.region_name))
    path.chmod(0o600)
    return dict(cluster)


# --- up -------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UpResult:
    name: str
    cluster_name: str
    endpoint: str
    kubeconfig: Path
    expires_at: datetime
    model: str | None


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """How long each wait may take, in seconds."""

    deploy: float = 3 * 3600
    """The whole ``cdk deploy``. Default: 3 hours."""
    cluster: float = 30 * 60
    """The cluster reaching ACTIVE after the deploy. Default: 30 minutes."""
    model: float = 45 * 60
    """The first model's Deployment having a ready replica (image pull and weight load). Default: 45 minutes."""
    stack_delete: float = 60 * 60
    """One stack's deletion. Default: 1 hour."""
    interval: float = 15.0
    """Seconds between polls. Default: 15."""


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
    timeouts: Timeouts = Timeouts(),
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


# --- smoke ----------------------------------------------------------------------------------


class BenchHarness(Protocol):
    """Runs the benchmark harness's baseline scenario against a model; returns its exit code."""

    def __call__(self, *, kubeconfig: Path, model: str, output_dir: Path) -> int: ...


def bench_argv(*, url: str, model: str, output_dir: Path) -> list[str]:
    """The ``eks-llm-stack bench run`` command line of the smoke test (baseline scenario)."""
    return [sys.executable, "-m", "eks_llm_stack.cli", "bench", "run", "--scenario", "baseline",
            "--url", url, "--model", model, "--out", str(output_dir), "--no-progress"]  # fmt: skip


def smoke_verdict(returncode: int, output_dir: Path) -> int:
    """The harness's exit code, or 3 when it finished but some requests failed (summary.json ``errors``)."""
    import json

    if returncode != 0:
        return returncode
    summary = output_dir / "summary.json"
    if not summary.is_file():
        return 3
    levels = json.loads(summary.read_text()).get("levels", [])
    return 3 if any(level.get("errors") for level in levels) or not levels else 0


def bench_via_cli(*, kubeconfig: Path, model: str, output_dir: Path) -> int:
    """The baseline scenario through ``eks-llm-stack bench run``, over a ``kubectl port-forward``."""
    port = 18080
    forward = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kubeconfig), "port-forward", "--namespace", _model_namespace(kubeconfig, model),
         f"service/{model}", f"{port}:8000"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        argv = bench_argv(url=f"http://127.0.0.1:{port}", model=model, output_dir=output_dir)
        return smoke_verdict(subprocess.run(argv, check=False).returncode, output_dir)
    finally:
        forward.terminate()
        forward.wait(timeout=10)


def _model_namespace(kubeconfig: Path, model: str) -> str:
    import json

    out = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "services", "--all-namespaces",
         "--field-selector", f"metadata.name={model}", "-o", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    items = json.loads(out.stdout or "{}").get("items", []) if out.returncode == 0 else []
    if not items:
        raise EphemeralError(f"no Service named '{model}' in the cluster; is the Serving stack deployed?")
    return str(items[0]["metadata"]["namespace"])


def smoke(
    aws: Aws,
    name: str,
    *,
    model: str,
    harness: BenchHarness,
    output_dir: Path,
    kubeconfig: Path | None = None,
) -> Path:
    """Run the baseline scenario; raise :class:`EphemeralError` if the harness reports errors."""
    cluster = find_cluster(aws, name)
    if cluster is None:
        raise EphemeralError(f"no ephemeral cluster named '{name}' (see 'eks-llm-stack ephemeral list')")
    kubeconfig = kubeconfig or output_dir / f"kubeconfig-{name}"
    write_kubeconfig(aws, cluster_name_for(name), kubeconfig)
    output_dir.mkdir(parents=True, exist_ok=True)
    code = harness(kubeconfig=kubeconfig, model=model, output_dir=output_dir)
    if code != 0:
        raise EphemeralError(
            f"smoke test of '{name}' failed: the baseline scenario against '{model}' exited {code} (report in {output_dir})"
        )
    return output_dir


# --- down -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    kind: str
    id: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind} {self.id}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class DownReport:
    name: str
    deleted_stacks: list[str] = field(default_factory=list)
    failed_stacks: list[str] = field(default_factory=list)
    deleted: list[Leftover] = field(default_factory=list)
    reported: list[Leftover] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.failed_stacks or self.reported)


class Sweeper:
    """Finds, deletes and re-checks what an ephemeral cluster may leave behind outside its stacks."""

    def __init__(self, aws: Aws, name: str, *, dry_run: bool = False):
        self.aws, self.name, self.cluster, self.dry_run = aws, name, cluster_name_for(name), dry_run

    def _filters(self) -> list[dict[str, Any]]:
        return [
            {"Name": f"tag:{TAG_EPHEMERAL}", "Values": ["true"]},
            {"Name": f"tag:{TAG_NAME}", "Values": [self.name]},
        ]

    # Each scan returns (ours, foreign): ours is safe to delete, foreign only to report.

    def instances(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        found = [
            i
            for r in paginate(self.aws.client("ec2"), "describe_instances", "Reservations", Filters=live)
            for i in r["Instances"]
        ]
        return self._split(found, lambda i: _tags(i.get("Tags")))

    def volumes(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = paginate(
            self.aws.client("ec2"),
            "describe_volumes",
            "Volumes",
            Filters=[{"Name": "status", "Values": ["available", "error"]}],
        )
        return self._split(found, lambda v: _tags(v.get("Tags")))

    def enis(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = paginate(
            self.aws.client("ec2"),
            "describe_network_interfaces",
            "NetworkInterfaces",
            Filters=[{"Name": "status", "Values": ["available"]}],
        )
        return self._split(found, lambda n: _tags(n.get("TagSet")))

    def _elb_tags(self, arns: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {}
        for i in range(0, len(arns), 20):  # DescribeTags takes at most 20 ARNs
            for d in self.aws.client("elbv2").describe_tags(ResourceArns=arns[i : i + 20])["TagDescriptions"]:
                out[d["ResourceArn"]] = _tags(d.get("Tags"))
        return out

    def load_balancers(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = paginate(self.aws.client("elbv2"), "describe_load_balancers", "LoadBalancers")
        tags = self._elb_tags([lb["LoadBalancerArn"] for lb in found])
        return self._split(found, lambda lb: tags.get(lb["LoadBalancerArn"], {}))

    def target_groups(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = paginate(self.aws.client("elbv2"), "describe_target_groups", "TargetGroups")
        tags = self._elb_tags([tg["TargetGroupArn"] for tg in found])
        return self._split(found, lambda tg: tags.get(tg["TargetGroupArn"], {}))

    def fsx(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = [
            f
            for f in paginate(self.aws.client("fsx"), "describe_file_systems", "FileSystems")
            if f.get("Lifecycle") != "DELETING"
        ]
        return self._split(found, lambda f: _tags(f.get("Tags")))

    def efs(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        found = [
            f
            for f in paginate(self.aws.client("efs"), "describe_file_systems", "FileSystems")
            if f.get("LifeCycleState") not in ("deleting", "deleted")
        ]
        return self._split(found, lambda f: _tags(f.get("Tags")))

    def log_groups(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        logs = self.aws.client("logs")
        ours, foreign = [], []
        for g in paginate(logs, "describe_log_groups", "logGroups"):
            arn = g["arn"].removesuffix(":*")
            tags = logs.list_tags_for_resource(resourceArn=arn).get("tags", {})
            if owned_by(tags, self.name):
                ours.append(g)
            elif g["logGroupName"].startswith((f"/aws/eks/{self.cluster}/", f"/aws/containerinsights/{self.cluster}/")):
                foreign.append(g)
        return ours, foreign

    def _split(
        self, items: list[dict[str, Any]], tags_of: Callable[[dict[str, Any]], Mapping[str, str]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        ours, foreign = [], []
        for item in items:
            tags = tags_of(item)
            if owned_by(tags, self.name):
                ours.append(item)
            elif cluster_tagged(tags, self.cluster):
                foreign.append(item)
        return ours, foreign

    def sweep(self, report: DownReport, progress: Callable[[str], None]) -> None:
        """Delete what is ours, in an order that frees dependencies first; record the rest."""
        ec2, elb = self.aws.client("ec2"), self.aws.client("elbv2")
        steps: list[tuple[str, Callable[[], tuple[list[dict[str, Any]], list[dict[str, Any]]]], Callable[[dict[str, Any]], str], Callable[[dict[str, Any]], None]]] = [
            ("EC2 instance", self.instances, lambda i: i["InstanceId"], lambda i: ec2.terminate_instances(InstanceIds=[i["InstanceId"]])),
            ("load balancer", self.load_balancers, lambda lb: lb["LoadBalancerArn"], lambda lb: elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])),
            ("target group", self.target_groups, lambda tg: tg["TargetGroupArn"], lambda tg: elb.delete_target_group(TargetGroupArn=tg["TargetGroupArn"])),
            ("FSx file system", self.fsx, lambda f: f["FileSystemId"], self._delete_fsx),
            ("EFS file system", self.efs, lambda f: f["FileSystemId"], self._delete_efs),
            ("EBS volume", self.volumes, lambda v: v["VolumeId"], lambda v: ec2.delete_volume(VolumeId=v["VolumeId"])),
            ("network interface", self.enis, lambda n: n["NetworkInterfaceId"], lambda n: ec2.delete_network_interface(NetworkInterfaceId=n["NetworkInterfaceId"])),
            ("log group", self.log_groups, lambda g: g["logGroupName"], lambda g: self.aws.client("logs").delete_log_group(logGroupName=g["logGroupName"])),
        ]  # fmt: skip
        for kind, scan, ident, delete in steps:
            ours, foreign = scan()
            for item in ours:
                leftover = Leftover(kind, ident(item))
                if self.dry_run:
                    report.reported.append(Leftover(kind, ident(item), "would be deleted"))
                    continue
                try:
                    delete(item)
                except Exception as exc:
                    # Already gone (a concurrent run, or AWS finished it): that is the goal.
                    if not error_code(exc).endswith(("NotFound", "NotFoundException", "ResourceNotFoundException")):
                        report.reported.append(Leftover(kind, ident(item), f"delete failed: {exc}"))
                        continue
                progress(f"deleted {leftover}")
                report.deleted.append(leftover)
            for item in foreign:
                report.reported.append(
                    Leftover(
                        kind,
                        ident(item),
                        f"tagged for cluster {self.cluster} but not '{TAG_EPHEMERAL}=true'; not deleted",
                    )
                )
        for arn in self._untyped_leftovers():
            report.reported.append(Leftover("resource", arn, "tagged for this cluster; delete it by hand"))

    def _delete_fsx(self, fs: dict[str, Any]) -> None:
        kwargs: dict[str, Any] = {"FileSystemId": fs["FileSystemId"]}
        if fs.get("FileSystemType") == "LUSTRE":
            # A final backup would outlive the cluster and bill; ephemeral data is disposable by definition.
            kwargs["LustreConfiguration"] = {"SkipFinalBackup": True}
        self.aws.client("fsx").delete_file_system(**kwargs)

    def _delete_efs(self, fs: dict[str, Any]) -> None:
        efs = self.aws.client("efs")
        fs_id = fs["FileSystemId"]
        for mt in efs.describe_mount_targets(FileSystemId=fs_id).get("MountTargets", ()):
            efs.delete_mount_target(MountTargetId=mt["MountTargetId"])
        # EFS refuses to delete a file system until its mount targets are gone.
        wait_until(
            f"mount targets of {fs_id} to be deleted",
            lambda: (not efs.describe_mount_targets(FileSystemId=fs_id).get("MountTargets"), "mount targets deleting"),
            timeout=600,
            interval=10,
        )
        efs.delete_file_system(FileSystemId=fs_id)

    #: Resource types the typed scans above handle (or that go with their stack).
    _HANDLED = (
        ":instance/",
        ":volume/",
        ":network-interface/",
        ":loadbalancer/",
        ":targetgroup/",
        ":file-system/",
        ":log-group:",
        ":stack/",
    )

    def _untyped_leftovers(self) -> list[str]:
        """Anything else still tagged as this cluster's: reported, because no scan here knows how to delete it safely."""
        tagging = self.aws.client("resourcegroupstaggingapi")
        found = paginate(
            tagging,
            "get_resources",
            "ResourceTagMappingList",
            TagFilters=[{"Key": TAG_EPHEMERAL, "Values": ["true"]}, {"Key": TAG_NAME, "Values": [self.name]}],
        )
        return sorted(m["ResourceARN"] for m in found if not any(h in m["ResourceARN"] for h in self._HANDLED))


def _stack_status(cfn: Any, stack_id: str) -> tuple[str, str]:
    try:
        s = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    except Exception as exc:
        if "does not exist" in str(exc):
            return "DELETE_COMPLETE", ""
        raise
    return s["StackStatus"], s.get("StackStatusReason", "")


def _delete_stack(
    aws: Aws,
    stack: StackRef,
    timeouts: Timeouts,
    progress: Callable[[str], None],
    sleep: Callable[[float], None] | None,
) -> tuple[bool, str]:
    cfn = aws.client("cloudformation")
    status, _ = _stack_status(cfn, stack.stack_id)
    if status == "DELETE_COMPLETE":
        return True, status
    if status != "DELETE_IN_PROGRESS":
        # By stack id, not name: a new stack of the same name must never be hit by a stale run.
        cfn.delete_stack(StackName=stack.stack_id)
    reason = ""

    def probe() -> tuple[bool, str]:
        nonlocal reason
        current, reason = _stack_status(cfn, stack.stack_id)
        return current in ("DELETE_COMPLETE", "DELETE_FAILED"), current

    extra: dict[str, Any] = {"sleep": sleep} if sleep is not None else {}
    final = wait_until(
        f"stack {stack.name} to be deleted",
        probe,
        timeout=timeouts.stack_delete,
        interval=timeouts.interval,
        progress=progress,
        **extra,
    )
    return final == "DELETE_COMPLETE", f"{final}: {reason}" if reason else final


def down(
    aws: Aws,
    name: str,
    *,
    timeouts: Timeouts = Timeouts(),
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> DownReport:
    """Delete the cluster's stacks (reverse dependency order), then sweep and verify leftovers."""
    check_name(name)
    report = DownReport(name)
    cluster = find_cluster(aws, name)
    stacks = sorted(cluster.stacks, key=lambda s: s.order, reverse=True) if cluster else []
    if not stacks:
        progress(f"no stacks left for '{name}'; checking for leftovers")
    sweeper = Sweeper(aws, name)
    swept = False
    for stack in stacks:
        progress(f"deleting stack {stack.name} ({stack.status})")
        ok, status = _delete_stack(aws, stack, timeouts, progress, sleep)
        if not ok and not swept:
            # Controller-made load balancers, ENIs and volumes are what usually block a
            # VPC or subnet delete: remove them and try the stack once more.
            progress(f"stack {stack.name} did not delete ({status}); removing leftovers and retrying")
            sweeper.sweep(report, progress)
            swept = True
            ok, status = _delete_stack(aws, stack, timeouts, progress, sleep)
        if ok:
            report.deleted_stacks.append(stack.name)
        else:
            report.failed_stacks.append(f"{stack.name}: {status}")
    final = DownReport(name, report.deleted_stacks, report.failed_stacks, list(report.deleted))
    # Verify after the stacks are gone: anything still tagged is deleted now or reported.
    sweeper.sweep(final, progress)
    return final


# --- reap and list --------------------------------------------------------------------------


@dataclass
class ReapReport:
    expired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    downs: list[DownReport] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.downs)


def reap(
    aws: Aws,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    timeouts: Timeouts = Timeouts(),
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> ReapReport:
    """Tear down every ephemeral cluster past its expiry. Clusters without a valid expiry are left alone."""
    now = now or datetime.now(UTC)
    report = ReapReport()
    for cluster in find_clusters(aws):
        if cluster.expires_at is None:
            report.untouched.append(cluster.name)
            progress(f"{cluster.name}: no valid {TAG_EXPIRES} tag on every stack; not touched")
        elif cluster.expired(now):
            report.expired.append(cluster.name)
            progress(
                f"{cluster.name}: expired {iso(cluster.expires_at)}"
                + (" (dry run: not deleted)" if dry_run else "; tearing down")
            )
            if not dry_run:
                report.downs.append(down(aws, cluster.name, timeouts=timeouts, progress=progress, sleep=sleep))
        else:
            report.kept.append(cluster.name)
    return report


def _ago(delta: timedelta) -> str:
    seconds = int(abs(delta.total_seconds()))
    if seconds >= 86400:
        return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m"


def list_rows(clusters: Iterable[EphemeralCluster], now: datetime) -> list[tuple[str, str, str, str]]:
    rows = []
    for c in clusters:
        expires = c.expires_at
        if expires is None:
            expiry = "unknown (never reaped)"
        elif expires <= now:
            expiry = f"{iso(expires)} (expired {_ago(now - expires)} ago)"
        else:
            expiry = f"{iso(expires)} (in {_ago(expires - now)})"
        rows.append((c.name, _ago(now - c.created_at), expiry, c.state))
    return rows


def render_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [tuple(header), *rows]]
    return "\n".join(lines) + "\n"
