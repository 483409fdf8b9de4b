"""Names, tags and times of ephemeral clusters: what makes a stack one of ours."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from ...errors import ConfigError, EksLlmStackError, Problem

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
