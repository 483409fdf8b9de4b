"""Namespaces of the platform, with Pod Security admission labels."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cdk8s
from constructs import Construct

from ..conventions import MANAGED_BY
from ..errors import collecting
from ..naming import check_dns_label

#: Pod Security levels, most to least permissive.
POD_SECURITY_LEVELS = ("privileged", "baseline", "restricted")


def pod_security_labels(level: str) -> dict[str, str]:
    """The Pod Security admission labels for ``level``; ``warn``/``audit`` stay at ``restricted`` so a
    namespace that must allow more still reports what falls short of it."""
    if level not in POD_SECURITY_LEVELS:
        raise ValueError(f"'{level}' is not a Pod Security level -- fix: use privileged, baseline or restricted")
    return {
        "pod-security.kubernetes.io/enforce": level,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }


def namespace_manifest(name: str, level: str) -> dict[str, Any]:
    """A labelled ``Namespace`` (created before a Helm release that would otherwise make an unlabelled one)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {**MANAGED_BY, **pod_security_labels(level)}},
    }


@dataclass(frozen=True, kw_only=True)
class NamespaceSpec:
    """A namespace and its Pod Security level (``restricted`` by default; GPU agents need ``privileged``)."""

    name: str
    pod_security: str = "restricted"

    def __post_init__(self) -> None:
        with collecting("NamespaceSpec") as p:
            check_dns_label(p, "name", self.name)
            p.check(
                self.pod_security in POD_SECURITY_LEVELS,
                "pod_security",
                self.pod_security,
                "is not a Pod Security level",
                "use privileged, baseline or restricted",
            )


@dataclass(frozen=True, kw_only=True)
class NamespacesChartProps:
    """The namespaces to create (no default: a chart with nothing in it is a mistake)."""

    namespaces: tuple[NamespaceSpec, ...]


class NamespacesChart(cdk8s.Chart):
    """Creates namespaces first, so the other charts can be applied in any order after it."""

    def __init__(self, scope: Construct, id: str, *, props: NamespacesChartProps) -> None:
        super().__init__(scope, id, disable_resource_name_hashes=True)
        for ns in props.namespaces:
            cdk8s.ApiObject(
                self,
                ns.name,
                api_version="v1",
                kind="Namespace",
                metadata=cdk8s.ApiObjectMetadata(
                    name=ns.name, labels={**MANAGED_BY, **pod_security_labels(ns.pod_security)}
                ),
            )
