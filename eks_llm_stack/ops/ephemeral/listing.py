"""``ephemeral list``: every ephemeral cluster with its age, expiry and state."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from .clusters import EphemeralCluster
from .names import iso


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
