"""Finding ephemeral clusters: their stacks, grouped by name and deployment id, with expiry and state.

A stack belongs to an ephemeral cluster only if :func:`ownership_problem` finds nothing wrong
with it: the ephemeral flag, a name, a well-formed deployment-id tag and the same id as the
template's output (which only ``ephemeral up`` puts there, through the app). A stack tagged
ephemeral that fails the test is *ignored* — listed so a person can look, never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ...config.ephemeral import DEPLOYMENT_ID, DEPLOYMENT_ID_OUTPUT
from ..aws import Aws, paginate
from .names import (
    STACK_ORDER,
    TAG_DEPLOYMENT_ID,
    TAG_EPHEMERAL,
    TAG_EXPIRES,
    TAG_NAME,
    EphemeralError,
    _tags,
    parse_iso,
)


@dataclass(frozen=True)
class StackRef:
    name: str
    stack_id: str
    status: str
    tags: Mapping[str, str]
    created: datetime
    output_id: str = ""
    """The template's ``EphemeralDeploymentId`` output (empty if it has none)."""
    protected: bool = False
    """Termination protection is on: never deleted."""

    @property
    def order(self) -> int:
        suffix = self.name.rsplit("-", 1)[-1]
        return STACK_ORDER.index(suffix) if suffix in STACK_ORDER else len(STACK_ORDER)

    @property
    def deployment_id(self) -> str:
        return self.tags.get(TAG_DEPLOYMENT_ID, "")

    @property
    def expires_at(self) -> datetime | None:
        return parse_iso(self.tags.get(TAG_EXPIRES))

    @classmethod
    def from_description(cls, s: Mapping[str, Any]) -> StackRef:
        outputs = {o.get("OutputKey"): o.get("OutputValue", "") for o in s.get("Outputs") or ()}
        return cls(
            name=s["StackName"],
            stack_id=s["StackId"],
            status=s["StackStatus"],
            tags=_tags(s.get("Tags")),
            created=s["CreationTime"],
            output_id=str(outputs.get(DEPLOYMENT_ID_OUTPUT, "")),
            protected=bool(s.get("EnableTerminationProtection")),
        )


def ownership_problem(stack: StackRef, name: str | None = None, deployment_id: str | None = None) -> str | None:
    """Why ``stack`` is not an ephemeral stack made by ``ephemeral up`` (of ``name``/``deployment_id``), or None."""
    if stack.tags.get(TAG_EPHEMERAL) != "true":
        return f"no '{TAG_EPHEMERAL}=true' tag"
    if not stack.tags.get(TAG_NAME):
        return f"no '{TAG_NAME}' tag"
    if name is not None and stack.tags[TAG_NAME] != name:
        return f"its '{TAG_NAME}' is {stack.tags[TAG_NAME]!r}, not {name!r}"
    if not DEPLOYMENT_ID.fullmatch(stack.deployment_id):
        return f"no valid '{TAG_DEPLOYMENT_ID}' tag (not created by 'ephemeral up')"
    if stack.output_id != stack.deployment_id:
        return "its deployment-id tag does not match its template output (not created by 'ephemeral up')"
    if deployment_id is not None and stack.deployment_id != deployment_id:
        return f"it belongs to deployment {stack.deployment_id}, not {deployment_id}"
    return None


@dataclass(frozen=True)
class EphemeralCluster:
    name: str
    stacks: tuple[StackRef, ...]

    @property
    def deployment_id(self) -> str:
        return self.stacks[0].deployment_id if self.stacks else ""

    @property
    def expires_at(self) -> datetime | None:
        """The latest expiry of its stacks (None if any stack lacks a valid one): never reap early."""
        times = [s.expires_at for s in self.stacks]
        if not times or any(t is None for t in times):
            return None
        return max(t for t in times if t is not None)

    @property
    def protected(self) -> bool:
        return any(s.protected for s in self.stacks)

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


def live_stacks(aws: Aws) -> list[StackRef]:
    """Every live top-level stack of the region."""
    out = []
    for s in paginate(aws.client("cloudformation"), "describe_stacks", "Stacks"):
        # Nested stacks go with their parent; deleting one directly would corrupt the parent.
        if s.get("ParentId") or s["StackStatus"] == "DELETE_COMPLETE":
            continue
        out.append(StackRef.from_description(s))
    return out


def ephemeral_stacks(aws: Aws) -> list[StackRef]:
    """Every live top-level stack that carries the ephemeral flag (owned by an ``up`` or not)."""
    return [s for s in live_stacks(aws) if s.tags.get(TAG_EPHEMERAL) == "true"]


def ignored_stacks(aws: Aws) -> list[tuple[StackRef, str]]:
    """Stacks tagged ephemeral that no ``up`` made, with the reason: reported, never touched."""
    out = []
    for stack in ephemeral_stacks(aws):
        problem = ownership_problem(stack)
        if problem:
            out.append((stack, problem))
    return out


def find_clusters(aws: Aws) -> list[EphemeralCluster]:
    """Ephemeral clusters by (name, deployment id); two deployments of one name are two clusters."""
    groups: dict[tuple[str, str], list[StackRef]] = {}
    for stack in ephemeral_stacks(aws):
        if ownership_problem(stack) is None:
            groups.setdefault((stack.tags[TAG_NAME], stack.deployment_id), []).append(stack)
    return [EphemeralCluster(n, tuple(sorted(s, key=lambda x: x.order))) for (n, _), s in sorted(groups.items())]


def find_cluster(aws: Aws, name: str, deployment_id: str | None = None) -> EphemeralCluster | None:
    """The one cluster of that name (and deployment id); an error if the name alone is ambiguous."""
    found = [c for c in find_clusters(aws) if c.name == name and deployment_id in (None, c.deployment_id)]
    if len(found) > 1:
        ids = ", ".join(c.deployment_id for c in found)
        raise EphemeralError(f"'{name}' names {len(found)} deployments ({ids}); pass --deployment-id ID to pick one")
    return found[0] if found else None
