"""What marks a stack as the platform's and as an ephemeral environment's: tag keys, TTLs, expiry times.

The tags under :data:`RESERVED_TAG_PREFIX` are the ownership record that ``ephemeral down``
and ``reap`` act on, so only the library writes them: a profile's ``tags`` may not use that
prefix (refused at synth), and the library's own tags are applied after the user's, so a
user tag can never override one. The tag keys themselves live in :mod:`eks_llm_stack.conventions`, read by the stacks (to tag)
and by the ops commands (to recognise), so the two cannot drift.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

# The tag keys are defined in conventions (the stacks tag with them, ops recognise by them); re-exported.
from ..conventions import (
    DEPLOYMENT_ID_OUTPUT as DEPLOYMENT_ID_OUTPUT,
)
from ..conventions import (
    RESERVED_TAG_PREFIX as RESERVED_TAG_PREFIX,
)
from ..conventions import (
    TAG_DEPLOYMENT_ID as TAG_DEPLOYMENT_ID,
)
from ..conventions import (
    TAG_EPHEMERAL as TAG_EPHEMERAL,
)
from ..conventions import (
    TAG_EXPIRES_AT as TAG_EXPIRES_AT,
)
from ..conventions import (
    TAG_NAME as TAG_NAME,
)
from ..conventions import (
    TAG_PROFILE as TAG_PROFILE,
)
from ..errors import Problem

#: ``up`` draws 16 lowercase hex digits (64 random bits).
DEPLOYMENT_ID = re.compile(r"[0-9a-f]{16}")
#: The one format of ``expires-at``: ISO 8601, UTC, whole seconds, ``Z``.
EXPIRES_AT_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_EXPIRES_AT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
#: A TTL: 1-6 ASCII digits and a unit. ``[0-9]``, not ``\\d``: Python's ``\\d`` also matches other scripts' digits.
_TTL = re.compile(r"([0-9]{1,6})([mhd])")
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400}
#: The longest lifetime an ephemeral environment may ask for unless the profile raises ``max_ttl``.
DEFAULT_MAX_TTL = "7d"
#: A hard ceiling for ``max_ttl`` itself: an "ephemeral" environment that lives longer is not one.
CEILING_TTL = "90d"


def is_reserved_tag(key: str) -> bool:
    return key.lower().startswith(RESERVED_TAG_PREFIX)


def ttl_seconds(ttl: str) -> int:
    """``'4h'`` -> 14400. Raises ``ValueError`` for anything but 1-6 ASCII digits and m, h or d."""
    m = _TTL.fullmatch(ttl) if isinstance(ttl, str) else None
    if not m:
        raise ValueError(ttl)
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def ttl_problem(ttl: object, max_ttl: str = DEFAULT_MAX_TTL) -> tuple[str, str] | None:
    """``(message, fix)`` if ``ttl`` is not a usable lifetime of at most ``max_ttl``, else None."""
    fix = f"write a whole number (ASCII digits) of minutes, hours or days from 1m up to {max_ttl}: 90m, 4h, 2d"
    try:
        seconds = ttl_seconds(ttl)  # type: ignore[arg-type]
    except ValueError:
        return f"{ttl!r} is not a duration", fix
    if seconds == 0:
        return f"{ttl!r} is zero", fix
    if seconds > ttl_seconds(max_ttl):
        raise_it = "" if max_ttl == CEILING_TTL else " (or raise 'max_ttl')"
        return f"{ttl!r} is longer than the maximum lifetime {max_ttl}", fix + raise_it
    return None


def format_expires_at(t: datetime) -> str:
    return t.astimezone(UTC).strftime(EXPIRES_AT_FORMAT)


def parse_expires_at(value: object) -> datetime | None:
    """The UTC time of a well-formed ``expires-at`` value, else None (never a guess at another format)."""
    if not isinstance(value, str) or not _EXPIRES_AT.fullmatch(value):
        return None
    try:
        return datetime.strptime(value, EXPIRES_AT_FORMAT).replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13
        return None


def expiry(now: datetime, ttl: str) -> datetime:
    return now + timedelta(seconds=ttl_seconds(ttl))


def platform_tags(
    *,
    profile_name: str,
    prefix: str,
    user_tags: Mapping[str, str],
    ephemeral: bool,
    expires_at: str | None = None,
    deployment_id: str | None = None,
) -> dict[str, str]:
    """Every stack's tags: the user's first, then the library's, which always win."""
    tags = {k: v for k, v in user_tags.items() if not is_reserved_tag(k)}
    tags[TAG_PROFILE] = profile_name
    tags[TAG_NAME] = prefix
    if ephemeral:
        tags[TAG_EPHEMERAL] = "true"
        if expires_at:
            tags[TAG_EXPIRES_AT] = expires_at
        if deployment_id:
            tags[TAG_DEPLOYMENT_ID] = deployment_id
    return tags


def pool_node_tags(stack_tags: Mapping[str, str], node_tags: Mapping[str, str]) -> dict[str, str]:
    """A GPU pool's instance tags: the stack's, then the pool's own, which may not override a reserved key."""
    return {**stack_tags, **{k: v for k, v in node_tags.items() if not is_reserved_tag(k)}}


def context_problems(*, ephemeral: bool, expires_at: object, deployment_id: object) -> list[Problem]:
    """The ``expires_at`` and ``deployment_id`` context of a synth, checked before anything is built."""
    problems = []
    if expires_at is not None and parse_expires_at(expires_at) is None:
        problems.append(
            Problem(
                "expires_at (context)",
                "is not an ISO 8601 UTC time in the one accepted form; a cluster with it would never be reaped",
                "pass -c expires_at=YYYY-MM-DDTHH:MM:SSZ, e.g. 2026-11-21T18:00:00Z (or let 'ephemeral up' set it)",
                expires_at,
            )
        )
    if deployment_id is not None and not (isinstance(deployment_id, str) and DEPLOYMENT_ID.fullmatch(deployment_id)):
        problems.append(
            Problem(
                "deployment_id (context)",
                "is not 16 lowercase hex digits",
                "leave it to 'eks-llm-stack ephemeral up', which draws a random one",
                deployment_id,
            )
        )
    if not ephemeral:
        for key, value in (("expires_at", expires_at), ("deployment_id", deployment_id)):
            if value is not None:
                problems.append(
                    Problem(
                        f"{key} (context)",
                        "is given for a profile that is not ephemeral: it would mark a lasting platform for deletion",
                        f"drop -c {key}=..., or use an ephemeral profile (ephemeral: true)",
                        value,
                    )
                )
    return problems
