"""Names, tags and times of ephemeral clusters: what makes a stack or a resource one of ours.

Ownership is three tags written only by the library (a profile may not set any
``eks-llm-stack:*`` key) — ``ephemeral=true``, ``name=<name>`` and a random
``deployment-id`` that only ``ephemeral up`` draws — and, for a stack, the same deployment id
as a template output. A resource is ours to delete only when all of them agree.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from ...config.ephemeral import (
    DEFAULT_MAX_TTL,
    DEPLOYMENT_ID,
    TAG_DEPLOYMENT_ID,
    TAG_EPHEMERAL,
    TAG_EXPIRES_AT,
    TAG_NAME,
    TAG_PROFILE,
    format_expires_at,
    parse_expires_at,
    platform_tags,
    ttl_problem,
    ttl_seconds,
)
from ...conventions import CLUSTER_NAME_TAG, DISCOVERY_TAG, STACK_ROLES, cluster_name
from ...errors import ConfigError, EksLlmStackError, Problem
from ...naming import stack_name

#: Kept under its old name for callers of this module.
TAG_EXPIRES = TAG_EXPIRES_AT

#: Stack suffixes in deploy order; ``down`` deletes them in reverse.
STACK_ORDER = STACK_ROLES

#: Tags by which controllers and Karpenter mark what they create for a cluster ({c} = cluster name).
#: Resources with these tags but without the ephemeral tags are reported, never deleted.
CLUSTER_TAGS = (
    ("kubernetes.io/cluster/{c}", None),
    (CLUSTER_NAME_TAG, "{c}"),
    (DISCOVERY_TAG, "{c}"),
    ("elbv2.k8s.aws/cluster", "{c}"),
    ("cluster.k8s.amazonaws.com/name", "{c}"),
    ("KubernetesCluster", "{c}"),
)

_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")

__all__ = [
    "CLUSTER_TAGS",
    "STACK_ORDER",
    "TAG_DEPLOYMENT_ID",
    "TAG_EPHEMERAL",
    "TAG_EXPIRES",
    "TAG_NAME",
    "TAG_PROFILE",
    "EphemeralError",
    "check_name",
    "cluster_name_for",
    "cluster_tagged",
    "ephemeral_tags",
    "iso",
    "new_deployment_id",
    "new_name",
    "owned_by",
    "parse_iso",
    "parse_ttl",
    "stack_names_for",
]


class EphemeralError(EksLlmStackError):
    """An ephemeral-cluster command could not do what was asked."""


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
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


def new_deployment_id() -> str:
    """64 random bits as 16 hex digits: what ties a cluster's stacks and resources to one ``up``."""
    value = secrets.token_hex(8)
    assert DEPLOYMENT_ID.fullmatch(value)
    return value


def stack_names_for(name: str) -> tuple[str, ...]:
    """The stack names the app gives an environment named ``name`` (the same mapping as the app's)."""
    return tuple(stack_name(name, role) for role in STACK_ORDER)


def parse_ttl(ttl: str, max_ttl: str = DEFAULT_MAX_TTL) -> timedelta:
    problem = ttl_problem(ttl, max_ttl)
    if problem:
        raise ConfigError("ephemeral cluster", [Problem("--ttl", problem[0], problem[1], ttl)])
    return timedelta(seconds=ttl_seconds(ttl))


def iso(t: datetime) -> str:
    return format_expires_at(t)


def parse_iso(value: str | None) -> datetime | None:
    """An ``expires-at`` value in the one accepted form (``2026-11-21T18:00:00Z``), else None."""
    return parse_expires_at(value)


def cluster_name_for(name: str) -> str:
    """The EKS cluster of an ephemeral environment (the app names it ``<prefix>-cluster``)."""
    return cluster_name(name)


def ephemeral_tags(
    name: str, expires_at: datetime, deployment_id: str, *, profile_name: str = "", user_tags: Mapping[str, str] = {}
) -> dict[str, str]:
    """The stack tags of an ephemeral environment, the same as the app computes (user tags first)."""
    return platform_tags(
        profile_name=profile_name,
        prefix=name,
        user_tags=user_tags,
        ephemeral=True,
        expires_at=iso(expires_at),
        deployment_id=deployment_id,
    )


def _tags(items: Iterable[Mapping[str, str]] | None) -> dict[str, str]:
    return {t.get("Key", t.get("key", "")): t.get("Value", t.get("value", "")) for t in items or ()}


def owned_by(tags: Mapping[str, str], name: str, deployment_id: str) -> bool:
    """The one test for "ours to delete": the ephemeral flag, this name and this ``up``'s deployment id."""
    return (
        tags.get(TAG_EPHEMERAL) == "true"
        and tags.get(TAG_NAME) == name
        and bool(DEPLOYMENT_ID.fullmatch(deployment_id))
        and tags.get(TAG_DEPLOYMENT_ID) == deployment_id
    )


def cluster_tagged(tags: Mapping[str, str], cluster: str) -> bool:
    for key, value in CLUSTER_TAGS:
        k = key.format(c=cluster)
        if k in tags and (value is None or tags[k] == value.format(c=cluster)):
            return True
    return False
