"""Finding ephemeral clusters: their stacks, grouped by name, with expiry and state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ..aws import Aws, paginate
from .names import STACK_ORDER, TAG_EPHEMERAL, TAG_EXPIRES, TAG_NAME, _tags, parse_iso


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
