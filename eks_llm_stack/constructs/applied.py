"""Kubernetes objects a construct applies itself, outside the chart registry, remembered for dist/manifests.

A few objects must exist before a Helm release and belong to the construct that installs it: the
labelled namespace of a controller, the monitoring StorageClass, the Grafana login's ExternalSecret.
They are applied with ``cluster.add_manifest`` (their construct ids are API: renaming them would
replace the namespace, and everything in it, on the next deploy). :func:`add_manifest` does the same
and keeps the documents on the construct, so ``synth.write_chart_manifests`` writes them to
``dist/manifests/`` next to the charts, and GitOps users get every object ``cdk deploy`` applies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aws_cdk import Stack
from aws_cdk import aws_eks_v2 as eks
from constructs import Construct, IConstruct

_ATTR = "_eks_llm_stack_applied"


@dataclass(frozen=True)
class AppliedManifests:
    """The objects one construct applied: ``name`` (the file they are written to), ``stack`` (resolves their
    tokens), ``documents`` in the order they were applied."""

    name: str
    stack: Stack
    documents: tuple[Mapping[str, Any], ...]


def add_manifest(
    owner: Construct, cluster: eks.ICluster, id: str, doc: Mapping[str, Any], *, name: str
) -> eks.KubernetesManifest:
    """``cluster.add_manifest(id, doc)``, with ``doc`` remembered on ``owner`` under the file name ``name``."""
    manifest = cluster.add_manifest(id, dict(doc))
    recorded: dict[str, list[Mapping[str, Any]]] = owner.__dict__.setdefault(_ATTR, {})
    recorded.setdefault(name, []).append(doc)
    return manifest


def applied_manifests(root: IConstruct) -> Iterator[AppliedManifests]:
    """Every construct's applied objects under ``root``, in construct-tree order."""
    for construct in root.node.find_all():
        recorded = getattr(construct, _ATTR, None)
        if not recorded:
            continue
        stack = Stack.of(construct)
        for name, docs in recorded.items():
            yield AppliedManifests(name=name, stack=stack, documents=tuple(docs))


__all__ = ["AppliedManifests", "add_manifest", "applied_manifests"]
