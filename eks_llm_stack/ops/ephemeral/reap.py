"""``ephemeral reap``: tear down every ephemeral cluster past its expiry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..aws import Aws
from .clusters import find_clusters
from .down import DownReport, down
from .names import TAG_EXPIRES, iso
from .runner import DEFAULT_TIMEOUTS, Timeouts


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
    timeouts: Timeouts = DEFAULT_TIMEOUTS,
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
