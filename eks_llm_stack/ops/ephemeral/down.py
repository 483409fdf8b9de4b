"""``ephemeral down``: delete a cluster's stacks, then delete or report what they left behind.

``down`` deletes exactly the stacks it is given (by stack id), or the stacks of one
``(name, deployment id)``. Right before each delete it describes the stack again and deletes
it only if it is still one that ``ephemeral up`` made for that deployment, is not
termination-protected and — when the caller asks, as ``reap`` does — is still expired.
A stack that fails any of these is reported, never deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..aws import Aws, error_code, paginate, wait_until
from .clusters import StackRef, find_cluster, ownership_problem
from .names import (
    TAG_DEPLOYMENT_ID,
    TAG_EPHEMERAL,
    TAG_NAME,
    EphemeralError,
    _tags,
    check_name,
    cluster_name_for,
    cluster_tagged,
    iso,
    owned_by,
)
from .runner import DEFAULT_TIMEOUTS, Timeouts


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
    deployment_id: str = ""
    dry_run: bool = False
    would_delete: list[str] = field(default_factory=list)
    """Dry run: the stacks and resources a real run would delete."""
    skipped_stacks: list[str] = field(default_factory=list)
    """Stacks the re-check refused to delete, with the reason."""

    @property
    def clean(self) -> bool:
        return not (self.failed_stacks or self.reported or self.skipped_stacks)


class Sweeper:
    """Finds, deletes and re-checks what an ephemeral cluster may leave behind outside its stacks."""

    def __init__(self, aws: Aws, name: str, deployment_id: str, *, dry_run: bool = False):
        self.aws, self.name, self.cluster, self.dry_run = aws, name, cluster_name_for(name), dry_run
        self.deployment_id = deployment_id

    def _ours(self, tags: Mapping[str, str]) -> bool:
        return owned_by(tags, self.name, self.deployment_id)

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
            if self._ours(tags):
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
            if self._ours(tags):
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
                    report.would_delete.append(str(leftover))
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
                        f"tagged for cluster {self.cluster} but not as deployment {self.deployment_id} "
                        f"of '{self.name}'; not deleted",
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
            TagFilters=[
                {"Key": TAG_EPHEMERAL, "Values": ["true"]},
                {"Key": TAG_NAME, "Values": [self.name]},
                {"Key": TAG_DEPLOYMENT_ID, "Values": [self.deployment_id]},
            ],
        )
        return sorted(m["ResourceARN"] for m in found if not any(h in m["ResourceARN"] for h in self._HANDLED))


def _describe(cfn: Any, stack_id: str) -> StackRef | None:
    """The stack as it is now (None once deleted)."""
    try:
        s = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
    except Exception as exc:
        if "does not exist" in str(exc):
            return None
        raise
    return None if s["StackStatus"] == "DELETE_COMPLETE" else StackRef.from_description(s)


def recheck(stack: StackRef | None, name: str, deployment_id: str, expired_before: datetime | None) -> str | None:
    """Why ``stack`` (as described just now) must not be deleted, or None if it may."""
    if stack is None:
        return None
    problem = ownership_problem(stack, name, deployment_id)
    if problem:
        return problem
    if stack.protected:
        return "termination protection is on"
    if expired_before is not None:
        expires = stack.expires_at
        if expires is None:
            return "it has no valid expires-at tag now"
        if expires > expired_before:
            return f"it no longer expires before {iso(expired_before)} (expires-at {iso(expires)})"
    return None


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
    deployment_id: str | None = None,
    stack_ids: Sequence[str] | None = None,
    expired_before: datetime | None = None,
    dry_run: bool = False,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> DownReport:
    """Delete one deployment's stacks (reverse dependency order), then sweep and verify leftovers.

    Without ``stack_ids``, the stacks of ``name`` (and ``deployment_id``, needed when the name
    has several deployments) are looked up now. With them (as ``reap`` passes what it judged),
    exactly those stacks are candidates, and ``deployment_id`` is required. Each is re-described
    right before its delete and must pass :func:`recheck`; ``expired_before`` adds the expiry
    test. ``dry_run`` deletes nothing and lists what would go.
    """
    check_name(name)
    cfn = aws.client("cloudformation")
    if stack_ids is None:
        cluster = find_cluster(aws, name, deployment_id)
        candidates = list(cluster.stacks) if cluster else []
        deployment_id = deployment_id or (cluster.deployment_id if cluster else None)
    else:
        if not deployment_id:
            raise EphemeralError("down: deleting given stack ids needs the deployment id they were judged by")
        candidates = [s for s in (_describe(cfn, i) for i in stack_ids) if s is not None]
    report = DownReport(name, deployment_id=deployment_id or "", dry_run=dry_run)
    if not deployment_id:
        progress(f"no ephemeral stacks of '{name}' made by 'ephemeral up'; nothing to delete")
        return report
    stacks = sorted(candidates, key=lambda s: s.order, reverse=True)
    if not stacks:
        progress(f"no stacks left for '{name}' (deployment {deployment_id}); checking for leftovers")
    sweeper = Sweeper(aws, name, deployment_id, dry_run=dry_run)
    swept = False
    for stack in stacks:
        # Re-read right before the delete: what was judged may have changed since.
        now_stack = _describe(cfn, stack.stack_id)
        refusal = recheck(now_stack, name, deployment_id, expired_before)
        if refusal:
            progress(f"not deleting stack {stack.name}: {refusal}")
            report.skipped_stacks.append(f"{stack.name}: {refusal}")
            continue
        if now_stack is None:
            report.deleted_stacks.append(stack.name)
            continue
        if dry_run:
            report.would_delete.append(f"stack {stack.name} ({stack.stack_id})")
            continue
        progress(f"deleting stack {stack.name} ({now_stack.status})")
        ok, status = _delete_stack(aws, now_stack, timeouts, progress, sleep)
        if not ok and not swept:
            # Controller-made load balancers, ENIs and volumes are what usually block a
            # VPC or subnet delete: remove them and try the stack once more.
            progress(f"stack {stack.name} did not delete ({status}); removing leftovers and retrying")
            sweeper.sweep(report, progress)
            swept = True
            again = _describe(cfn, stack.stack_id)
            refusal = recheck(again, name, deployment_id, expired_before)
            ok, status = (
                (False, f"not retried: {refusal}")
                if refusal
                else _delete_stack(aws, now_stack, timeouts, progress, sleep)
            )
        if ok:
            report.deleted_stacks.append(stack.name)
        else:
            report.failed_stacks.append(f"{stack.name}: {status}")
    if report.skipped_stacks:
        # Something of this deployment is still there and was refused: its leftovers stay too.
        return report
    final = DownReport(
        name, report.deleted_stacks, report.failed_stacks, list(report.deleted),
        deployment_id=deployment_id, dry_run=dry_run, would_delete=list(report.would_delete),
    )  # fmt: skip
    # Verify after the stacks are gone: anything still tagged is deleted now or reported.
    sweeper.sweep(final, progress)
    return final
