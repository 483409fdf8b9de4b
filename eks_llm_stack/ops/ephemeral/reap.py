"""``ephemeral reap``: tear down every ephemeral cluster past its expiry, in every region it is given.

``reap`` is dry by default: it judges and reports, and deletes only when told to
(``--yes``). It judges on one snapshot of each region, then hands ``down`` the stack ids it
judged, with their deployment id and the time it judged by; ``down`` re-reads each stack right
before deleting it and refuses one that changed (a name reused by a newer cluster, a pushed-out
expiry, termination protection switched on). Stacks tagged ephemeral that no ``up`` made are
reported as ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..aws import Aws
from .clusters import find_clusters, ignored_stacks
from .down import DownReport, down
from .names import TAG_EXPIRES, iso
from .runner import DEFAULT_TIMEOUTS, Timeouts


@dataclass
class ReapReport:
    expired: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    untouched: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    """Stacks tagged ephemeral without a valid deployment record: never deleted."""
    downs: list[DownReport] = field(default_factory=list)
    dry_run: bool = True

    @property
    def clean(self) -> bool:
        return all(d.clean for d in self.downs)


def reap(
    aws: Aws,
    *,
    regions: Sequence[str] = (),
    now: datetime | None = None,
    dry_run: bool = True,
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
    progress: Callable[[str], None] = print,
    sleep: Callable[[float], None] | None = None,
) -> ReapReport:
    """Judge every ephemeral cluster of each region (default: ``aws``'s own) and tear down the expired.

    Clusters without a valid expiry on every stack, or with a termination-protected stack, are
    left alone. Nothing is deleted unless ``dry_run=False``.
    """
    now = now or datetime.now(UTC)
    report = ReapReport(dry_run=dry_run)
    multi = len(regions) > 1
    for region_aws in [aws.in_region(r) for r in regions] or [aws]:
        where = f"{region_aws.region_name}/" if multi else ""
        for stack, why in ignored_stacks(region_aws):
            report.ignored.append(f"{where}{stack.name}")
            progress(f"{where}{stack.name}: tagged ephemeral but {why}; ignored")
        for cluster in find_clusters(region_aws):
            label = f"{where}{cluster.name}"
            if cluster.expires_at is None:
                report.untouched.append(label)
                progress(f"{label}: no valid {TAG_EXPIRES} tag on every stack; not touched")
            elif cluster.protected:
                report.untouched.append(label)
                progress(f"{label}: a stack has termination protection on; not touched")
            elif cluster.expired(now):
                report.expired.append(label)
                progress(
                    f"{label}: expired {iso(cluster.expires_at)}"
                    + (" (dry run: not deleted; pass --yes to delete)" if dry_run else "; tearing down")
                )
                if not dry_run:
                    report.downs.append(
                        down(
                            region_aws,
                            cluster.name,
                            deployment_id=cluster.deployment_id,
                            stack_ids=[s.stack_id for s in cluster.stacks],
                            expired_before=now,
                            timeouts=timeouts,
                            progress=progress,
                            sleep=sleep,
                        )
                    )
            else:
                report.kept.append(label)
    return report
